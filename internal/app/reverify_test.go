package app_test

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/canary"
)

// clock is a settable clock shared by every part of one stack.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var asksAgain = regexp.MustCompile(`(?i)confirm who you are again`)

// TestReverifyAfterLongCall (issue 19): a caller verified more than the
// AS's ReverifyAfter ago whose access token has expired is not told "tool
// denied": the refresh answers insufficient_authorization with an
// auth_session, the caller proves who they are again on that session, and
// the tool they asked for is read out.
func TestReverifyAfterLongCall(t *testing.T) {
	clk := &clock{now: time.Now()}
	st, logs := startStack(t, app.Config{Now: clk.Now})
	p := &phone{t: t, st: st, callSid: "CAreverify0000000000000000000000001", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := authenticate(t, p, "Maria Garcia", "March third nineteen eighty", "4567")
	if !strings.Contains(tr.said, "verified") {
		t.Fatalf("KBA did not verify: %q", tr.said)
	}
	tr = p.say(tr, "appointments")
	if !strings.Contains(tr.said, "Dr. ") {
		t.Fatalf("expected appointments, heard %q", tr.said)
	}

	// Past the access token's lifetime (10 min) and the AS's ReverifyAfter (1 h).
	clk.advance(61 * time.Minute)
	tr = p.say(tr, "appointments")
	if !asksAgain.MatchString(tr.said) || !asksName.MatchString(tr.said) {
		t.Fatalf("after ReverifyAfter the caller should be asked to verify again, heard %q\nwhole call:\n%s\n%s",
			tr.said, strings.Join(p.heard, "\n"), logs.String())
	}
	if strings.Contains(tr.said, "Dr. ") {
		t.Fatal("appointments were read before the caller verified again")
	}
	tr = p.say(tr, "Maria Garcia")
	tr = p.say(tr, "March third nineteen eighty")
	if !asksSSN.MatchString(tr.said) {
		t.Fatalf("expected the SSN-4 question, heard %q", tr.said)
	}
	tr = p.press(tr, "4567")
	if !strings.Contains(tr.said, "Dr. ") {
		t.Fatalf("after re-verification, expected the appointments, heard %q\nwhole call:\n%s", tr.said, strings.Join(p.heard, "\n"))
	}
	// The menu still works on the new token.
	tr = p.say(tr, "appointments")
	if !strings.Contains(tr.said, "Dr. ") {
		t.Fatalf("expected appointments on the new token, heard %q", tr.said)
	}
}

// TestReverifyWrongAnswersTransfer: a caller who cannot prove who they are
// again never hears the tool's result.
func TestReverifyWrongAnswersTransfer(t *testing.T) {
	clk := &clock{now: time.Now()}
	st, _ := startStack(t, app.Config{Now: clk.Now})
	p := &phone{t: t, st: st, callSid: "CAreverify0000000000000000000000002", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := authenticate(t, p, "Maria Garcia", "March third nineteen eighty", "4567")
	if !strings.Contains(tr.said, "verified") {
		t.Fatalf("KBA did not verify: %q", tr.said)
	}
	clk.advance(61 * time.Minute)
	tr = p.say(tr, "appointments")
	if !asksAgain.MatchString(tr.said) {
		t.Fatalf("expected the re-verification prompt, heard %q", tr.said)
	}
	for i := 0; i < 8 && !tr.dial && tr.action != ""; i++ {
		switch {
		case asksSSN.MatchString(tr.said):
			tr = p.press(tr, "0000")
		case asksDOB.MatchString(tr.said):
			tr = p.say(tr, "January first nineteen ninety")
		default:
			tr = p.say(tr, "Maria Garcia")
		}
	}
	if !tr.dial {
		t.Fatalf("wrong re-verification answers did not end in a transfer: %q", tr.said)
	}
	if strings.Contains(strings.Join(p.heard, " "), "Dr. ") {
		t.Fatal("appointments were read without re-verification")
	}
}

// TestReverifyAfterStepUp: a caller who stepped up for medications and is
// re-verified an hour later answers KBA and then a fresh one-time code (the
// AS's session keeps the medications scope, which needs it), and hears the
// medications.
func TestReverifyAfterStepUp(t *testing.T) {
	clk := &clock{now: time.Now()}
	st, logs := startStack(t, app.Config{Now: clk.Now})
	p := &phone{t: t, st: st, callSid: "CAreverify0000000000000000000000003", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := authenticate(t, p, "Maria Garcia", "March third nineteen eighty", "4567")
	tr = p.say(tr, "medications")
	if !asksCode.MatchString(tr.said) {
		t.Fatalf("expected the code prompt, heard %q", tr.said)
	}
	first, err := st.LatestOTP("+15555550101")
	if err != nil {
		t.Fatal(err)
	}
	if tr = p.press(tr, first); !strings.Contains(tr.said, "Lisinopril") {
		t.Fatalf("expected the medications, heard %q", tr.said)
	}

	clk.advance(61 * time.Minute)
	tr = p.say(tr, "medications")
	if !asksAgain.MatchString(tr.said) || !asksName.MatchString(tr.said) {
		t.Fatalf("expected re-verification, heard %q", tr.said)
	}
	tr = p.say(tr, "Maria Garcia")
	tr = p.say(tr, "March third nineteen eighty")
	tr = p.press(tr, "4567")
	if !asksCode.MatchString(tr.said) {
		t.Fatalf("the medications scope needs a fresh code after KBA, heard %q\n%s", tr.said, strings.Join(p.heard, "\n"))
	}
	second, err := st.LatestOTP("+15555550101")
	if err != nil || second == first {
		t.Fatalf("no fresh code was sent (%v)", err)
	}
	if tr = p.press(tr, second); !strings.Contains(tr.said, "Lisinopril") {
		t.Fatalf("after re-verification, expected the medications, heard %q\nwhole call:\n%s", tr.said, strings.Join(p.heard, "\n"))
	}
	for _, secret := range []string{first, second} {
		if canary.Leaks(logs.String(), secret) {
			t.Error("a one-time code appears in the logs")
		}
	}
}
