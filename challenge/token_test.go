package challenge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// obtain runs a full KBA flow (scope appointments:read) and redeems the code.
func obtain(t *testing.T, c *Client, d *Discovery) (*Flow, *Token) {
	t.Helper()
	ctx := context.Background()
	f, err := c.NewFlow(d, "", "cr")
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Submit(ctx, f, Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN})
	if err != nil || res.Outcome != Code {
		t.Fatalf("%v %v", res.Outcome, err)
	}
	tok, err := c.Redeem(ctx, f, res.Code)
	if err != nil {
		t.Fatal(err)
	}
	return f, tok
}

func TestRedeemRejectsWrongAudienceOrIssuer(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(as *fakeAS)
		want error
	}{
		{"aud other resource", func(as *fakeAS) { as.Audience = "https://other.example.com/mcp" }, ErrAudienceMismatch},
		{"aud with trailing slash", func(as *fakeAS) { as.Audience = "SELF/" }, ErrAudienceMismatch},
		{"iss other", func(as *fakeAS) {
			as.TokenHook = func(w http.ResponseWriter, r *http.Request, form url.Values) bool {
				save := as.Issuer
				as.Issuer = "https://evil.example.com"
				defer func() { as.Issuer = save }()
				writeJSON(w, 200, TokenResponse{AccessToken: as.signedToken(form.Get("resource"), ""), TokenType: "Bearer"})
				return true
			}
		}, ErrIssuerMismatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, nil)
			as, mcp, d := discoverFake(t, c)
			tt.mod(as)
			if as.Audience == "SELF/" {
				as.Audience = mcp.URL + "/"
			}
			f, _ := c.NewFlow(d, "", "cr")
			res, err := c.Submit(context.Background(), f, Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN})
			if err != nil || res.Outcome != Code {
				t.Fatal(res.Outcome, err)
			}
			tok, err := c.Redeem(context.Background(), f, res.Code)
			if !errors.Is(err, tt.want) || tok != nil {
				t.Fatalf("err = %v, token %v", err, tok)
			}
		})
	}
}

