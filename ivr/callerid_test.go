package ivr

import (
	"strings"
	"testing"
)

// callerPhone keeps exactly the E.164 numbers the AS accepts and nothing else.
func FuzzCallerPhone(f *testing.F) {
	for _, s := range []string{"+15555550101", "sip:alice@example.com", "client:bob", "anonymous", "", "+1 555", "+0123456789", "+1234567890123456", "+15555550101\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, from string) {
		got := callerPhone(from)
		if got != "" && got != from {
			t.Fatalf("callerPhone(%q) = %q", from, got)
		}
		if got == "" {
			return
		}
		digits := strings.TrimPrefix(got, "+")
		if len(got) < 8 || len(got) > 16 || got[0] != '+' || digits[0] == '0' || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("callerPhone kept %q", got)
		}
	})
}
