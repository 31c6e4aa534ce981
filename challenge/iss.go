package challenge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Issuer binding on both sides of the flow (MCP 2026-07-28 authorization,
// RFC 9207):
//
//   - An authorization response names its issuer in iss. A response whose
//     iss is not the flow's issuer is refused — its code and auth_session
//     are never used — whatever the metadata says; a code response without
//     iss is refused when the issuer's metadata promises iss
//     (authorization_response_iss_parameter_supported), and accepted
//     otherwise. The authorization challenge endpoint has no front channel,
//     so a mix-up needs a broken or hostile AS rather than a browser, but
//     the check costs nothing and catches a flow bound to the wrong issuer.
//     Error responses are checked when they carry iss: FiPA error responses
//     are not RFC 9207 authorization responses, so an AS that sends iss only
//     with codes is not refused for it.
//   - The client's credentials (client_id and secret or key) and every
//     token they obtain belong to one issuer: Config.Issuer when set, else
//     the first issuer this Client authenticates to. A flow, refresh,
//     exchange or revocation aimed at any other issuer is refused before a
//     request is sent, so a credential minted for one AS never reaches
//     another — e.g. after the PRM starts naming a new AS, or a stored token
//     set names an issuer the configuration no longer pins.

// Errors of the issuer binding (causes in *Error; match with errors.Is).
var (
	// ErrResponseIssuer: an authorization response's iss is not the flow's
	// issuer, or is missing although the issuer's metadata promises it.
	ErrResponseIssuer = errors.New("authorization response iss does not name the flow's issuer")
	// ErrCredentialIssuer: a request would carry this client's credentials
	// or tokens to an issuer they do not belong to.
	ErrCredentialIssuer = errors.New("client credentials and tokens belong to another issuer")
)

// CheckResponseIssuer applies RFC 9207 §2.4 to one authorization response
// of expected's issuer: iss is the response's iss parameter, present says it
// was there at all (an empty iss that is present is a mismatch), and
// required is the metadata's authorization_response_iss_parameter_supported.
// Comparison is simple string comparison (RFC 3986 §6.2.1): no case
// folding, no slash or port normalisation.
func CheckResponseIssuer(expected, iss string, present, required bool) error {
	if present {
		if iss != expected {
			return ErrResponseIssuer
		}
		return nil
	}
	if required {
		return fmt.Errorf("%w: iss missing", ErrResponseIssuer)
	}
	return nil
}

// checkChallengeIss reads iss from one challenge-endpoint answer. A body
// that is not a JSON object is left to classify, which refuses it anyway.
func checkChallengeIss(as ASMetadata, issuer string, resp *response) error {
	var v struct {
		Iss json.RawMessage `json:"iss"`
	}
	if decodeJSON(resp.body, &v) != nil {
		return nil
	}
	present := len(v.Iss) > 0
	var iss string
	if present && json.Unmarshal(v.Iss, &iss) != nil {
		return fmt.Errorf("%w: iss is not a string", ErrResponseIssuer)
	}
	return CheckResponseIssuer(issuer, iss, present, resp.status == http.StatusOK && as.AuthorizationResponseISSSupported)
}

// credentialIssuer checks that issuer may receive this client's
// credentials; with bind, an unpinned Client binds to it on first use.
func (c *Client) credentialIssuer(issuer string, bind bool) error {
	if c.cfg.Issuer != "" {
		if issuer != c.cfg.Issuer {
			return ErrCredentialIssuer
		}
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.boundIssuer == "" && bind:
		c.boundIssuer = issuer
	case c.boundIssuer != "" && issuer != c.boundIssuer:
		return ErrCredentialIssuer
	}
	return nil
}

// Issued reports whether t was obtained from d's authorization server for
// d's resource: a caller holding a stored token set checks it against the
// current discovery before sending the token to the MCP server, so a token
// of the AS the resource named before is never presented after the PRM
// names another (MCP 2026-07-28: tokens and credentials are keyed by issuer).
func (d *Discovery) Issued(t *Token) bool {
	return d != nil && t != nil && t.Issuer != "" && t.Issuer == d.AS.Issuer && t.Resource == d.Resource
}
