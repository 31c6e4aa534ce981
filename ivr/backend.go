package ivr

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/voiceauth/voiceauth/ivr/spoken"
)

// CallInfo is what the dialog knows about a call from Twilio. From and
// StirVerstat are hints for the AS's risk rules, never proof of identity.
type CallInfo struct {
	CallSid, From, To, StirVerstat, CallRef string
	Lang                                    spoken.Lang
}

// Answers are the KBA answers collected so far. They live only in the sealed
// call state and are cleared once submitted.
type Answers struct {
	Name, Birthdate, SSNLast4, OTP string
	OTPResend                      bool
}

// AuthKind is the dialog-level meaning of an authorization-challenge response.
type AuthKind int

const (
	AuthAuthenticated AuthKind = iota + 1
	AuthNeedMore               // ask the answers in AuthStep.Need
	AuthRetryKBA               // answers did not verify; the AS allows another attempt
	AuthNeedOTP                // the AS sent (or pretends to send) a code
	AuthRetryOTP               // the code did not verify; try again
	AuthDenied                 // no more attempts for this call
	AuthTransfer               // redirect_to_web, invalid session, refused AS metadata
)

// AuthStep is the result of one Auth.Submit.
type AuthStep struct {
	Kind AuthKind
	Need []string // "kba_name", "kba_birthdate", "kba_ssn_last4"
}

// Auth is the authorization side as the dialog sees it. The wiring's adapter
// implements it over challenge + session; tokens never reach ivr.
type Auth interface {
	// Submit sends the answers given so far. flow is the adapter's opaque
	// state (nil on the first call of a call); the returned flow replaces it.
	// stepUp re-enters for a higher assurance after Tools returned ErrStepUp.
	// An error means the AS is unreachable or broken.
	Submit(ctx context.Context, call CallInfo, flow []byte, a Answers, stepUp bool) (AuthStep, []byte, error)
	// Preauthorized reports whether the host registered and exchanged a
	// subject token for this call.
	Preauthorized(ctx context.Context, callSid string) (bool, error)
	// RegisterSubjectToken backs POST /v1/calls/{CallSid}/subject-token.
	// Errors: ErrUnauthorizedHost, ErrRejected.
	RegisterSubjectToken(ctx context.Context, callSid, hostClientID, hostSecret, subjectToken, subjectTokenType string) error
	// EndCall revokes the call's tokens and closes its MCP session.
	EndCall(ctx context.Context, callSid string) error
}

// RegisteredPreauth is an optional Auth: one whose Preauthorized can be true
// only for a call a host registered through RegisterSubjectToken. A new
// call then skips the lookup: its claim (callclaim.go) is written only when
// no registration was ever started for it, so the answer would be false.
type RegisteredPreauth interface {
	PreauthOnlyByRegistration() bool
}

// Tools runs MCP tools for a call's authenticated caller.
type Tools interface {
	// Call returns the tool's structuredContent JSON. Errors: ErrStepUp,
	// ErrReverify, ErrToolDenied, ErrBackendDown, ErrIdentity; anything
	// else is a failure.
	Call(ctx context.Context, callSid, tool string, args map[string]any) (json.RawMessage, error)
}

// The error vocabulary shared with the adapters (match with errors.Is).
var (
	ErrStepUp           = errors.New("ivr: step-up")
	ErrToolDenied       = errors.New("ivr: denied")
	ErrBackendDown      = errors.New("ivr: backend-down")
	ErrIdentity         = errors.New("ivr: identity-check")
	ErrUnauthorizedHost = errors.New("ivr: unauthorized-host")
	ErrRejected         = errors.New("ivr: rejected")
	// ErrReverify: the AS wants the caller to prove who they are again
	// (a refresh long after authentication). The dialog re-enters Submit
	// with stepUp set and asks whatever the AS asks next.
	ErrReverify = errors.New("ivr: reverify")
)
