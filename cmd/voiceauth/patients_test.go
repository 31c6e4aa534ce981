package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/fhirimport"
	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/canary"
	"github.com/voiceauth/voiceauth/internal/twfake"
)

func asksForCode(said string) bool { return strings.Contains(said, "six digit code") }

const fhirTestdata = "../../fhirimport/testdata"

// expectedImport counts what the generated testdata must become.
func expectedImport(t *testing.T) (usable, repeated, skipped int, sample []fhirimport.Patient) {
	files, err := fhirimport.Files([]string{fhirTestdata})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	err = fhirimport.Walk(files, func(p fhirimport.Patient) error {
		if !ids[p.ID] {
			usable++
		} else {
			repeated++
		}
		ids[p.ID] = true
		sample = append(sample, p)
		return nil
	}, func(fhirimport.Skip) { skipped++ })
	if err != nil {
		t.Fatal(err)
	}
	return usable, repeated, skipped, sample
}

// TestPatientsImportedCallerAuthenticates is the scenario "an imported
// patient authenticating by phone": the EHR's export imported from the
// shell, the service in production on that store (no demo rows, and
// --generated-patients 0), and a caller from it — by official name and by
// an alias — passes KBA and the code texted to the imported mobile number.
func TestPatientsImportedCallerAuthenticates(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, "secrets", "init", "--data-dir", dir); code != 0 {
		t.Fatalf("secrets init: %s", errOut)
	}
	usable, repeated, skipped, sample := expectedImport(t)
	uniqueSkips := skipped

	// An unreadable path stops everything before anything is written.
	code, out, errOut := runCLI(t, "patients", "import", "--data-dir", dir, fhirTestdata, filepath.Join(dir, "nope.ndjson"))
	if code != 1 || !strings.Contains(errOut, "nope.ndjson") {
		t.Fatalf("unreadable path: %d %s %s", code, out, errOut)
	}
	if code, out, _ = runCLI(t, "patients", "count", "--data-dir", dir); code != 0 || strings.TrimSpace(out) != "0" {
		t.Fatalf("count after a refused import: %d %q", code, out)
	}
	// Dry run: the same report, nothing written.
	code, out, _ = runCLI(t, "patients", "import", "--dry-run", "--data-dir", dir, fhirTestdata)
	if want := fmt.Sprintf("imported %d, updated %d, skipped %d", usable, repeated, uniqueSkips); code != 0 || lastLine(out) != want {
		t.Fatalf("dry run: %d, last line %q, want %q", code, lastLine(out), want)
	}
	if _, out, _ = runCLI(t, "patients", "count", "--data-dir", dir); strings.TrimSpace(out) != "0" {
		t.Fatalf("a dry run wrote: %q", out)
	}
	saved := progressEvery
	progressEvery = 100
	code, out, errOut = runCLI(t, "patients", "import", "--data-dir", dir, fhirTestdata)
	progressEvery = saved
	if want := fmt.Sprintf("imported %d, updated %d, skipped %d", usable, repeated, uniqueSkips); code != 0 || lastLine(out) != want {
		t.Fatalf("import: %d, last line %q, want %q", code, lastLine(out), want)
	}
	if total := usable + repeated + uniqueSkips; strings.Count(errOut, "resources read") != total/100 {
		t.Fatalf("progress: %d lines for %d resources:\n%s", strings.Count(errOut, "resources read"), total, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != uniqueSkips+1 {
		t.Fatalf("every skipped resource must be listed: %d lines for %d skips", len(lines), uniqueSkips)
	}
	for _, reason := range []string{"no birthDate", "partial birthDate", "no SSN", "deceased", "active: false", "not a Patient", "unparseable"} {
		if !strings.Contains(out, reason) {
			t.Errorf("no skipped line says %q", reason)
		}
	}
	for _, p := range sample[:20] {
		if canary.Leaks(out, p.Birthdate) || strings.Contains(out, p.SSNLast4+"\n") {
			t.Fatalf("import output carries PHI of %s", p.ID)
		}
	}
	// Re-import is idempotent: everything is an update.
	code, out, _ = runCLI(t, "patients", "import", "--data-dir", dir, fhirTestdata)
	if want := fmt.Sprintf("imported 0, updated %d, skipped %d", usable+repeated, uniqueSkips); code != 0 || lastLine(out) != want {
		t.Fatalf("re-import: %q, want %q", lastLine(out), want)
	}
	if _, out, _ = runCLI(t, "patients", "count", "--data-dir", dir); strings.TrimSpace(out) != strconv.Itoa(usable) {
		t.Fatalf("count = %q, want %d", out, usable)
	}
	// The database never holds the plaintext birthdate or SSN-4.
	db, _ := os.ReadFile(filepath.Join(dir, "voiceauth.db"))
	for _, p := range sample[:50] {
		if strings.Contains(string(db), p.Birthdate) {
			t.Fatalf("plaintext birthdate of %s in the database file", p.ID)
		}
	}

	// The service in production on that store, with only imported people in
	// it, texting codes through Twilio (the fake).
	f := twfake.New(twAccount, twToken)
	defer f.Close()
	cfg, err := testServeConfig(t, dir, "--env", "production", "--generated-patients", "0", "--public-url", "https://voice.clinic.example",
		"--twilio-auth-token", twToken, "--client-secret", "clinic-client-secret-0123456789abcdef", "--otp-channel", "twilio-messaging",
		"--twilio-account-sid", twAccount, "--twilio-messaging-service-sid", "MG0123", "--twilio-api-base", f.URL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	if n, _ := st.Store().CountPatients(context.Background()); n != usable {
		t.Fatalf("production with --generated-patients 0 seeded others: %d patients, want %d", n, usable)
	}
	var withAlias, plain *fhirimport.Patient
	seen := map[string]bool{}
	for i := len(sample) - 1; i >= 0; i-- { // the last import of an id is what is stored
		p := &sample[i]
		if seen[p.ID] || p.LineType != "mobile" {
			seen[p.ID] = true
			continue
		}
		seen[p.ID] = true
		if len(p.Aliases) > 0 && withAlias == nil {
			withAlias = p
		}
		if len(p.Aliases) == 0 && plain == nil {
			plain = p
		}
	}
	voice := strings.TrimPrefix(st.VoiceURL, "http://")
	for i, tc := range []struct {
		p    *fhirimport.Patient
		name string
	}{{plain, plain.Name}, {withAlias, withAlias.Aliases[len(withAlias.Aliases)-1]}} {
		c := &caller{t: t, token: st.TwilioAuthToken, publicURL: st.PublicURL, callSid: fmt.Sprintf("CAimport%026d", i), from: tc.p.Phone}
		h := c.post(voice, "/twilio/voice", url.Values{"CallStatus": {"ringing"}})
		h = c.answer(voice, h, speech(tc.name))
		d := tc.p.Birthdate
		h = c.answer(voice, h, url.Values{"Digits": {d[5:7] + d[8:10] + d[0:4]}})
		h = c.answer(voice, h, keys4(tc.p.SSNLast4))
		if !strings.Contains(strings.ToLower(h.said), "verified") {
			t.Fatalf("imported patient %s (%q) was not verified: %q", tc.p.ID, tc.name, h.said)
		}
		h = c.answer(voice, h, speech("medications"))
		code, ok := f.LatestCode(tc.p.Phone)
		if !ok {
			t.Fatalf("no code texted to the imported mobile number (heard %q)", h.said)
		}
		if h = c.answer(voice, h, url.Values{"Digits": {code}}); asksForCode(h.said) {
			t.Fatalf("the texted code did not work: %q", h.said)
		}
	}
}

// testServeConfig resolves serve's flags the way `voiceauth serve` does,
// on ephemeral ports.
func testServeConfig(t *testing.T, dir string, extra ...string) (app.Config, error) {
	args := append([]string{"--data-dir", dir, "--addr", "127.0.0.1:0", "--as-addr", "127.0.0.1:0", "--mcp-addr", "127.0.0.1:0"}, extra...)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v, err := resolve(fs, args, func(string) string { return "" })
	if err != nil {
		return app.Config{}, err
	}
	cfg, err := v.appConfig()
	cfg.LogWriter = io.Discard
	return cfg, err
}
