package ivr

import (
	"strings"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/ivr/spoken"
)

func newEngineState(t *testing.T, lang spoken.Lang) (*engine, *State) {
	t.Helper()
	e := &engine{now: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }}
	st := &State{}
	e.start(st, CallInfo{CallSid: "CA1", Lang: lang}, false)
	return e, st
}

// The OTP prompt cannot depend on whether the answers matched: the AS sends
// the same AuthNeedOTP either way and the dialog says the same sentence.
func TestOTPSentenceIsNoOracle(t *testing.T) {
	var texts []string
	for _, answers := range []Answers{{Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "4567"}, {Name: "Nobody Here", Birthdate: "1999-09-09", SSNLast4: "0000"}} {
		e, st := newEngineState(t, spoken.English)
		st.Answers = answers
		e.schedule(st, Job{Kind: jobSubmit})
		job := *st.Pending
		e.finish(st, &job, jobResult{Step: AuthStep{Kind: AuthNeedOTP}, Flow: []byte(`{}`)})
		texts = append(texts, st.Out.Text())
		if st.Answers != (Answers{}) {
			t.Error("answers kept after submission")
		}
	}
	if texts[0] != texts[1] || !strings.Contains(texts[0], "If the details match our records") {
		t.Errorf("OTP prompts differ or lack the neutral wording:\n%q\n%q", texts[0], texts[1])
	}
}

// Each normalizer reason becomes its own re-prompt; the question is re-asked;
// nothing the caller said is read back except the date they gave.
func TestRepromptReasons(t *testing.T) {
	tests := []struct {
		phase phase
		in    Input
		want  string
	}{
		{phaseName, Input{Digits: "5"}, "I need your first and last name."},
		{phaseBirthdate, Input{Speech: "March third"}, "I need the month, day, and year."},
		{phaseBirthdate, Input{Speech: "February thirtieth nineteen eighty"}, "That doesn't seem to be a valid date."},
		{phaseSSN4, Input{Speech: "four five"}, "I need 4 digits."},
		{phaseOTP, Input{Speech: "one two three four five six"}, "I need 6 digits."},
		{phaseMenu, Input{Speech: "pizza"}, "Sorry, I didn't catch that."},
	}
	for _, tc := range tests {
		e, st := newEngineState(t, spoken.English)
		st.LangOffer = false
		e.ask(st, tc.phase, "ask_ssn4", nil)
		q := st.Out.Question
		if !e.handle(st, tc.in) {
			t.Fatalf("%s: input not taken", tc.phase)
		}
		if len(st.Out.Say) != 1 || st.Out.Say[0] != tc.want || st.Out.Question != q {
			t.Errorf("%s %+v: got %+v", tc.phase, tc.in, st.Out)
		}
		if strings.Contains(st.Out.Text(), "4567") || strings.Contains(st.Out.Text(), "123456") {
			t.Error("read back")
		}
	}
}

func TestSpokenDates(t *testing.T) {
	tests := []struct {
		in   string
		lang spoken.Lang
		want string
	}{
		{"1980-03-03", spoken.English, "March 3rd, 1980"},
		{"1948-02-29", spoken.English, "February 29th, 1948"},
		{"2026-11-21", spoken.English, "November 21st, 2026"},
		{"2026-11-12", spoken.English, "November 12th, 2026"},
		{"1980-03-03", spoken.Spanish, "3 de marzo de 1980"},
		{"not a date", spoken.English, "not a date"},
	}
	for _, tc := range tests {
		if got := spokenDate(tc.in, tc.lang); got != tc.want {
			t.Errorf("spokenDate(%q, %s) = %q, want %q", tc.in, tc.lang, got, tc.want)
		}
	}
	if got := spokenDateTime("2026-12-02T09:30:00-05:00", spoken.English); got != "Wednesday, December 2nd at 9:30 AM" {
		t.Errorf("got %q", got)
	}
	if got := spokenDateTime("2026-12-02T14:05:00-05:00", spoken.Spanish); got != "miércoles 2 de diciembre a las 14:05" {
		t.Errorf("got %q", got)
	}
}

// Once a call has an outcome it keeps it: a later transfer after reaching
// the menu is logged but the call stays "authenticated".
func TestOutcomeIsSetOnce(t *testing.T) {
	e, st := newEngineState(t, spoken.English)
	st.Answers = Answers{Name: "x", Birthdate: "1980-03-03", SSNLast4: "4567"}
	e.schedule(st, Job{Kind: jobSubmit})
	job := *st.Pending
	e.finish(st, &job, jobResult{Step: AuthStep{Kind: AuthAuthenticated}})
	if st.Outcome != OutcomeAuthenticated || st.Phase != phaseMenu {
		t.Fatalf("outcome %q phase %s", st.Outcome, st.Phase)
	}
	e.handle(st, Input{Speech: "agent"})
	if st.Outcome != OutcomeAuthenticated || st.Out.End != endTransfer || st.Out.Reason != ReasonCallerAsked {
		t.Errorf("after transfer: %q %q %q", st.Outcome, st.Out.End, st.Out.Reason)
	}
	if e.handle(st, Input{Speech: "appointments"}) {
		t.Error("ended call took input")
	}
}
