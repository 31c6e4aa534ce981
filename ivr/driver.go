package ivr

import (
	"context"
	"errors"
	"time"

	"github.com/voiceauth/voiceauth/ivr/spoken"
	"github.com/voiceauth/voiceauth/prompts"
	"github.com/voiceauth/voiceauth/session"
)

// End kinds of an Output (Output.End): what the front end does after
// speaking it.
const (
	EndTransfer = endTransfer // hand the caller to TransferNumber
	EndHangup   = endHangup   // hang up
)

// Driver is the per-call driver every front end shares. A front end turns
// its media into Input and speaks Output; the Driver does everything else:
// the dialog engine, the call's state persisted with optimistic versions
// (so any instance sharing the store can take the next turn and a crash
// loses no answer), backend jobs run in the background within the call's
// time budget, outcomes, metrics and the end of the call (tokens revoked).
//
// The webhook (<Gather>) and ConversationRelay front ends are built on the
// same operations; a Media Streams or SIP front end is a new file set that
// calls these methods (see doc.go). A Driver is safe for concurrent use.
type Driver struct{ s *Server }

// Driver returns the server's per-call driver.
func (s *Server) Driver() Driver { return Driver{s} }

// Start answers a call: it creates the call with its dialog started, or
// returns the current state of a call that already exists (a retried
// start). st.Out is what the caller hears first. info.CallRef is filled in
// when empty; info.Lang defaults to English.
func (d Driver) Start(ctx context.Context, info CallInfo) (*State, error) {
	if info.CallRef == "" {
		info.CallRef = d.s.callRef(info.CallSid)
	}
	if info.Lang == "" {
		info.Lang = spoken.English
	}
	st, _, err := d.s.newCall(ctx, info)
	return st, err
}

// Turn applies one caller turn. turn is the State.Turn the caller answered
// (the one the front end last spoke); input for a turn that is no longer
// current, or for an ended call, changes nothing and applied is false (a
// repeated delivery). When the turn starts a backend job (st.Pending is
// set) the job is already running here; Await waits for its result.
func (d Driver) Turn(ctx context.Context, sid string, turn int, in Input) (st *State, applied bool, err error) {
	st, err = d.s.update(ctx, sid, func(c *session.Call, st *State) bool {
		applied = !c.Ended && st.Turn == turn && d.s.eng.handle(st, in)
		return applied
	})
	if err != nil {
		return nil, false, err
	}
	if st.Pending != nil {
		d.s.drive(sid)
	}
	return st, applied, nil
}

// Await waits up to wait for the call's backend jobs, run on this instance
// (call it on the instance that took the turn), and returns the call's state
// then. st.Pending == nil: the result is in st.Out. Otherwise the job is
// still running: speak Phrase(st, prompts.Hold) (then prompts.StillWorking)
// and await again; a job that outlives the call's budget ends in a transfer.
func (d Driver) Await(ctx context.Context, sid string, wait time.Duration) (*State, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-d.s.drive(sid):
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	_, st, err := d.s.load(ctx, sid)
	return st, err
}

// Hangup ends the call once the caller is gone: outcome caller_hung_up
// unless one was already reached, a pending job dropped, the call's tokens
// revoked (Auth.EndCall). A call already ended, or never created, is not an
// error.
func (d Driver) Hangup(ctx context.Context, sid string) error {
	ended := false
	_, err := d.s.update(ctx, sid, func(c *session.Call, st *State) bool {
		ended = false
		if c.Ended {
			return false
		}
		c.Ended, ended = true, true
		st.Pending = nil
		if st.Outcome == "" {
			st.Outcome = OutcomeHungUp
		}
		return true
	})
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		return err
	}
	if ended || errors.Is(err, session.ErrNotFound) {
		d.s.endCall(sid)
	}
	return nil
}

// Phrase is the prompt id in the call's language (hold phrases while a job
// runs, an apology before a transfer the front end decides on).
func (d Driver) Phrase(st *State, id prompts.ID) string { return d.s.eng.say(st, id, nil) }

// LanguageTag is the BCP 47 tag of the call's language, for the front
// end's speech synthesis and recognition (e.g. "en-US").
func (d Driver) LanguageTag(st *State) string { return langTag(st.Lang) }

// TransferNumber is where an EndTransfer output sends the caller.
func (d Driver) TransferNumber() string { return d.s.cfg.TransferNumber }
