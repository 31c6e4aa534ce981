package challenge

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel causes, matched with errors.Is through *Error.
var (
	ErrResponseTooLarge  = errors.New("response body exceeds the configured limit")
	ErrMalformedResponse = errors.New("malformed response")
	ErrIssuerMismatch    = errors.New("metadata issuer differs from the issuer used to fetch it")
	ErrResourceMismatch  = errors.New("protected resource metadata names another resource")
	ErrNoS256            = errors.New("authorization server does not support PKCE S256")
	ErrNoChallengeEP     = errors.New("authorization server has no authorization_challenge_endpoint")
	ErrUntrustedIssuer   = errors.New("protected resource does not name the configured issuer")
	ErrInsecureURL       = errors.New("endpoint is not https (http is allowed on loopback only)")
	ErrAudienceMismatch  = errors.New("issued token is not for the requested resource")
	ErrNotDiscovered     = errors.New("no metadata could be discovered")
	ErrUnexpectedStatus  = errors.New("unexpected HTTP status")
	ErrBadFlow           = errors.New("flow is incomplete")
	ErrNoRevocation      = errors.New("authorization server has no revocation_endpoint")
)

// Error is the one error type of this package. It carries the OAuth wire
// fields when the server answered with an OAuth error, or a Cause when the
// exchange failed below that level. Match it with errors.As; switch on
// Error.ErrorResponse.Error (the wire code), never on StatusCode.
type Error struct {
	Op         string // "discover", "challenge", "token", "refresh", "exchange", "revoke"
	StatusCode int    // 0 when no HTTP response was received
	ErrorResponse
	Cause error
}

// Error deliberately omits error_description and every other free text the
// server sent: a hostile or buggy server could echo answers or tokens there.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("challenge")
	if e.Op != "" {
		b.WriteString(": ")
		b.WriteString(e.Op)
	}
	if code := sanitizeCode(e.ErrorResponse.Error); code != "" {
		b.WriteString(": oauth error ")
		b.WriteString(code)
	}
	if e.StatusCode != 0 {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(e.StatusCode))
		b.WriteString(")")
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Cause }

// sanitizeCode keeps an error code printable: the charset RFC 6749 allows,
// at most 64 bytes, anything else replaced.
func sanitizeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r >= 0x20 && r <= 0x7e && r != '"' && r != '\\' {
			return r
		}
		return '?'
	}, s)
}
