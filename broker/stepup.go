package broker

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/ivr"
	"github.com/voiceauth/voiceauth/session"
)

// pendingKind is the record of what the caller must do next after a tool
// was refused: kept from the refusal (a tool call) to the Submit that acts
// on it, which may run on another instance. Sealed by the store (the
// auth_session is a secret).
const pendingKind = "broker_pending"

// pending is a refused tool call's demand on the caller.
type pending struct {
	// Scope and ACR/MaxAge are the MCP server's challenge (step-up). For a
	// re-verification Scope is the scope of the token being replaced.
	Scope  string `json:"scope,omitempty"`
	ACR    string `json:"acr,omitempty"`
	MaxAge *int   `json:"max_age,omitempty"`
	// AuthSession is the AS's re-verification session (from a refresh
	// answered with insufficient_authorization).
	AuthSession string `json:"auth_session,omitempty"`
	// Challenged: the record came from a challenge (absent: none was kept,
	// and the step-up asks for what it always did, the one-time code).
	Challenged bool `json:"challenged"`
}

// pendingTTL bounds how long a refusal waits for the caller's Submit.
const pendingTTL = time.Hour

func (b *Broker) putPending(ctx context.Context, callSid string, p pending) error {
	p.Challenged = true
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := b.cfg.Store.DeleteRecord(ctx, pendingKind, callSid); err != nil {
		return err
	}
	err = b.cfg.Store.PutRecord(ctx, &session.Record{Kind: pendingKind, Key: callSid, Data: data, ExpiresAt: b.cfg.Now().Add(pendingTTL)})
	if errors.Is(err, session.ErrExists) {
		return nil // a concurrent refusal of the same call wrote its own
	}
	return err
}

// takePending reads and forgets the call's pending demand; none is the
// zero pending.
func (b *Broker) takePending(ctx context.Context, callSid string) (pending, error) {
	var p pending
	rec, err := b.cfg.Store.GetRecord(ctx, pendingKind, callSid)
	if errors.Is(err, session.ErrNotFound) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if json.Unmarshal(rec.Data, &p) != nil {
		p = pending{}
	}
	return p, b.cfg.Store.DeleteRecord(ctx, pendingKind, callSid)
}

// stepUp turns the flow into a step-up for what the server challenged:
// the union of the scopes asked for before and the challenged ones
// (MCP 2026-07-28, scope challenge handling), with the challenge's
// acr_values and max_age (RFC 9470). Without a kept challenge it asks for
// the one-time code, as before challenges were kept.
func (st *flowState) stepUp(p pending) {
	st.StepUp = true
	st.Flow.Scope = challenge.UnionScopes(st.Flow.Scope, p.Scope)
	st.ACR, st.MaxAge = p.ACR, p.MaxAge
	if !p.Challenged {
		st.ACR = challenge.ACRKBAOTP
	}
}

// reverifyFlow is a fresh flow on the AS's re-verification session: a new
// PKCE verifier (the session has no challenge yet), the scope of the token
// it replaces, and whatever the AS asks next.
func (b *Broker) reverifyFlow(ctx context.Context, call ivr.CallInfo, p pending) (*challenge.Flow, error) {
	d, err := b.discover(ctx)
	if err != nil {
		return nil, err
	}
	f, err := b.cfg.Challenge.NewFlow(d, p.Scope, call.CallRef)
	if err != nil {
		return nil, err
	}
	if p.Scope == "" {
		f.Scope = "" // the session keeps the refresh family's scope
	}
	f.AuthSession = p.AuthSession
	return f, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
