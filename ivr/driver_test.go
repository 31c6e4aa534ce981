package ivr

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/prompts"
)

// A whole call through the exported Driver alone, as a new front end
// (Media Streams, SIP) would drive it: start, turns, a backend job awaited,
// a repeated turn that changes nothing, hang-up that ends the call once.
func TestDriverWholeCall(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	d := f.srv.Driver()
	ctx := context.Background()
	sid := "CA" + strings.Repeat("4", 32)
	info := CallInfo{CallSid: sid, From: "+15555550101", To: "+15555550199"}

	st, err := d.Start(ctx, info)
	if err != nil || st.Out.Question == "" || st.Pending != nil {
		t.Fatalf("Start: %+v, %v; want a first question", st, err)
	}
	again, err := d.Start(ctx, info) // a retried start finds the call
	if err != nil || again.Turn != st.Turn || again.Out.Text() != st.Out.Text() {
		t.Fatalf("retried Start: %+v, %v; want the same state", again, err)
	}
	if d.LanguageTag(st) != "en-US" || d.TransferNumber() == "" {
		t.Fatalf("language tag %q, transfer number %q", d.LanguageTag(st), d.TransferNumber())
	}

	say := func(speech, want string, job bool) *State {
		t.Helper()
		turn := st.Turn
		next, applied, err := d.Turn(ctx, sid, turn, Input{Speech: speech})
		if err != nil || !applied {
			t.Fatalf("turn %d %q: applied %v, err %v", turn, speech, applied, err)
		}
		if (next.Pending != nil) != job {
			t.Fatalf("turn %q: pending job %v, want %v", speech, next.Pending != nil, job)
		}
		if job {
			if next, err = d.Await(ctx, sid, 10*time.Second); err != nil {
				t.Fatalf("Await: %v", err)
			}
		}
		if next.Pending != nil || !strings.Contains(next.Out.Text(), want) {
			t.Fatalf("after %q: pending %v, heard %q; want %q", speech, next.Pending != nil, next.Out.Text(), want)
		}
		// The same turn delivered again changes nothing.
		if rep, applied, err := d.Turn(ctx, sid, turn, Input{Speech: speech}); err != nil || applied || rep.Turn != next.Turn {
			t.Fatalf("repeated turn %d: applied %v, turn %d, err %v", turn, applied, rep.Turn, err)
		}
		st = next
		return next
	}
	say("My name is Maria Garcia.", "date of birth", false)
	say("March third nineteen eighty", "last four", false)
	if st := say("four five six seven", "verified", true); !st.Authenticated || st.Outcome != OutcomeAuthenticated {
		t.Fatalf("after KBA: authenticated %v outcome %q", st.Authenticated, st.Outcome)
	}
	if hold := d.Phrase(st, prompts.Hold); hold == "" {
		t.Fatal("no hold phrase")
	}

	if err := d.Hangup(ctx, sid); err != nil {
		t.Fatalf("Hangup: %v", err)
	}
	f.waitEnded(sid)
	if err := d.Hangup(ctx, sid); err != nil { // a repeated hang-up is not an error
		t.Fatalf("second Hangup: %v", err)
	}
	c, end := f.state(sid)
	if !c.Ended || end.Outcome != OutcomeAuthenticated {
		t.Fatalf("after hang-up: ended %v outcome %q; want the reached outcome kept", c.Ended, end.Outcome)
	}
	if _, applied, err := d.Turn(ctx, sid, end.Turn, Input{Speech: "appointments"}); err != nil || applied {
		t.Fatalf("turn after hang-up: applied %v, err %v", applied, err)
	}
	f.be.mu.Lock()
	n := f.be.ended[sid]
	f.be.mu.Unlock()
	if n != 1 {
		t.Fatalf("EndCall ran %d times, want once", n)
	}

	// A call hung up before any turn ends as caller_hung_up.
	sid2 := "CA" + strings.Repeat("3", 32)
	if _, err := d.Start(ctx, CallInfo{CallSid: sid2, From: "+15555550101"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Hangup(ctx, sid2); err != nil {
		t.Fatal(err)
	}
	if _, st2 := f.state(sid2); st2.Outcome != OutcomeHungUp {
		t.Fatalf("outcome %q, want %q", st2.Outcome, OutcomeHungUp)
	}
}
