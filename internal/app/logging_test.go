package app

import (
	"bytes"
	"strings"
	"testing"
)

func TestLoggerRedacts(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, ParseLevel("debug"))
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJwdC0wMDAxIn0.c2lnbmF0dXJl"
	log.Info("got token "+jwt, "kba_birthdate", "1980-03-03", "otp", "123456", "access_token", "opaque-secret",
		"note", "bearer "+jwt, "call", "call:0011223344556677")
	log.With("ssn_last4", "4567").Debug("with attrs")
	out := buf.String()
	for _, leak := range []string{"1980-03-03", "123456", "opaque-secret", jwt, "4567"} {
		if strings.Contains(out, leak) {
			t.Errorf("log leaks %q:\n%s", leak, out)
		}
	}
	if !strings.Contains(out, "call:0011223344556677") || !strings.Contains(out, "[redacted") {
		t.Errorf("log lost its harmless fields or redaction markers:\n%s", out)
	}
}