// TestTokenNeverSentToAnotherResource: a token obtained for resource 1 at
// AS 1 reaches AS 1's token and revocation endpoints and nothing else —
// not AS 2, not either MCP server, not a redirect target, not an endpoint
// smuggled into a persisted flow.
func TestTokenNeverSentToAnotherResource(t *testing.T) {
	c := newTestClient(t, nil)
	ctx := context.Background()
	as1, mcp1, d1 := discoverFake(t, c)
	// Stack 2 has its own client: one Client's credentials go to one
	// issuer only (iss.go).
	c2 := newTestClient(t, nil)
	as2, mcp2, d2 := discoverFake(t, c2)
	if d1.Resource == d2.Resource || d1.AS.Issuer == d2.AS.Issuer {
		t.Fatal("stacks not distinct")
	}
	_, tok := obtain(t, c, d1)
	_, tok2 := obtain(t, c2, d2) // an unrelated token at stack 2
	secrets := []string{tok.AccessToken, tok.RefreshToken}

	// Refresh goes to the token's own issuer and rotates.
	nt, err := c.Refresh(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if nt.Issuer != as1.Issuer || nt.Resource != d1.Resource || nt.RefreshToken == tok.RefreshToken {
		t.Fatalf("refreshed %v", nt)
	}
	secrets = append(secrets, nt.AccessToken, nt.RefreshToken)

	// A token endpoint that redirects elsewhere does not get the body forwarded.
	as1.TokenHook = func(w http.ResponseWriter, r *http.Request, _ url.Values) bool {
		http.Redirect(w, r, as2.Issuer+"/token", http.StatusTemporaryRedirect)
		return true
	}
	if _, err := c.Refresh(ctx, nt); err == nil {
		t.Fatal("refresh through a redirect succeeded")
	}
	as1.TokenHook = nil

	// A flow whose persisted token endpoint was swapped is refused before sending.
	f1, _ := c.NewFlow(d1, "", "cr")
	f1.TokenEndpoint = d2.AS.TokenEndpoint
	if _, err := c.Redeem(ctx, f1, "some-code"); !errors.Is(err, ErrBadFlow) {
		t.Fatalf("swapped token endpoint: %v", err)
	}
	// A token of another issuer is not this client's to send anywhere: its
	// revocation is refused before a request leaves (and stack 2's own
	// client revokes it at stack 2 only — never a cross pair).
	if err := c.Revoke(ctx, nt); err != nil {
		t.Fatal(err)
	}
	n2 := len(as2.requests())
	if err := c.Revoke(ctx, tok2); !errors.Is(err, ErrCredentialIssuer) {
		t.Fatalf("revoking another issuer's token: %v", err)
	}
	if len(as2.requests()) != n2 {
		t.Fatal("a refused revocation reached AS2")
	}
	if err := c2.Revoke(ctx, tok2); err != nil {
		t.Fatal(err)
	}

	for _, r := range as1.requests() {
		for _, s := range secrets {
			if strings.Contains(r.Body+headerText(r.Header), s) && r.Path != "/token" && r.Path != "/revoke" {
				t.Errorf("AS1 %s %s got a token", r.Method, r.Path)
			}
		}
	}
	for name, reqs := range map[string][]recorded{"AS2": as2.requests(), "MCP1": mcp1.requests(), "MCP2": mcp2.requests()} {
		for _, r := range reqs {
			for _, s := range secrets {
				if strings.Contains(r.Body+headerText(r.Header)+r.Path, s) {
					t.Errorf("%s %s %s received a resource-1 token", name, r.Method, r.Path)
				}
			}
		}
	}
	as1.mu.Lock()
	revoked := strings.Join(as1.Revoked, " ")
	as1.mu.Unlock()
	if !strings.Contains(revoked, nt.RefreshToken) || !strings.Contains(revoked, nt.AccessToken) {
		t.Fatal("revocation did not reach AS1")
	}
}

func headerText(h http.Header) string {
	var b strings.Builder
	for k, vs := range h {
		b.WriteString(k + ":" + strings.Join(vs, ",") + "\n")
	}
	return b.String()
}

func TestPrivateKeyJWT(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := &jose.JSONWebKey{Key: priv, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}
	c := newTestClient(t, func(cfg *Config) { cfg.ClientSecret = ""; cfg.PrivateKey = jwk })
	as, _, d := discoverFake(t, c)
	as.AssertionKey = jwk
	_, tok := obtain(t, c, d)
	if tok.AccessToken == "" {
		t.Fatal("no token")
	}
	for _, r := range as.requests() {
		if r.Header.Get("Authorization") != "" {
			t.Fatalf("%s sent Authorization with private_key_jwt", r.Path)
		}
	}
	// A different key is rejected by the AS: invalid_client, no retry.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c2 := newTestClient(t, func(cfg *Config) { cfg.PrivateKey = &jose.JSONWebKey{Key: other, Algorithm: string(jose.ES256)} })
	f, _ := c2.NewFlow(d, "", "")
	res, err := c2.Submit(context.Background(), f, Answers{Name: goodName})
	if res.Outcome != TransportFailure || res.Err.ErrorResponse.Error != ErrInvalidClient || err == nil {
		t.Fatalf("%v %v", res.Outcome, err)
	}
}

func TestExchange(t *testing.T) {
	c := newTestClient(t, nil)
	as, _, d := discoverFake(t, c)
	ctx := context.Background()
	tok, err := c.Exchange(ctx, d, "host-issued-token", TokenTypeJWT, "appointments:read")
	if err != nil {
		t.Fatal(err)
	}
	if tok.IssuedTokenType != TokenTypeAccessToken || tok.Resource != d.Resource || tok.Issuer != as.Issuer {
		t.Fatalf("%v", tok)
	}
	var form url.Values
	for _, r := range as.requests() {
		if r.Path == "/token" {
			form, _ = url.ParseQuery(r.Body)
		}
	}
	want := map[string]string{"grant_type": GrantTypeTokenExchange, "subject_token": "host-issued-token",
		"subject_token_type": TokenTypeJWT, "resource": d.Resource, "audience": as.Issuer, "scope": "appointments:read"}
	for k, v := range want {
		if form.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, form.Get(k), v)
		}
	}
	for _, tt := range []struct {
		name string
		resp TokenResponse
		want error
	}{
		{"no issued_token_type", TokenResponse{AccessToken: "a", TokenType: "Bearer"}, ErrMalformedResponse},
		{"N_A", TokenResponse{AccessToken: "a", TokenType: "N_A", IssuedTokenType: TokenTypeIDToken}, ErrMalformedResponse},
		{"DPoP", TokenResponse{AccessToken: "a", TokenType: "DPoP", IssuedTokenType: TokenTypeAccessToken}, ErrMalformedResponse},
	} {
		t.Run(tt.name, func(t *testing.T) {
			as.TokenHook = func(w http.ResponseWriter, _ *http.Request, _ url.Values) bool {
				writeJSON(w, 200, tt.resp)
				return true
			}
			if _, err := c.Exchange(ctx, d, "x", TokenTypeJWT, ""); !errors.Is(err, tt.want) {
				t.Fatalf("err %v", err)
			}
		})
	}
	as.TokenHook = func(w http.ResponseWriter, _ *http.Request, _ url.Values) bool {
		writeJSON(w, 400, ErrorResponse{Error: ErrInvalidTarget})
		return true
	}
	_, err = c.Exchange(ctx, d, "x", TokenTypeJWT, "")
	var ce *Error
	if !errors.As(err, &ce) || ce.ErrorResponse.Error != ErrInvalidTarget || ce.StatusCode != 400 {
		t.Fatalf("err %v", err)
	}
}

