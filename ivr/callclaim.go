package ivr

import (
	"context"
	"errors"
	"time"

	"github.com/voiceauth/voiceauth/session"
)

// The call claim decides, once per CallSid, who came first: a host
// registering a subject token, or the call itself (/twilio/voice). A host
// may register only a call not yet seen; a call that arrives while a
// registration is still being exchanged waits for it briefly, then goes on
// without it, and the late registration is undone. Without the claim a
// registration racing the call's creation could attach a host's token to a
// call that was already answered.
const (
	claimKind = "ivr.call_claim" // store record kind, keyed by call_ref
	claimTTL  = 24 * time.Hour   // CallSids are never reused; this only bounds the table

	claimPending  = "host-pending" // a host's registration is being exchanged
	claimHost     = "host"         // a host registered the call
	claimCall     = "call"         // the call came first (or stopped waiting): no registration any more
	claimReleased = "released"     // a registration failed; a host may try again
)

// Refusals of a registration; their text is the error_description.
var (
	errCallExists        = errors.New("the call already exists")
	errAlreadyRegistered = errors.New("a subject token is already registered for this call")
	errClaimStore        = errors.New("the call store is unavailable, try again later")
)

// claimPoll is how often a waiting /twilio/voice looks at a pending claim.
const claimPoll = 20 * time.Millisecond

func (s *Server) claimRecord(sid, state string) *session.Record {
	return &session.Record{Kind: claimKind, Key: s.callRef(sid), Data: []byte(state), ExpiresAt: s.now().Add(claimTTL)}
}

// claimForHost makes a registration the pending one for sid, or says why not.
func (s *Server) claimForHost(ctx context.Context, sid string) error {
	if _, err := s.cfg.Store.GetCall(ctx, sid); err == nil {
		return errCallExists
	} else if !errors.Is(err, session.ErrNotFound) {
		return errClaimStore
	}
	for range 10 {
		err := s.cfg.Store.PutRecord(ctx, s.claimRecord(sid, claimPending))
		if err == nil {
			return s.callNotFirst(ctx, sid)
		}
		if !errors.Is(err, session.ErrExists) {
			return errClaimStore
		}
		cur, err := s.cfg.Store.GetRecord(ctx, claimKind, s.callRef(sid))
		switch {
		case errors.Is(err, session.ErrNotFound):
			continue // expired meanwhile
		case err != nil:
			return errClaimStore
		}
		switch string(cur.Data) {
		case claimCall:
			return errCallExists
		case claimReleased:
			cur.Data = []byte(claimPending)
			if err := s.cfg.Store.UpdateRecord(ctx, cur); err == nil {
				return s.callNotFirst(ctx, sid)
			} else if !errors.Is(err, session.ErrConflict) {
				return errClaimStore
			}
		default:
			return errAlreadyRegistered
		}
	}
	return errClaimStore
}

// callNotFirst runs once a host's pending claim is written: a new call
// on SQLite writes no claim record (its row is the claim, see
// session.Store.CreateCallClaimed), so a call created between the host's
// first look and its claim is found only now. Then the call came first:
// the claim says so and the registration is refused. (A call created after
// the claim finds the claim and waits for the registration.)
func (s *Server) callNotFirst(ctx context.Context, sid string) error {
	_, err := s.cfg.Store.GetCall(ctx, sid)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return nil
	case err != nil:
		_, _ = s.finishHost(ctx, sid, claimReleased) // let a retry decide
		return errClaimStore
	}
	if _, err := s.finishHost(ctx, sid, claimCall); err != nil {
		return errClaimStore
	}
	return errCallExists
}

// finishHost moves a pending claim to state; false when the call took the
// claim first (it stopped waiting).
func (s *Server) finishHost(ctx context.Context, sid, state string) (bool, error) {
	for range 20 {
		cur, err := s.cfg.Store.GetRecord(ctx, claimKind, s.callRef(sid))
		if err != nil {
			return false, err
		}
		if string(cur.Data) != claimPending {
			return false, nil
		}
		cur.Data = []byte(state)
		if err = s.cfg.Store.UpdateRecord(ctx, cur); err == nil {
			return true, nil
		} else if !errors.Is(err, session.ErrConflict) {
			return false, err
		}
	}
	return false, session.ErrConflict
}

// claimForCall is /twilio/voice's side: from now on no host may register
// sid. A registration in flight gets up to HoldAfter to finish.
func (s *Server) claimForCall(ctx context.Context, sid string) error {
	deadline := time.NewTimer(s.cfg.HoldAfter)
	defer deadline.Stop()
	waited := false
	for range 1000 {
		err := s.cfg.Store.PutRecord(ctx, s.claimRecord(sid, claimCall))
		if err == nil || !errors.Is(err, session.ErrExists) {
			return err
		}
		cur, err := s.cfg.Store.GetRecord(ctx, claimKind, s.callRef(sid))
		switch {
		case errors.Is(err, session.ErrNotFound):
			continue
		case err != nil:
			return err
		}
		switch string(cur.Data) {
		case claimCall, claimHost:
			return nil
		case claimPending:
			if !waited {
				select {
				case <-deadline.C:
					waited = true
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(claimPoll):
					continue
				}
			}
		}
		// Released, or pending past the wait: the call takes the claim.
		cur.Data = []byte(claimCall)
		if err := s.cfg.Store.UpdateRecord(ctx, cur); err == nil || !errors.Is(err, session.ErrConflict) {
			return err
		}
	}
	return session.ErrConflict
}
