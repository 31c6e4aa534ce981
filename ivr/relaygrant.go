package ivr

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"
	"time"

	"github.com/voiceauth/voiceauth/session"
)

// relayGrant decides which ConversationRelay socket may drive a call.
//
// The handshake signature covers only the fixed relay URL, so it proves a
// socket came from Twilio's account but not which call it belongs to. A
// signed /twilio/voice (or a signed <Connect action> that reconnects)
// therefore issues a one-time nonce, handed to Twilio as a <Parameter>; the
// socket whose setup presents it becomes the call's only owner. The grant
// lives in the call state and changes with the call's compare-and-swap, so
// every instance sees it, and a socket that lost ownership fails its next
// write.
type relayGrant struct {
	Nonce   []byte    `json:"nonce,omitempty"`   // SHA-256 of the outstanding nonce; nil once used
	Expires time.Time `json:"expires,omitempty"` // the nonce is refused from this instant
	Owner   string    `json:"owner,omitempty"`   // our id of the socket that used the last nonce
	Session string    `json:"session,omitempty"` // Twilio's sessionId of that socket
	Ended   []string  `json:"ended,omitempty"`   // sessions whose <Connect action> was handled
}

const (
	// relayNonceParam is the <Parameter> name; Twilio returns it in
	// setup.customParameters.
	relayNonceParam = "voiceauth_nonce"
	// relayNonceTTL: Twilio opens the socket right after it reads the TwiML.
	relayNonceTTL = time.Minute
	// maxEndedSessions bounds the replay list (reconnects are bounded too).
	maxEndedSessions = 8
)

// Reasons a relay socket is refused (metric label, audit detail, log).
const (
	refuseUnknownCall = "unknown_call" // no signed /twilio/voice announced this CallSid
	refuseNotRelay    = "not_relay"    // the call was not created for the relay
	refuseInUse       = "in_use"       // another socket owns the call
	refuseNonce       = "nonce"        // missing, wrong or already used
	refuseExpired     = "expired"
	refuseEnded       = "ended"
	refuseSession     = "session"    // setup without a sessionId
	refuseSuperseded  = "superseded" // the socket's call was handed to a newer session
)

// newRelayNonce returns a fresh nonce and the hash that is stored.
func newRelayNonce() (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	n := base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(n))
	return n, h[:]
}

// issue replaces any outstanding nonce with a new one and releases the
// current owner (its next write fails).
func (g *relayGrant) issue(now time.Time) string {
	n, h := newRelayNonce()
	g.Nonce, g.Expires = h, now.Add(relayNonceTTL)
	g.Owner, g.Session = "", ""
	return n
}

// claim uses nonce for a new socket, or says why not. It checks the nonce
// even when the call is owned, so a wrong guess never learns more.
func (g *relayGrant) claim(nonce, owner, sessionID string, now time.Time) string {
	if g == nil {
		return refuseNotRelay
	}
	h := sha256.Sum256([]byte(nonce))
	match := len(g.Nonce) == len(h) && subtle.ConstantTimeCompare(h[:], g.Nonce) == 1
	switch {
	case !match || nonce == "":
		return refuseNonce
	case g.Owner != "":
		return refuseInUse
	case !now.Before(g.Expires):
		return refuseExpired
	case sessionID == "":
		return refuseSession
	}
	g.Nonce, g.Expires = nil, time.Time{}
	g.Owner, g.Session = owner, sessionID
	return ""
}

// Verdicts on a <Connect action> callback's SessionId.
const (
	sessionStale   = iota // already handled (a replay) or no SessionId: change nothing
	sessionOK             // the owning session (or, with no owner, a new one) ended
	sessionForeign        // Twilio ended a session that never owned the call, while another socket does
)

// sessionDone records that Twilio reported the end of sessionID and says
// what that means. A session already handled is a replay. Twilio runs one
// session per call at a time, so a session Twilio reports while a different
// socket owns the call means the owner is not Twilio's: the owner is
// released either way (its next write fails).
func (g *relayGrant) sessionDone(sessionID string) int {
	if g == nil || sessionID == "" || slices.Contains(g.Ended, sessionID) {
		return sessionStale
	}
	verdict := sessionOK
	if g.Owner != "" && g.Session != sessionID {
		verdict = sessionForeign
	}
	g.Ended = append(g.Ended, sessionID)
	if len(g.Ended) > maxEndedSessions {
		g.Ended = g.Ended[len(g.Ended)-maxEndedSessions:]
	}
	g.Owner, g.Session, g.Nonce, g.Expires = "", "", nil, time.Time{}
	return verdict
}

// reissueRelayNonce answers a repeated /twilio/voice for a relay call (a
// Twilio retry whose first answer was lost, or a replay): while no socket
// has ever used a nonce for the call, a new nonce replaces the old one; once
// one has, nothing is issued (reconnects go through /twilio/relay/done).
func (s *Server) reissueRelayNonce(ctx context.Context, sid string) (string, error) {
	nonce := ""
	_, err := s.update(ctx, sid, func(c *session.Call, st *State) bool {
		nonce = ""
		g := st.Relay
		if g == nil || c.Ended || st.Out.End != "" || g.Owner != "" || g.Session != "" || len(g.Ended) > 0 {
			return false
		}
		nonce = g.issue(s.now())
		return true
	})
	return nonce, err
}

// admitRelay checks a setup against the stored call and, when it passes,
// makes owner the call's only relay socket. It returns the refusal reason,
// or "" when admitted; err is a store failure.
func (s *Server) admitRelay(ctx context.Context, sid, nonce, sessionID, owner string) (string, error) {
	reason := ""
	_, err := s.update(ctx, sid, func(c *session.Call, st *State) bool {
		reason = ""
		if c.Ended || st.Out.End != "" {
			reason = refuseEnded
			return false
		}
		if reason = st.Relay.claim(nonce, owner, sessionID, s.now()); reason != "" {
			return false
		}
		return true
	})
	if errors.Is(err, session.ErrNotFound) {
		return refuseUnknownCall, nil
	}
	return reason, err
}

// owns reports whether the socket owner may drive a call in state st.
func owns(st *State, owner string) bool {
	return owner != "" && st.Relay != nil && st.Relay.Owner == owner
}

// newOwnerID names one relay socket.
func newOwnerID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
