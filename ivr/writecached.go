package ivr

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/voiceauth/voiceauth/session"
)

// writeCached writes st over call, the copy of the call the caller holds
// (last written or read by it), with that copy's version: st is call's state
// after fn changed it from before. It saves the read update would make. When
// another writer got there first (session.ErrConflict) it falls back to
// update, which re-reads the call and re-applies fn; fresh is then false and
// call and st are stale, so the caller must re-read before using them.
//
// The job driver (startDrive) and a relay socket (relayCall.apply) hold such
// copies; a new front end that keeps one between turns writes through here.
func (s *Server) writeCached(ctx context.Context, sid string, call *session.Call, before, st *State,
	fn func(*session.Call, *State) bool) (fresh bool, err error) {
	raw, err := json.Marshal(st)
	if err == nil {
		call.State = raw
		err = s.cfg.Store.UpdateCall(ctx, call)
	}
	switch {
	case err == nil:
		s.remember(call)
		s.observe(sid, before, st)
		return true, nil
	case errors.Is(err, session.ErrConflict):
		_, err = s.update(ctx, sid, fn)
		return false, err
	default:
		return false, err
	}
}