func TestRefreshErrors(t *testing.T) {
	c := newTestClient(t, nil)
	as, _, d := discoverFake(t, c)
	_, tok := obtain(t, c, d)
	ctx := context.Background()
	// Not rotated: the old refresh token is kept.
	as.TokenHook = func(w http.ResponseWriter, r *http.Request, form url.Values) bool {
		writeJSON(w, 200, TokenResponse{AccessToken: as.signedToken(form.Get("resource"), ""), TokenType: "bearer", ExpiresIn: 60})
		return true
	}
	nt, err := c.Refresh(ctx, tok)
	if err != nil || nt.RefreshToken != tok.RefreshToken || nt.Scope != tok.Scope {
		t.Fatalf("%v %v", nt, err)
	}
	// FiPA: a refresh may need re-verification; the auth_session comes back.
	as.TokenHook = func(w http.ResponseWriter, _ *http.Request, _ url.Values) bool {
		writeJSON(w, 403, ErrorResponse{Error: ErrInsufficientAuthorization, AuthSession: "resume-here"})
		return true
	}
	_, err = c.Refresh(ctx, tok)
	var ce *Error
	if !errors.As(err, &ce) || ce.ErrorResponse.Error != ErrInsufficientAuthorization || ce.AuthSession != "resume-here" {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "resume-here") {
		t.Fatal("auth_session in error string")
	}
	if _, err := c.Refresh(ctx, &Token{Issuer: as.Issuer, Resource: d.Resource}); !errors.Is(err, ErrBadFlow) {
		t.Fatalf("no refresh token: %v", err)
	}
}

func TestRevokeWithoutEndpoint(t *testing.T) {
	c := newTestClient(t, nil)
	as := newFakeAS(t)
	as.Meta.RevocationEndpoint = ""
	mcp := newFakeMCP(t, as.Issuer)
	d, err := c.Discover(context.Background(), mcp.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, tok := obtain(t, c, d)
	if err := c.Revoke(context.Background(), tok); !errors.Is(err, ErrNoRevocation) {
		t.Fatalf("err %v", err)
	}
}
