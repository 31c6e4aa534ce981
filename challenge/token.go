package challenge

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Token is a token set bound to one (Issuer, Resource) pair. Refresh and
// Revoke send it only to endpoints that Issuer's validated metadata names.
type Token struct {
	AccessToken, RefreshToken, TokenType, Scope, IssuedTokenType string
	Expiry                                                       time.Time
	Issuer, Resource                                             string
}

// LogValue, String and GoString keep token values out of logs and error
// messages, whichever way a Token is printed.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("issuer", t.Issuer), slog.String("resource", t.Resource),
		slog.String("scope", t.Scope), slog.Time("expiry", t.Expiry))
}

func (t Token) String() string {
	return fmt.Sprintf("Token{issuer=%s resource=%s scope=%q expiry=%s}", t.Issuer, t.Resource, t.Scope, t.Expiry.Format(time.RFC3339))
}

func (t Token) GoString() string { return t.String() }

// Redeem exchanges an authorization code for tokens at f's issuer, with the
// PKCE verifier and f.Resource (RFC 8707).
func (c *Client) Redeem(ctx context.Context, f *Flow, code string) (*Token, error) {
	if f == nil || f.Issuer == "" || f.Resource == "" || f.Verifier == "" || code == "" {
		return nil, &Error{Op: "token", Cause: ErrBadFlow}
	}
	as, err := c.pinnedAS(ctx, f.Issuer, func(m ASMetadata) bool { return m.TokenEndpoint == f.TokenEndpoint })
	if err != nil {
		return nil, asError("token", err)
	}
	if f.TokenEndpoint != as.TokenEndpoint {
		return nil, &Error{Op: "token", Cause: fmt.Errorf("%w: token endpoint not published by its issuer", ErrBadFlow)}
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {f.Verifier},
		"resource":      {f.Resource},
		"client_id":     {c.cfg.ClientID},
	}
	t, authSession, err := c.tokenRequest(ctx, "token", as, form, f.Resource)
	if authSession != "" {
		f.AuthSession = authSession
	}
	if err != nil {
		return nil, err
	}
	if t.Scope == "" {
		t.Scope = f.Scope
	}
	return t, nil
}

// Refresh uses t's refresh token at t's issuer. The returned token keeps the
// old refresh token when the AS did not rotate it.
func (c *Client) Refresh(ctx context.Context, t *Token) (*Token, error) {
	if t == nil || t.RefreshToken == "" || t.Issuer == "" || t.Resource == "" {
		return nil, &Error{Op: "refresh", Cause: fmt.Errorf("%w: no refresh token", ErrBadFlow)}
	}
	as, err := c.pinnedAS(ctx, t.Issuer, nil)
	if err != nil {
		return nil, asError("refresh", err)
	}
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {t.RefreshToken},
		"resource":      {t.Resource},
		"client_id":     {c.cfg.ClientID},
	}
	nt, _, err := c.tokenRequest(ctx, "refresh", as, form, t.Resource)
	if err != nil {
		return nil, err
	}
	if nt.RefreshToken == "" {
		nt.RefreshToken = t.RefreshToken
	}
	if nt.Scope == "" {
		nt.Scope = t.Scope
	}
	return nt, nil
}

