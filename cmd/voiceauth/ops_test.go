package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/voiceauth/voiceauth/internal/app"
)

// runCLI runs one voiceauth command line in-process.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestOperatorCommands drives the audit, lockouts, otp-outbox, keys and
// secrets commands against a data dir that served real calls.
func TestOperatorCommands(t *testing.T) {
	dir := t.TempDir()
	st, err := app.Start(context.Background(), app.Config{DataDir: dir, Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0", MCPAddr: "127.0.0.1:0", LogWriter: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	secret := readClientSecret(t, filepath.Join(dir, "secrets.json"))
	// Three wrong answers lock Maria; a correct one with a mobile mismatch texts a code.
	for i := 0; i < 3; i++ {
		kba(t, st.ASURL, st.MCPURL, secret, "+15555550101", "Maria Garcia", "1980-03-03", "0000")
	}
	kba(t, st.ASURL, st.MCPURL, secret, "+15555559876", "James O'Brien", "1955-11-30", "0912")
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, "audit", "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify on a clean trail: %d %s %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "audit", "export", "--data-dir", dir, "--patient", "pt-0001", "--from", time.Now().AddDate(0, 0, -1).Format("2006-01-02"), "--to", time.Now().Format("2006-01-02"))
	if code != 0 || !strings.Contains(out, "kba.") {
		t.Fatalf("audit export for Maria lists nothing: %d %q", code, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("export line is not JSON: %s", line)
		}
		if strings.Contains(line, "1980") || strings.Contains(line, "Maria") {
			t.Fatalf("export carries PHI: %s", line)
		}
	}

	code, out, _ = runCLI(t, "lockouts", "list", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "identity") {
		t.Fatalf("lockouts list does not show Maria's lock: %d %q", code, out)
	}
	// It names her by patient id with the expiry the AS enforces, and the
	// --config file of serve leads to the same store.
	m := regexp.MustCompile(`identity\s+pt-0001\s+since \S+\s+until (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lockouts list does not name pt-0001 with an expiry: %q", out)
	}
	if until, err := time.Parse(time.RFC3339, m[1]); err != nil || !until.After(time.Now()) {
		t.Errorf("lock expiry %q is not a future time: %v", m[1], err)
	}
	conf := filepath.Join(t.TempDir(), "voiceauth.yaml")
	if err := os.WriteFile(conf, []byte("data_dir: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out2, errOut := runCLI(t, "lockouts", "list", "--config", conf); code != 0 || !strings.Contains(out2, "pt-0001") {
		t.Fatalf("lockouts list --config ignores the config file: %d %q %s", code, out2, errOut)
	}
	if code, _, errOut = runCLI(t, "lockouts", "clear", "--data-dir", dir, "--patient", "bogus"); code == 0 || !strings.Contains(errOut, "unknown patient") {
		t.Fatalf("lockouts clear of an unknown id: exit %d, %q", code, errOut)
	}
	if code, _, errOut = runCLI(t, "lockouts", "clear", "--data-dir", dir, "--number", "+15555550142"); code == 0 || !strings.Contains(errOut, "not locked") {
		t.Fatalf("lockouts clear of a number without a block: exit %d, %q", code, errOut)
	}
	if code, out, errOut = runCLI(t, "lockouts", "clear", "--data-dir", dir, "--patient", "pt-0001"); code != 0 {
		t.Fatalf("lockouts clear: %s %s", out, errOut)
	}
	if code, out, _ = runCLI(t, "lockouts", "list", "--data-dir", dir); code != 0 || strings.Contains(out, "identity") {
		t.Fatalf("lock still listed after clear: %q", out)
	}

	if code, out, _ = runCLI(t, "otp-outbox", "--data-dir", dir, "+15555550102"); code != 0 {
		t.Fatalf("otp-outbox: %d %q", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; len(last) != 6 {
		t.Fatalf("otp-outbox's last line is not the code: %q", last)
	}
	if code, _, _ = runCLI(t, "otp-outbox", "--data-dir", dir, "+15555550199"); code == 0 {
		t.Fatal("otp-outbox found a code for a number that never got one")
	}

	code, out, _ = runCLI(t, "keys", "show", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, `"kty":"OKP"`) || strings.Contains(out, `"d":`) {
		t.Fatalf("keys show: %d %s", code, out)
	}
	if code, out, _ = runCLI(t, "keys", "sign-tools", "--data-dir", dir); code != 0 || !strings.Contains(out, "extSignature") {
		t.Fatalf("keys sign-tools: %d %.300s", code, out)
	}
	if code, out, errOut = runCLI(t, "keys", "rotate", "--data-dir", dir); code != 0 || !strings.Contains(out, "replaces") {
		t.Fatalf("keys rotate: %d %s %s", code, out, errOut)
	}

	if code, out, errOut = runCLI(t, "secrets", "rotate", "--data-dir", dir, "--reload-wait", "0s"); code != 0 || !strings.Contains(out, "re-sealed") {
		t.Fatalf("secrets rotate: %d %s %s", code, out, errOut)
	}
	// The rotated identity key is accepted by a pinned client through the
	// published rotation record, and the re-sealed store still opens.
	st2, err := app.Start(context.Background(), app.Config{DataDir: dir, Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0", MCPAddr: "127.0.0.1:0", LogWriter: &strings.Builder{}})
	if err != nil {
		t.Fatalf("restart after rotations: %v", err)
	}
	st2.Close(context.Background())

	// An attacker who edits the trail (dropping the append-only trigger first) is caught.
	db, err := sql.Open("sqlite3", filepath.Join(dir, "voiceauth.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DROP TRIGGER audit_log_append_only"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE audit_log SET outcome = 'issued' WHERE seq = (SELECT MIN(seq) FROM audit_log)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, out, _ = runCLI(t, "audit", "verify", "--data-dir", dir)
	if code == 0 || !strings.Contains(out, "BROKEN") {
		t.Fatalf("audit verify missed a modified record: %d %s", code, out)
	}
}
