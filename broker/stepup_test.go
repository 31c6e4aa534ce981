package broker_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/ivr"
)

// TestStepUpScopeFromChallenge (issue 19): the step-up asks the AS for the
// union of the scope asked for before (x:read, from the PRM) and the scope
// the MCP server's 403 challenged (x:write) — not the demo's scopes, which
// this AS does not know — and the tool then runs.
func TestStepUpScopeFromChallenge(t *testing.T) {
	s := newStack(t)
	c := newCaller(t, s, "CAstepscope1")
	ctx := context.Background()
	if step := c.kba(); step.Kind != ivr.AuthAuthenticated {
		t.Fatalf("KBA: %+v", step)
	}
	if _, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil); err != nil {
		t.Fatalf("x_read with the KBA token: %v", err)
	}
	if _, err := s.b.Call(ctx, c.call.CallSid, "x_write", nil); !errors.Is(err, ivr.ErrStepUp) {
		t.Fatalf("x_write with an x:read token: %v, want ErrStepUp", err)
	}
	if step := c.submit(ivr.Answers{}, true); step.Kind != ivr.AuthNeedOTP {
		t.Fatalf("step-up to x:write (which needs the code at this AS): %+v", step)
	}
	code := s.otp.last(maria)
	if len(code) != 6 {
		t.Fatal("no code was sent")
	}
	if step := c.submit(ivr.Answers{OTP: code}, true); step.Kind != ivr.AuthAuthenticated {
		t.Fatalf("code: %+v", step)
	}
	asked := s.challengeScopes()
	if want := []string{"x:read", "x:read x:write", "x:read x:write"}; !slices.Equal(asked, want) {
		t.Fatalf("scopes asked at the challenge endpoint: %q, want %q", asked, want)
	}
	res, err := s.b.Call(ctx, c.call.CallSid, "x_write", nil)
	if err != nil || string(res) != `{"tool":"x_write"}` {
		t.Fatalf("x_write after the step-up: %s %v", res, err)
	}
	ts, err := s.store.GetTokens(ctx, c.call.CallSid)
	if err != nil || ts.Scope != "x:read x:write" {
		t.Fatalf("stored token scope %q (%v), want the union", ts.Scope, err)
	}
}

// TestStepUpWithoutChallengeAsksForCode: a step-up with no challenge kept
// (the refusal's record lost or expired) keeps the old behaviour: the flow's
// scope with the one-time code.
func TestStepUpWithoutChallengeAsksForCode(t *testing.T) {
	s := newStack(t)
	c := newCaller(t, s, "CAstepnochal1")
	if step := c.kba(); step.Kind != ivr.AuthAuthenticated {
		t.Fatalf("KBA: %+v", step)
	}
	if step := c.submit(ivr.Answers{}, true); step.Kind != ivr.AuthNeedOTP {
		t.Fatalf("step-up without a challenge: %+v, want the code", step)
	}
	if asked := s.challengeScopes(); asked[len(asked)-1] != "x:read" {
		t.Fatalf("scope asked %q, want the flow's own", asked)
	}
}

// TestReverifyOnRefresh (issue 19): after the AS's ReverifyAfter (1 h) an
// expired token's refresh is answered insufficient_authorization with an
// auth_session; the tool call says ErrReverify (not "denied"), the next
// Submit resumes on that session and asks for KBA again, and the answers
// yield a new token with which the tool runs.
func TestReverifyOnRefresh(t *testing.T) {
	s := newStack(t)
	c := newCaller(t, s, "CAreverify01")
	ctx := context.Background()
	if step := c.kba(); step.Kind != ivr.AuthAuthenticated {
		t.Fatalf("KBA: %+v", step)
	}
	if _, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil); err != nil {
		t.Fatal(err)
	}
	before, _ := s.store.GetTokens(ctx, c.call.CallSid)

	// Within ReverifyAfter an expired token is refreshed silently.
	s.clk.advance(11 * time.Minute)
	if _, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil); err != nil {
		t.Fatalf("refresh within ReverifyAfter: %v", err)
	}
	s.clk.advance(61 * time.Minute)
	if _, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil); !errors.Is(err, ivr.ErrReverify) {
		t.Fatalf("expired token past ReverifyAfter: %v, want ErrReverify", err)
	}
	// The same on an instance with no MCP session for the call yet (the
	// refusal comes while connecting, not on a tool call).
	s.b.Close()
	if _, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil); !errors.Is(err, ivr.ErrReverify) {
		t.Fatalf("expired token past ReverifyAfter, connecting: %v, want ErrReverify", err)
	}
	step := c.submit(ivr.Answers{}, true)
	if step.Kind != ivr.AuthNeedMore || len(step.Need) != 3 {
		t.Fatalf("re-verification should ask for KBA: %+v", step)
	}
	if step := c.kba(); step.Kind != ivr.AuthAuthenticated {
		t.Fatalf("KBA again: %+v", step)
	}
	res, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil)
	if err != nil || string(res) != `{"tool":"x_read"}` {
		t.Fatalf("x_read after re-verification: %s %v", res, err)
	}
	after, _ := s.store.GetTokens(ctx, c.call.CallSid)
	if after.AccessToken == before.AccessToken || after.RefreshToken == before.RefreshToken {
		t.Fatal("re-verification did not store a new token set")
	}
}

// TestReverifyWrongAnswers: the re-verification session counts failures
// like any other; wrong answers never produce a token.
func TestReverifyWrongAnswers(t *testing.T) {
	s := newStack(t)
	c := newCaller(t, s, "CAreverify02")
	ctx := context.Background()
	if step := c.kba(); step.Kind != ivr.AuthAuthenticated {
		t.Fatalf("KBA: %+v", step)
	}
	s.clk.advance(72 * time.Minute)
	if _, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil); !errors.Is(err, ivr.ErrReverify) {
		t.Fatalf("want ErrReverify, got %v", err)
	}
	c.submit(ivr.Answers{}, true)
	for i := 0; i < 5; i++ {
		step := c.submit(ivr.Answers{Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "0000"}, false)
		if step.Kind == ivr.AuthAuthenticated {
			t.Fatal("wrong SSN-4 re-verified the caller")
		}
		if step.Kind == ivr.AuthDenied {
			break
		}
	}
	if _, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil); err == nil {
		t.Fatal("the tool ran without re-verification")
	}
}
