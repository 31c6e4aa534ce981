package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/session"
)

// startStack runs the embedded stack on a data dir until the test cleans up.
func startStack(t *testing.T, dir string) *app.Stack {
	t.Helper()
	st, err := app.Start(context.Background(), app.Config{DataDir: dir, Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0",
		MCPAddr: "127.0.0.1:0", LogWriter: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAuditAnchorCommands: `audit anchor` prints a signed checkpoint, and
// `audit verify --checkpoint` holds the chain to it: a truncation that also
// rewinds the head row passes a plain verify but not the checkpoint, and a
// checkpoint that was altered or signed by another key is refused.
func TestAuditAnchorCommands(t *testing.T) {
	dir := t.TempDir()
	st := startStack(t, dir)
	secret := readClientSecret(t, filepath.Join(dir, "secrets.json"))
	for range 2 {
		kba(t, st.ASURL, st.MCPURL, secret, "+15555550101", "Maria Garcia", "1980-03-03", "0000")
	}
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, "audit", "anchor", "--data-dir", dir)
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 0 || strings.Count(out, ".") != 2 {
		t.Fatalf("audit anchor: %d %q %q", code, out, errOut)
	}
	cpFile := filepath.Join(t.TempDir(), "anchor.jws")
	if err := os.WriteFile(cpFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "audit", "verify", "--data-dir", dir, "--checkpoint", cpFile)
	if code != 0 || !strings.Contains(out, "signature valid") || !strings.Contains(out, "holds the anchored record") ||
		strings.Contains(out, "record 1 anchored") {
		t.Fatalf("audit verify --checkpoint on an intact trail: %d %q %q", code, out, errOut)
	}

	// More events after the anchor; the checkpoint still verifies.
	st = startStack(t, dir)
	kba(t, st.ASURL, st.MCPURL, secret, "+15555550101", "Maria Garcia", "1980-03-03", "0000")
	st.Close(context.Background())
	if code, out, _ = runCLI(t, "audit", "verify", "--data-dir", dir, "--checkpoint", cpFile); code != 0 {
		t.Fatalf("audit verify --checkpoint after more events: %d %q", code, out)
	}

	// An altered checkpoint (another sequence number) and one signed by
	// another instance's key are refused.
	b, _ := os.ReadFile(cpFile)
	parts := strings.Split(strings.TrimSpace(string(b)), ".")
	forged := filepath.Join(t.TempDir(), "forged.jws")
	os.WriteFile(forged, []byte(parts[0]+"."+strings.ToUpper(parts[1][:4])+parts[1][4:]+"."+parts[2]), 0o600)
	if code, out, _ = runCLI(t, "audit", "verify", "--data-dir", dir, "--checkpoint", forged); code == 0 || !strings.Contains(out, "REFUSED") {
		t.Fatalf("an altered checkpoint was accepted: %d %q", code, out)
	}
	other := t.TempDir()
	if code, _, errOut = runCLI(t, "secrets", "init", "--data-dir", other); code != 0 {
		t.Fatal(errOut)
	}
	if code, out, _ = runCLI(t, "audit", "verify", "--data-dir", dir, "--secrets-file", filepath.Join(other, "secrets.json"), "--checkpoint", cpFile); code == 0 || !strings.Contains(out, "REFUSED") {
		t.Fatalf("a checkpoint was accepted under another instance's anchor key: %d %q", code, out)
	}

	// Truncate the trail back to record 1 and rewind the head row with it:
	// the chain itself is consistent again, only the checkpoint knows.
	db, err := sql.Open("sqlite3", filepath.Join(dir, "voiceauth.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DELETE FROM audit_log WHERE seq > 1",
		"UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM audit_log WHERE seq = 1) WHERE id = 1",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if code, out, _ = runCLI(t, "audit", "verify", "--data-dir", dir); code != 0 {
		t.Fatalf("plain verify after a consistent truncation: %d %q (the checkpoint is what catches this)", code, out)
	}
	code, out, _ = runCLI(t, "audit", "verify", "--data-dir", dir, "--checkpoint", cpFile)
	if code == 0 || !strings.Contains(out, "BROKEN") || !strings.Contains(out, "truncated") {
		t.Fatalf("audit verify --checkpoint missed a truncation: %d %q", code, out)
	}

	// A broken trail is not anchored.
	db, _ = sql.Open("sqlite3", filepath.Join(dir, "voiceauth.db"))
	db.Exec("DROP TRIGGER audit_log_append_only")
	db.Exec("UPDATE audit_log SET outcome = 'ok' WHERE seq = 1")
	db.Close()
	if code, out, errOut = runCLI(t, "audit", "anchor", "--data-dir", dir); code == 0 || out != "" || !strings.Contains(errOut, "broken") {
		t.Fatalf("audit anchor on a broken trail: %d %q %q", code, out, errOut)
	}
}

// TestPinsCommands: list shows each pinned MCP server; clear forgets one,
// is audited, and refuses an unknown server or a missing --server.
func TestPinsCommands(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, "secrets", "init", "--data-dir", dir); code != 0 {
		t.Fatal(errOut)
	}
	code, out, _ := runCLI(t, "pins", "list", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "no MCP server keys are pinned") {
		t.Fatalf("pins list (none): %d %q", code, out)
	}
	ctx := context.Background()
	st, _, err := app.OpenStore(ctx, app.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []session.Pin{
		{Server: "https://mcp-a.example/mcp", KeyID: "kid-a", Thumbprint: "tp-a-0123456789", Key: []byte(`{"kty":"OKP"}`)},
		{Server: "https://mcp-b.example/mcp", KeyID: "kid-b", Thumbprint: "tp-b-0123456789", Key: []byte(`{"kty":"OKP"}`)},
	} {
		if err := st.PutPin(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	code, out, _ = runCLI(t, "pins", "list", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "https://mcp-a.example/mcp") || !strings.Contains(out, "tp-b-0123456789") || !strings.Contains(out, "kid-a") {
		t.Fatalf("pins list: %d %q", code, out)
	}
	code, out, errOut := runCLI(t, "pins", "clear", "--data-dir", dir, "--server", "https://mcp-a.example/mcp")
	if code != 0 || !strings.Contains(out, "cleared") {
		t.Fatalf("pins clear: %d %q %q", code, out, errOut)
	}
	if code, out, _ = runCLI(t, "pins", "list", "--data-dir", dir); code != 0 || strings.Contains(out, "mcp-a") || !strings.Contains(out, "mcp-b") {
		t.Fatalf("pins list after clear: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "audit", "export", "--data-dir", dir)
	var cleared map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["type"] == "mcp.pin.cleared" {
			cleared = rec
		}
	}
	if code != 0 || cleared == nil || !strings.Contains(out, "https://mcp-a.example/mcp") || !strings.Contains(out, "tp-a-0123456789") {
		t.Fatalf("pin clearing is not in the audit trail: %d %q", code, out)
	}
	if code, out, _ = runCLI(t, "audit", "verify", "--data-dir", dir); code != 0 {
		t.Fatalf("audit verify after pins clear: %q", out)
	}

	if code, _, errOut = runCLI(t, "pins", "clear", "--data-dir", dir, "--server", "https://mcp-a.example/mcp"); code != 1 || !strings.Contains(errOut, "no pin") {
		t.Fatalf("pins clear of an unknown server: %d %q", code, errOut)
	}
	if code, _, errOut = runCLI(t, "pins", "clear", "--data-dir", dir); code != 2 || !strings.Contains(errOut, "--server") {
		t.Fatalf("pins clear without --server: %d %q", code, errOut)
	}
	if code, _, _ = runCLI(t, "pins", "frobnicate"); code != 2 {
		t.Fatalf("pins with an unknown subcommand: %d", code)
	}
	for _, args := range [][]string{{"pins", "-h"}, {"pins", "--help"}} {
		if code, out, _ = runCLI(t, args...); code != 0 || !strings.Contains(out, "  clear ") || !strings.Contains(out, "  list ") {
			t.Fatalf("%v: %d %q", args, code, out)
		}
	}
	if code, out, _ = runCLI(t, "pins", "clear", "-h"); code != 0 || !strings.Contains(out, "usage: voiceauth pins clear --server URL") || !strings.Contains(out, "-data-dir") {
		t.Fatalf("pins clear -h: %d %q", code, out)
	}
}

// TestAuditKeyInSecrets: the secrets file carries the audit keys; an older
// file without them is refused by operator commands until `secrets init`
// adds them (keys made up for one run would key records no later run could
// verify), and `secrets rotate --what audit` keeps the old key verifying.
func TestAuditKeyInSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secrets.json")
	if code, _, errOut := runCLI(t, "secrets", "init", "--data-dir", dir); code != 0 {
		t.Fatal(errOut)
	}
	var raw map[string]json.RawMessage
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &raw); err != nil || raw["audit_keys"] == nil || raw["audit_anchor_key"] == nil {
		t.Fatalf("secrets file has no audit keys: %v", err)
	}
	// Simulate a file from an earlier version.
	delete(raw, "audit_keys")
	delete(raw, "audit_current")
	delete(raw, "audit_anchor_key")
	b, _ = json.Marshal(raw)
	os.WriteFile(path, b, 0o600)
	if code, _, errOut := runCLI(t, "audit", "verify", "--data-dir", dir); code == 0 || !strings.Contains(errOut, "secrets init") {
		t.Fatalf("audit verify with a secrets file lacking audit keys: %d %q", code, errOut)
	}
	if code, out, errOut := runCLI(t, "secrets", "init", "--data-dir", dir); code != 0 || !strings.Contains(out, "added the missing keys") {
		t.Fatalf("secrets init on a file without audit keys: %d %q %q", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "secrets", "init", "--data-dir", dir); code != 0 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("secrets init on a complete file: %d %q", code, out)
	}
	if code, out, errOut := runCLI(t, "pins", "list", "--data-dir", dir); code != 0 {
		t.Fatalf("after secrets init: %d %q %q", code, out, errOut)
	}
	// Records under key 1, rotation, records under key 2: all verify.
	appendOne := func() {
		st, _, err := app.OpenStore(context.Background(), app.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.AppendAudit(context.Background(), &session.AuditEvent{Type: "kba.failed"}); err != nil {
			t.Fatal(err)
		}
	}
	appendOne()
	if code, out, errOut := runCLI(t, "secrets", "rotate", "--what", "audit", "--data-dir", dir); code != 0 {
		t.Fatalf("secrets rotate --what audit: %d %q %q", code, out, errOut)
	}
	sec, _, err := app.LoadSecrets(path, false)
	if err != nil || sec.AuditCurrent != 2 || len(sec.AuditKeys) != 2 {
		t.Fatalf("after rotation: current %d, %d keys, %v", sec.AuditCurrent, len(sec.AuditKeys), err)
	}
	appendOne()
	if code, out, _ := runCLI(t, "audit", "verify", "--data-dir", dir); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify across an audit key rotation: %d %q", code, out)
	}
}

// TestDataAtRestModes: after serving calls (one texts a code), the store's
// files, the secrets file and the OTP outbox are owner-only, and a secrets
// file or outbox left world-readable by an older version is tightened.
func TestDataAtRestModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st := startStack(t, dir)
	secret := readClientSecret(t, filepath.Join(dir, "secrets.json"))
	kba(t, st.ASURL, st.MCPURL, secret, "+15555559876", "James O'Brien", "1955-11-30", "0912") // texts a code
	files := []string{"voiceauth.db", "voiceauth.db-wal", "voiceauth.db-shm", "secrets.json", "otp-outbox.jsonl"}
	check := func(when string) {
		t.Helper()
		for _, f := range files {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if m := fi.Mode().Perm(); m&0o077 != 0 {
				t.Errorf("%s: %s has mode %04o, readable by group or others", when, f, m)
			}
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: data dir mode %v, %v", when, fi.Mode().Perm(), err)
		}
	}
	check("serving")
	st.Close(context.Background())
	for _, f := range files {
		os.Chmod(filepath.Join(dir, f), 0o644)
	}
	st = startStack(t, dir)
	defer st.Close(context.Background())
	check("restarted")
}
