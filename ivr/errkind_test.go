package ivr

import "testing"

// A log line for "no error" (the subject-token race: the call came first,
// nothing failed) must not crash the handler.
func TestErrKindNil(t *testing.T) {
	if got := errKind(nil); got != "none" {
		t.Fatalf("errKind(nil) = %q", got)
	}
}
