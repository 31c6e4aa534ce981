package authserver

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/session"
)

const assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientAssertionMaxLife bounds exp - now of a private_key_jwt assertion.
const clientAssertionMaxLife = 5 * time.Minute

// authenticateClient implements client_secret_basic and private_key_jwt
// (RFC 7523) identically for every endpoint. endpoint is the endpoint's full
// URL; it is not an accepted assertion audience (RFC 7523bis: only the issuer).
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, f url.Values, endpoint string) (*Client, *oauthError) {
	bodyID := f.Get("client_id")
	if user, pass, ok := r.BasicAuth(); ok {
		fail := &oauthError{resp: challenge.ErrorResponse{Error: challenge.ErrInvalidClient, ErrorDescription: "client authentication failed"}, basic: true}
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || f.Has("client_assertion") {
			return nil, fail
		}
		c, err := s.lookupClient(ctx, id)
		if err != nil {
			s.log.Error("authserver: client lookup failed", "err", err)
			return nil, newErr(errServerError, "")
		}
		sum := sha256.Sum256([]byte(secret))
		okSecret := c != nil && c.secretMatches(sum, s.now())
		if c == nil || !okSecret || (bodyID != "" && bodyID != id) {
			return nil, fail
		}
		return c, nil
	}
	if f.Has("client_assertion") || f.Has("client_assertion_type") {
		fail := newErr(challenge.ErrInvalidClient, "client authentication failed")
		if f.Get("client_assertion_type") != assertionTypeJWTBearer {
			return nil, fail
		}
		c, err := s.verifyClientAssertion(ctx, f.Get("client_assertion"))
		if err != nil {
			s.log.Info("authserver: client assertion rejected", "reason", err.Error())
			return nil, fail
		}
		if bodyID != "" && bodyID != c.ID {
			return nil, fail
		}
		return c, nil
	}
	return nil, newErr(challenge.ErrInvalidClient, "client authentication required")
}

// assertionAlgs are the private_key_jwt signature algorithms accepted; the
// metadata's token_endpoint_auth_signing_alg_values_supported is this list.
var assertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}

func assertionAlgNames() []string {
	out := make([]string, len(assertionAlgs))
	for i, a := range assertionAlgs {
		out[i] = string(a)
	}
	return out
}

// dummyHash is the stand-in DOB/SSN-4 hash compared when a name matches no
// patient: the same length as a real one (HMAC-SHA256), so the comparison
// costs the same, and derived from the pepper without holding a copy of it.
func dummyHash(pepper *session.MAC) []byte {
	return pepper.Sum("voiceauth", "dummy-candidate", "v1")
}

func (s *Server) verifyClientAssertion(ctx context.Context, raw string) (*Client, error) {
	if raw == "" || len(raw) > 8192 {
		return nil, errors.New("missing or oversized assertion")
	}
	tok, err := jwt.ParseSigned(raw, assertionAlgs)
	if err != nil {
		return nil, errors.New("unparseable assertion")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, errors.New("unparseable claims")
	}
	c, err := s.lookupClient(ctx, unverified.Issuer)
	if err != nil {
		return nil, err
	}
	if c == nil || c.JWKS == nil {
		return nil, errors.New("unknown client or no JWKS")
	}
	var claims jwt.Claims
	var all map[string]any
	var verified bool
	for _, h := range tok.Headers {
		keys := c.JWKS.Keys
		if h.KeyID != "" {
			keys = c.JWKS.Key(h.KeyID)
		}
		for _, k := range keys {
			if err := tok.Claims(k.Public().Key, &claims, &all); err == nil {
				verified = true
				break
			}
		}
	}
	if !verified {
		return nil, errors.New("bad signature")
	}
	now := s.now()
	if claims.Issuer != c.ID || claims.Subject != c.ID {
		return nil, errors.New("iss/sub must be the client id")
	}
	if claims.Expiry == nil || claims.ID == "" {
		return nil, errors.New("exp and jti are required")
	}
	exp := claims.Expiry.Time()
	if exp.Before(now.Add(-30*time.Second)) || exp.After(now.Add(clientAssertionMaxLife)) {
		return nil, errors.New("exp out of range")
	}
	if claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(30*time.Second)) {
		return nil, errors.New("not yet valid")
	}
	// RFC 7523bis: the audience is this AS's issuer identifier as its sole
	// value, and a JSON string (not an array); no endpoint URL, compared
	// exactly (RFC 3986 §6.2.1 simple string comparison).
	if aud, ok := all["aud"].(string); !ok || aud != s.cfg.Issuer {
		return nil, errors.New("wrong audience")
	}
	// Replay check through the store, so every instance sees every jti.
	rec := &session.Record{Kind: "client_jti", Key: hashKey(c.ID + "|" + claims.ID), Data: []byte{1}, ExpiresAt: exp.Add(time.Minute)}
	if err := s.cfg.Store.PutRecord(ctx, rec); err != nil {
		if errors.Is(err, session.ErrExists) {
			return nil, errors.New("jti replayed")
		}
		return nil, err
	}
	return c, nil
}
