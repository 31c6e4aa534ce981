package ivr

import (
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/ivr/spoken"
)

// verifiedAtMenu is a caller who passed KBA and the one-time code.
func verifiedAtMenu(t *testing.T, lang spoken.Lang) (*engine, *State) {
	e, st := newEngineState(t, lang)
	st.LangOffer = false
	st.Authenticated, st.SteppedUp, st.StepUps, st.Outcome = true, true, maxStepUps, OutcomeAuthenticated
	e.ask(st, phaseMenu, "menu", nil)
	return e, st
}

// runTool schedules a tool job and finishes it with err.
func runTool(e *engine, st *State, tool string, err error) Job {
	e.schedule(st, Job{Kind: jobTool, Tool: tool, Args: map[string]any{}, Purpose: "medications"})
	job := *st.Pending
	e.finish(st, &job, jobResult{Err: err})
	return job
}

// TestReverifyAsksAgainThenRunsTheTool (issue 19): ErrReverify is not "tool
// denied": the caller hears why, answers whatever the AS asks next (here
// KBA), and the refused tool runs after; the step-up mark of the old token
// is cleared, so the new token may be stepped up once more.
func TestReverifyAsksAgainThenRunsTheTool(t *testing.T) {
	for _, tc := range []struct {
		lang      spoken.Lang
		why, name string
	}{
		{spoken.English, "confirm who you are again", "first and last name"},
		{spoken.Spanish, "confirmar su identidad otra vez", "nombre"},
	} {
		e, st := verifiedAtMenu(t, tc.lang)
		tool := runTool(e, st, "list_medications", ErrReverify)
		if st.Pending == nil || st.Pending.Kind != jobSubmit || !st.Pending.StepUp {
			t.Fatalf("%s: ErrReverify should re-enter Submit, pending %+v, said %q", tc.lang, st.Pending, st.Out.Text())
		}
		if st.AfterAuth == nil || st.AfterAuth.Tool != tool.Tool || st.SteppedUp || st.StepUps != 0 {
			t.Fatalf("%s: after-auth %+v stepped-up %v %d", tc.lang, st.AfterAuth, st.SteppedUp, st.StepUps)
		}
		sub := *st.Pending
		e.finish(st, &sub, jobResult{Step: AuthStep{Kind: AuthNeedMore, Need: []string{"kba_name", "kba_birthdate", "kba_ssn_last4"}}, Flow: []byte(`{}`)})
		said := st.Out.Text()
		if !strings.Contains(said, tc.why) || !strings.Contains(strings.ToLower(said), tc.name) || st.Phase != phaseName {
			t.Fatalf("%s: expected the reason and the name question, heard %q (phase %s)", tc.lang, said, st.Phase)
		}
		st.Answers = Answers{Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "4567"}
		e.schedule(st, Job{Kind: jobSubmit})
		sub = *st.Pending
		e.finish(st, &sub, jobResult{Step: AuthStep{Kind: AuthAuthenticated}, Flow: []byte(`{}`)})
		if st.Pending == nil || st.Pending.Kind != jobTool || st.Pending.Tool != "list_medications" {
			t.Fatalf("%s: the refused tool should run after re-verification, pending %+v", tc.lang, st.Pending)
		}
	}
}

// TestReverifyIsBounded: a server that keeps asking for re-verification
// gets the caller a person, never an endless loop of questions.
func TestReverifyIsBounded(t *testing.T) {
	e, st := verifiedAtMenu(t, spoken.English)
	for i := 0; i < maxReverify; i++ {
		runTool(e, st, "list_appointments", ErrReverify)
		if st.Out.End != "" {
			t.Fatalf("re-verification %d ended the call: %q", i+1, st.Out.Text())
		}
		st.Pending, st.AfterAuth = nil, nil
		e.ask(st, phaseMenu, "menu", nil)
	}
	runTool(e, st, "list_appointments", ErrReverify)
	if st.Out.End != endTransfer || st.Out.Reason != ReasonBackendDown {
		t.Fatalf("re-verification %d: %+v, want a transfer", maxReverify+1, st.Out)
	}
}

// TestStepUpsAreBounded: a second step-up on the same proof is allowed (a
// later tool may need a scope the first did not name); beyond maxStepUps
// the caller hears "can't do that" and stays at the menu.
func TestStepUpsAreBounded(t *testing.T) {
	e, st := verifiedAtMenu(t, spoken.English)
	st.SteppedUp, st.StepUps = false, 0
	for i := 0; i < maxStepUps; i++ {
		runTool(e, st, "request_refill", ErrStepUp)
		if st.Pending == nil || st.Pending.Kind != jobSubmit || !st.Pending.StepUp {
			t.Fatalf("step-up %d not started: %q", i+1, st.Out.Text())
		}
		sub := *st.Pending
		e.finish(st, &sub, jobResult{Step: AuthStep{Kind: AuthAuthenticated}, Flow: []byte(`{}`)})
		if st.Pending == nil || st.Pending.Tool != "request_refill" {
			t.Fatalf("step-up %d: the tool should run again, pending %+v", i+1, st.Pending)
		}
		st.Pending = nil
	}
	runTool(e, st, "request_refill", ErrStepUp)
	if st.Pending != nil || st.Phase != phaseMenu || !strings.Contains(st.Out.Text(), "can't do that") {
		t.Fatalf("step-up %d: pending %+v, heard %q", maxStepUps+1, st.Pending, st.Out.Text())
	}
}
