package main

import (
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/internal/twfake"
)

const (
	twAccount = "AC0123456789abcdef0123456789abcdef"
	twToken   = "0123456789abcdef0123456789abcdef"
)

// TestTwilioConfigure points a number at the service through twilio-go and
// the fake Twilio REST server: --dry-run shows the change and makes none,
// the real run makes it, a second run finds nothing to do, and a number
// outside the account or wrong credentials are clear errors.
func TestTwilioConfigure(t *testing.T) {
	f := twfake.New(twAccount, twToken)
	defer f.Close()
	f.AddNumber("+15555550999")
	f.AddNumber("+15555550000")
	t.Setenv("TWILIO_ACCOUNT_SID", twAccount)
	t.Setenv("TWILIO_AUTH_TOKEN", twToken+","+"fedcba9876543210fedcba9876543210")
	t.Setenv("VOICEAUTH_TWILIO_API_BASE", f.URL)
	base := []string{"twilio", "configure", "--number", "+15555550000", "--public-url", "https://voice.clinic.example/"}

	code, out, errOut := runCLI(t, append(base, "--dry-run")...)
	if code != 0 || !strings.Contains(out, "(none) → https://voice.clinic.example/twilio/voice") ||
		!strings.Contains(out, "(none) → https://voice.clinic.example/twilio/status") || lastLine(out) != "dry run: nothing changed" {
		t.Fatalf("dry run: %d\n%s\n%s", code, out, errOut)
	}
	for _, r := range f.Requests() {
		if strings.HasPrefix(r, "POST") {
			t.Fatalf("the dry run changed something: %v", f.Requests())
		}
	}
	if n, _ := f.Number("+15555550000"); n.VoiceURL != "" {
		t.Fatalf("dry run set %+v", n)
	}

	code, out, errOut = runCLI(t, base...)
	if code != 0 || lastLine(out) != "updated 2 setting(s)" {
		t.Fatalf("configure: %d\n%s\n%s", code, out, errOut)
	}
	n, _ := f.Number("+15555550000")
	if n.VoiceURL != "https://voice.clinic.example/twilio/voice" || n.VoiceMethod != "POST" ||
		n.StatusCallback != "https://voice.clinic.example/twilio/status" || n.StatusCallbackMethod != "POST" {
		t.Fatalf("number after configure: %+v", n)
	}
	if other, _ := f.Number("+15555550999"); other.VoiceURL != "" {
		t.Fatalf("another number was changed: %+v", other)
	}
	if code, out, _ = runCLI(t, base...); code != 0 || lastLine(out) != "already configured; nothing changed" {
		t.Fatalf("second run: %d %s", code, out)
	}

	if code, _, errOut = runCLI(t, "twilio", "configure", "--number", "+15555550123", "--public-url", "https://voice.clinic.example"); code != 1 || !strings.Contains(errOut, "+15555550123 is not a number of account") {
		t.Fatalf("unknown number: %d %s", code, errOut)
	}
	t.Setenv("TWILIO_AUTH_TOKEN", "ffffffffffffffffffffffffffffffff")
	if code, _, errOut = runCLI(t, base...); code != 1 || !strings.Contains(errOut, "20003") || strings.Contains(errOut, "ffffffff") {
		t.Fatalf("bad credentials: %d %s", code, errOut)
	}
	for _, args := range [][]string{
		{"twilio", "configure", "--public-url", "https://voice.clinic.example"},
		{"twilio", "configure", "--number", "5555550000", "--public-url", "https://voice.clinic.example"},
		{"twilio", "configure", "--number", "+15555550000", "--public-url", "http://voice.clinic.example"},
		{"twilio", "configure", "--number", "+15555550000"},
		{"twilio", "buy"},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
