package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/session"
)

// GenerateSigningKey makes an ES256 private key with a thumbprint kid.
func GenerateSigningKey() (jose.JSONWebKey, error) {
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k := jose.JSONWebKey{Key: pk, Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := k.Thumbprint(cryptoSHA256)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k.KeyID = b64(tp)
	return k, nil
}

// introspection is the RFC 7662 response.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	AMR       []string `json:"amr,omitempty"`
}

// parseOwnAccess verifies one of our access tokens (signature by any
// published key, typ at+jwt, issuer, expiry, not revoked).
func (s *Server) parseOwnAccess(ctx context.Context, raw string) (*AccessClaims, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, errors.New("not a token")
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
		return nil, errors.New("not an access token")
	}
	keys := s.keys.Load().jwks.Key(h.KeyID)
	if len(keys) == 0 {
		return nil, errors.New("unknown key")
	}
	var c AccessClaims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		return nil, err
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: s.cfg.Issuer, Time: s.now()}, 0); err != nil {
		return nil, err
	}
	if _, err := s.cfg.Store.GetRecord(ctx, kindRevokedJTI, c.ID); err == nil {
		return nil, errors.New("revoked")
	} else if !errors.Is(err, session.ErrNotFound) {
		return nil, err
	}
	return &c, nil
}

func (s *Server) handleIntrospect(ctx context.Context, r *http.Request, f url.Values) (any, error) {
	c, oe := s.authenticateClient(ctx, r, f, s.cfg.Issuer+"/introspect")
	if oe != nil {
		return nil, oe
	}
	tok := f.Get("token")
	if tok == "" {
		return nil, newErr(challenge.ErrInvalidRequest, "token is required")
	}
	if ac, err := s.parseOwnAccess(ctx, tok); err == nil {
		return introspection{Active: true, Scope: ac.Scope, ClientID: ac.ClientID, TokenType: "Bearer",
			Exp: ac.Expiry.Time().Unix(), Iat: ac.IssuedAt.Time().Unix(), Sub: ac.Subject, Aud: ac.Audience,
			Iss: s.cfg.Issuer, JTI: ac.ID, ACR: ac.ACR, AMR: ac.AMR}, nil
	}
	// A refresh token is described only to the client it was issued to.
	if rec, err := s.cfg.Store.GetRecord(ctx, kindRefresh, hashKey(tok)); err == nil {
		var rd refreshData
		if json.Unmarshal(rec.Data, &rd) == nil && !rd.Used && rd.Client == c.ID {
			if revoked, err := s.familyRevoked(ctx, rd.Family); err == nil && !revoked {
				return introspection{Active: true, ClientID: rd.Client, Sub: rd.Subject, Scope: joinScope(rd.Scope),
					Aud: []string{rd.Resource}, Iss: s.cfg.Issuer, Exp: rec.ExpiresAt.Unix(), ACR: rd.ACR}, nil
			}
		}
	}
	return introspection{Active: false}, nil
}

func (s *Server) handleRevoke(ctx context.Context, r *http.Request, f url.Values) (any, error) {
	// A revocation that started is finished even if the client stops waiting.
	ctx = context.WithoutCancel(ctx)
	c, oe := s.authenticateClient(ctx, r, f, s.cfg.Issuer+"/revoke")
	if oe != nil {
		return nil, oe
	}
	tok := f.Get("token")
	if tok == "" {
		return nil, newErr(challenge.ErrInvalidRequest, "token is required")
	}
	switch f.Get("token_type_hint") {
	case "", "access_token", "refresh_token":
	default:
		return nil, newErr(errUnsupportedTokenType, "")
	}
	now := s.now()
	// RFC 7009 §2.2: invalid or foreign tokens still answer 200.
	if rec, err := s.cfg.Store.GetRecord(ctx, kindRefresh, hashKey(tok)); err == nil {
		var rd refreshData
		if json.Unmarshal(rec.Data, &rd) == nil && rd.Client == c.ID {
			s.revokeIssued(ctx, "", rd.Family, now)
			s.audit(ctx, "token.revoked", c.ID, rd.Subject, "", "", "revoked", map[string]string{"type": "refresh_token"})
		}
	} else if ac, err := s.parseOwnAccess(ctx, tok); err == nil && ac.ClientID == c.ID {
		s.revokeJTI(ctx, ac.ID)
		s.audit(ctx, "token.revoked", c.ID, ac.Subject, "", "", "revoked", map[string]string{"type": "access_token", "jti": ac.ID})
	}
	return struct{}{}, nil
}

func joinScope(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

var _ = time.Second
