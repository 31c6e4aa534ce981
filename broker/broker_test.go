package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/broker"
	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/internal/canary"
	"github.com/voiceauth/voiceauth/ivr"
	"github.com/voiceauth/voiceauth/session"
)

// TestEndCallRevokes: hanging up revokes the call's tokens at the AS (the
// refresh token no longer refreshes) and forgets them; the hook hears it.
func TestEndCallRevokes(t *testing.T) {
	s := newStack(t)
	c := newCaller(t, s, "CAendcall01")
	ctx := context.Background()
	if step := c.kba(); step.Kind != ivr.AuthAuthenticated {
		t.Fatalf("KBA: %+v", step)
	}
	ts, err := s.store.GetTokens(ctx, c.call.CallSid)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.b.Preauthorized(ctx, c.call.CallSid); !ok || err != nil {
		t.Fatalf("Preauthorized with a live token: %v %v", ok, err)
	}
	if err := s.b.EndCall(ctx, c.call.CallSid); err != nil {
		t.Fatalf("EndCall: %v", err)
	}
	if _, err := s.store.GetTokens(ctx, c.call.CallSid); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("tokens kept after EndCall: %v", err)
	}
	if ok, _ := s.b.Preauthorized(ctx, c.call.CallSid); ok {
		t.Fatal("Preauthorized after EndCall")
	}
	ch := challenge.New(challenge.Config{ClientID: voiceID, ClientSecret: voiceSecret, Issuer: s.asURL, Now: s.clk.Now})
	if _, err := ch.Refresh(ctx, &challenge.Token{RefreshToken: ts.RefreshToken, Issuer: ts.Issuer, Resource: ts.Resource}); err == nil {
		t.Fatal("the revoked refresh token still refreshes")
	}
	if _, _, revs := s.hooks.snapshot(); !slices.Equal(revs, []string{"revoked"}) {
		t.Fatalf("revocation hook: %v", revs)
	}
}

// TestRevocationRetriedAfterOutage: with the AS down at hang-up the
// revocation is written ahead and retried by RetryRevocations once the AS
// is back; the tokens are kept until the AS confirmed.
func TestRevocationRetriedAfterOutage(t *testing.T) {
	s := newStack(t)
	c := newCaller(t, s, "CAendcall02")
	ctx := context.Background()
	if step := c.kba(); step.Kind != ivr.AuthAuthenticated {
		t.Fatalf("KBA: %+v", step)
	}
	s.asDown.Store(true)
	if err := s.b.EndCall(ctx, c.call.CallSid); err == nil {
		t.Fatal("EndCall with the AS down reported success")
	}
	if _, err := s.store.GetRecord(ctx, broker.RevokePendingKind, c.call.CallSid); err != nil {
		t.Fatalf("no write-ahead record: %v", err)
	}
	if _, err := s.store.GetTokens(ctx, c.call.CallSid); err != nil {
		t.Fatalf("tokens dropped before the AS confirmed: %v", err)
	}
	if left, err := s.b.RetryRevocations(ctx); left != 1 || err != nil {
		t.Fatalf("retry while down: left %d, %v", left, err)
	}
	s.asDown.Store(false)
	if left, err := s.b.RetryRevocations(ctx); left != 0 || err != nil {
		t.Fatalf("retry after the outage: left %d, %v", left, err)
	}
	if _, err := s.store.GetTokens(ctx, c.call.CallSid); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("tokens kept after the revocation: %v", err)
	}
	if _, err := s.store.GetRecord(ctx, broker.RevokePendingKind, c.call.CallSid); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("write-ahead record kept: %v", err)
	}
	_, _, revs := s.hooks.snapshot()
	if !slices.Equal(revs, []string{"retried", "retried", "pending", "pending", "revoked"}) {
		t.Fatalf("revocation hook: %v", revs)
	}
}

// TestHooksSeeJobsAndTools: every Submit and tool Call is timed for
// admission, and each tool call is reported with its ivr-level outcome.
func TestHooksSeeJobsAndTools(t *testing.T) {
	s := newStack(t)
	c := newCaller(t, s, "CAhooks01")
	ctx := context.Background()
	c.kba()
	s.b.Call(ctx, c.call.CallSid, "x_read", nil)
	s.b.Call(ctx, c.call.CallSid, "x_write", nil)
	jobs, tools, _ := s.hooks.snapshot()
	if jobs != 3 {
		t.Errorf("jobs timed: %d, want 3", jobs)
	}
	if want := []string{"x_read=ok", "x_write=" + ivr.ErrStepUp.Error()}; !slices.Equal(tools, want) {
		t.Errorf("tool hook: %v, want %v", tools, want)
	}
}

