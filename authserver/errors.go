package authserver

import (
	"net/http"

	"github.com/voiceauth/voiceauth/challenge"
)

// oauthError is the one vocabulary of the server side: every OAuth / FiPA error
// the AS can answer, each defined once with its HTTP status (errorStatus).
type oauthError struct {
	resp challenge.ErrorResponse
	// basic is set when the request authenticated with HTTP Basic, so that a
	// 401 carries WWW-Authenticate (RFC 6749 §5.2).
	basic bool
}

func (e *oauthError) Error() string { return "oauth: " + e.resp.Error }

// errorStatus maps each error code to its status. Codes not listed are 400.
var errorStatus = map[string]int{
	challenge.ErrInvalidClient:                  http.StatusUnauthorized,
	challenge.ErrInvalidRequest:                 http.StatusBadRequest,
	challenge.ErrInvalidGrant:                   http.StatusBadRequest,
	challenge.ErrUnauthorizedClient:             http.StatusBadRequest,
	challenge.ErrUnsupportedGrantType:           http.StatusBadRequest,
	challenge.ErrUnsupportedResponseType:        http.StatusBadRequest,
	challenge.ErrInvalidScope:                   http.StatusBadRequest,
	challenge.ErrInvalidTarget:                  http.StatusBadRequest,
	challenge.ErrInsufficientAuthorization:      http.StatusBadRequest,
	challenge.ErrInvalidSession:                 http.StatusBadRequest,
	challenge.ErrRedirectToWeb:                  http.StatusBadRequest,
	challenge.ErrAccessDenied:                   http.StatusBadRequest,
	challenge.ErrInvalidToken:                   http.StatusUnauthorized,
	errTooLarge:                                 http.StatusRequestEntityTooLarge,
	errServerError:                              http.StatusInternalServerError,
	errTemporarilyUnavailable:                   http.StatusServiceUnavailable,
	challenge.ErrInsufficientUserAuthentication: http.StatusUnauthorized,
}

// Codes that challenge/wire.go does not define.
const (
	errTooLarge               = "request_too_large" // body over the limit (413)
	errServerError            = "server_error"
	errTemporarilyUnavailable = "temporarily_unavailable"
	errUnsupportedTokenType   = "unsupported_token_type" // RFC 7009 §2.2.1
)

func statusOf(code string) int {
	if s, ok := errorStatus[code]; ok {
		return s
	}
	return http.StatusBadRequest
}

func newErr(code, desc string) *oauthError {
	return &oauthError{resp: challenge.ErrorResponse{Error: code, ErrorDescription: desc}}
}