// Exchange trades a token from elsewhere for one for d.Resource (RFC 8693):
// resource = d.Resource, audience = the AS issuer.
func (c *Client) Exchange(ctx context.Context, d *Discovery, subjectToken, subjectTokenType, scope string) (*Token, error) {
	if d == nil || d.Resource == "" || d.AS.Issuer == "" || subjectToken == "" || subjectTokenType == "" {
		return nil, &Error{Op: "exchange", Cause: fmt.Errorf("%w: discovery or subject token missing", ErrBadFlow)}
	}
	as, err := c.pinnedAS(ctx, d.AS.Issuer, func(m ASMetadata) bool { return m.TokenEndpoint == d.AS.TokenEndpoint })
	if err != nil {
		return nil, asError("exchange", err)
	}
	form := url.Values{
		"grant_type":         {GrantTypeTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {subjectTokenType},
		"resource":           {d.Resource},
		"audience":           {as.Issuer},
		"client_id":          {c.cfg.ClientID},
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	t, _, err := c.tokenRequest(ctx, "exchange", as, form, d.Resource)
	if err != nil {
		return nil, err
	}
	if t.IssuedTokenType == "" {
		return nil, &Error{Op: "exchange", Cause: fmt.Errorf("%w: no issued_token_type", ErrMalformedResponse)}
	}
	if strings.EqualFold(t.TokenType, "N_A") {
		return nil, &Error{Op: "exchange", Cause: fmt.Errorf("%w: issued token is not an access token", ErrMalformedResponse)}
	}
	if t.Scope == "" {
		t.Scope = scope
	}
	return t, nil
}

// Revoke revokes t's refresh token, then its access token (RFC 7009), at
// t's issuer. Both are attempted; errors are joined.
func (c *Client) Revoke(ctx context.Context, t *Token) error {
	if t == nil || t.Issuer == "" {
		return &Error{Op: "revoke", Cause: ErrBadFlow}
	}
	as, err := c.pinnedAS(ctx, t.Issuer, nil)
	if err != nil {
		return asError("revoke", err)
	}
	if as.RevocationEndpoint == "" {
		return &Error{Op: "revoke", Cause: ErrNoRevocation}
	}
	var errs []error
	for _, tk := range []struct{ value, hint string }{{t.RefreshToken, "refresh_token"}, {t.AccessToken, "access_token"}} {
		if tk.value == "" {
			continue
		}
		form := url.Values{"token": {tk.value}, "token_type_hint": {tk.hint}, "client_id": {c.cfg.ClientID}}
		resp, err := c.postForm(ctx, "revoke", as.RevocationEndpoint, as.Issuer, form)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if resp.status != http.StatusOK {
			errs = append(errs, wireError("revoke", resp))
		}
	}
	return errors.Join(errs...)
}

// tokenRequest POSTs to as.TokenEndpoint and validates the response. The
// returned auth_session (FiPA token-response parameter) is passed back even
// on an insufficient_authorization error, so the caller can resume.
func (c *Client) tokenRequest(ctx context.Context, op string, as ASMetadata, form url.Values, resource string) (*Token, string, error) {
	resp, err := c.postForm(ctx, op, as.TokenEndpoint, as.Issuer, form)
	if err != nil {
		return nil, "", asError(op, err)
	}
	if resp.status != http.StatusOK {
		e := wireError(op, resp)
		c.log.LogAttrs(ctx, slog.LevelInfo, "challenge: token error", slog.String("op", op),
			slog.String("error", sanitizeCode(e.ErrorResponse.Error)), slog.Int("status", resp.status))
		return nil, e.AuthSession, e
	}
	var tr struct {
		TokenResponse
		AuthSession string `json:"auth_session"`
	}
	if err := decodeJSON(resp.body, &tr); err != nil {
		return nil, "", &Error{Op: op, StatusCode: resp.status, Cause: err}
	}
	if tr.AccessToken == "" || tr.TokenType == "" {
		return nil, tr.AuthSession, &Error{Op: op, StatusCode: resp.status, Cause: fmt.Errorf("%w: no access_token or token_type", ErrMalformedResponse)}
	}
	if !strings.EqualFold(tr.TokenType, "Bearer") && !strings.EqualFold(tr.TokenType, "N_A") {
		return nil, tr.AuthSession, &Error{Op: op, StatusCode: resp.status, Cause: fmt.Errorf("%w: unsupported token_type", ErrMalformedResponse)}
	}
	if err := checkAudience(tr.AccessToken, as.Issuer, resource); err != nil {
		return nil, tr.AuthSession, &Error{Op: op, StatusCode: resp.status, Cause: err}
	}
	t := &Token{
		AccessToken:     tr.AccessToken,
		RefreshToken:    tr.RefreshToken,
		TokenType:       tr.TokenType,
		Scope:           tr.Scope,
		IssuedTokenType: tr.IssuedTokenType,
		Issuer:          as.Issuer,
		Resource:        resource,
	}
	if tr.ExpiresIn > 0 {
		t.Expiry = c.now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "challenge: token issued", slog.String("op", op), slog.Any("token", t))
	return t, tr.AuthSession, nil
}

// wireError decodes an OAuth error body; a body that is not one still yields
// an *Error with the status and a malformed-response cause.
func wireError(op string, resp *response) *Error {
	var er ErrorResponse
	if err := decodeJSON(resp.body, &er); err != nil || er.Error == "" {
		if err == nil {
			err = fmt.Errorf("%w: no error member", ErrMalformedResponse)
		}
		return &Error{Op: op, StatusCode: resp.status, Cause: fmt.Errorf("%w: %w", ErrUnexpectedStatus, err)}
	}
	return &Error{Op: op, StatusCode: resp.status, ErrorResponse: er}
}

// jwtAlgs are the signature algorithms an access token may carry.
var jwtAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}

// checkAudience refuses a JWT access token whose aud does not name resource
// byte for byte, or whose iss is another issuer. Opaque tokens pass: only
// the resource server can judge them. The signature is not checked here: the
// token came straight from the validated token endpoint; the resource server
// verifies it.
func checkAudience(accessToken, issuer, resource string) error {
	if strings.Count(accessToken, ".") != 2 {
		return nil
	}
	tok, err := jwt.ParseSigned(accessToken, jwtAlgs)
	if err != nil {
		return nil
	}
	var cl jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&cl); err != nil {
		return fmt.Errorf("%w: unreadable access token claims", ErrMalformedResponse)
	}
	if cl.Issuer != "" && cl.Issuer != issuer {
		return fmt.Errorf("%w: access token iss", ErrIssuerMismatch)
	}
	if len(cl.Audience) > 0 && !slices.Contains([]string(cl.Audience), resource) {
		return ErrAudienceMismatch
	}
	return nil
}

// clientAssertion builds an RFC 7523 private_key_jwt assertion whose
// audience is the issuer (RFC 7523bis), valid 60 s.
func (c *Client) clientAssertion(issuer string) (string, error) {
	key := c.cfg.PrivateKey
	alg := jose.SignatureAlgorithm(key.Algorithm)
	if alg == "" {
		switch k := key.Key.(type) {
		case *ecdsa.PrivateKey:
			switch k.Curve.Params().BitSize {
			case 384:
				alg = jose.ES384
			case 521:
				alg = jose.ES512
			default:
				alg = jose.ES256
			}
		case ed25519.PrivateKey:
			alg = jose.EdDSA
		case *rsa.PrivateKey:
			alg = jose.RS256
		default:
			return "", errors.New("unsupported private key type for private_key_jwt")
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("private_key_jwt signer: %w", err)
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := c.now()
	return jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   c.cfg.ClientID,
		Subject:  c.cfg.ClientID,
		Audience: jwt.Audience{issuer},
		ID:       base64.RawURLEncoding.EncodeToString(jti),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(60 * time.Second)),
	}).Serialize()
}