// TestReadyFollowsTheAS: Ready is uncached: a down AS is reported even
// though its metadata is still in the discovery cache.
func TestReadyFollowsTheAS(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	if err := s.b.Ready(ctx); err != nil {
		t.Fatalf("Ready with both servers up: %v", err)
	}
	s.asDown.Store(true)
	if err := s.b.Ready(ctx); err == nil || !strings.Contains(err.Error(), "authorization server") {
		t.Fatalf("Ready with the AS down: %v", err)
	}
}

// TestRegisterChecksTheHost: a host registering a subject token must
// authenticate at the AS first; wrong or missing credentials are
// ErrUnauthorizedHost, and a subject token no trusted issuer signed is
// ErrRejected with nothing stored.
func TestRegisterChecksTheHost(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	for _, creds := range [][2]string{{hostID, "wrong"}, {"", ""}, {"nobody", hostSecret}} {
		if err := s.b.RegisterSubjectToken(ctx, "CAreg01", creds[0], creds[1], "eyJ.a.b", ""); !errors.Is(err, ivr.ErrUnauthorizedHost) {
			t.Errorf("host %q: %v, want ErrUnauthorizedHost", creds[0], err)
		}
	}
	if err := s.b.RegisterSubjectToken(ctx, "CAreg01", hostID, hostSecret, "eyJ.a.b", ""); !errors.Is(err, ivr.ErrRejected) {
		t.Errorf("untrusted subject token: %v, want ErrRejected", err)
	}
	if _, err := s.store.GetTokens(ctx, "CAreg01"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("tokens stored for a rejected registration: %v", err)
	}
}

// TestSecretsNeverLogged: tokens, the re-verification auth_session and the
// one-time code reach no log line of the broker, the challenge client, the
// MCP client or the AS.
func TestSecretsNeverLogged(t *testing.T) {
	s := newStack(t)
	c := newCaller(t, s, "CAphi01")
	ctx := context.Background()
	c.kba()
	s.b.Call(ctx, c.call.CallSid, "x_write", nil)
	c.submit(ivr.Answers{}, true)
	code := s.otp.last(maria)
	c.submit(ivr.Answers{OTP: code}, true)
	ts, _ := s.store.GetTokens(ctx, c.call.CallSid)
	s.clk.advance(90 * time.Minute)
	if _, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil); !errors.Is(err, ivr.ErrReverify) {
		t.Fatalf("want ErrReverify, got %v", err)
	}
	rec, err := s.store.GetRecord(ctx, "broker_pending", c.call.CallSid)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		AuthSession string `json:"auth_session"`
	}
	if json.Unmarshal(rec.Data, &p); p.AuthSession == "" {
		t.Fatal("no auth_session kept for the re-verification")
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "challenge: submit") {
		t.Fatal("no logs captured; the check would prove nothing")
	}
	for name, v := range map[string]string{"access token": ts.AccessToken, "refresh token": ts.RefreshToken,
		"auth_session": p.AuthSession, "one-time code": code, "SSN-4": "4567"} {
		if v == "" {
			t.Fatalf("%s missing", name)
		}
		if canary.Leaks(logs, v) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
}

// TestTokenOfAnotherIssuerNotSent: a stored token whose issuer (or
// resource) is not the one the MCP server's metadata names now is never
// presented to the server (MCP 2026-07-28 keys tokens by issuer).
func TestTokenOfAnotherIssuerNotSent(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*session.TokenSet)
	}{
		{"issuer", func(ts *session.TokenSet) { ts.Issuer = "https://as.other.example" }},
		{"resource", func(ts *session.TokenSet) { ts.Resource = "https://mcp.other.example/mcp" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			c := newCaller(t, s, "CAforeign"+tc.name)
			ctx := context.Background()
			if step := c.kba(); step.Kind != ivr.AuthAuthenticated {
				t.Fatalf("KBA: %+v", step)
			}
			if _, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil); err != nil {
				t.Fatalf("tool with the call's own token: %v", err)
			}
			ts, err := s.store.GetTokens(ctx, c.call.CallSid)
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(&ts)
			if err := s.store.PutTokens(ctx, c.call.CallSid, ts); err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			before := len(s.toolCalls)
			s.mu.Unlock()
			if _, err := s.b.Call(ctx, c.call.CallSid, "x_read", nil); err == nil {
				t.Fatal("a token of another issuer/resource was used")
			}
			s.mu.Lock()
			after := len(s.toolCalls)
			s.mu.Unlock()
			if after != before {
				t.Fatalf("the MCP server ran %d tools with a foreign token", after-before)
			}
		})
	}
}
