package authserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/challenge"
)

// pkAssertion signs an RFC 7523 client assertion for pkjwt-client.
func (e *env) pkAssertion(aud, jti string, life time.Duration) string {
	e.t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: e.pkKey}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	now := e.clk.Now()
	s, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "pkjwt-client", Subject: "pkjwt-client", Audience: jwt.Audience{aud},
		ID: jti, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(life))}).Serialize()
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// codeFor runs KBA for Maria and returns a code and its verifier.
func (e *env) codeFor(scope string) (code, verifier string) {
	e.t.Helper()
	m := demo("pt-0001")
	v, c := pkce()
	r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, scope))
	var ok challenge.ChallengeSuccess
	if r.status != 200 || r.json(&ok) != nil {
		e.t.Fatalf("challenge: %d %s", r.status, r.body)
	}
	return ok.AuthorizationCode, v
}

func (e *env) introspect(tok string) map[string]any {
	e.t.Helper()
	r := e.post("/introspect", url.Values{"token": {tok}})
	var m map[string]any
	if r.status != 200 || r.json(&m) != nil {
		e.t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	return m
}

func TestAuthorizationCodeGrant(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		mutate func(f url.Values, e *env)
		auth   func(*http.Request)
		before func(e *env)
		code   string
	}{
		{name: "ok"},
		{name: "wrong verifier", mutate: func(f url.Values, _ *env) { f.Set("code_verifier", randomToken(32)) }, code: "invalid_grant"},
		{name: "missing verifier", mutate: func(f url.Values, _ *env) { f.Del("code_verifier") }, code: "invalid_grant"},
		{name: "other client", auth: basic("third-party", "third-party-secret"), code: "invalid_grant"},
		{name: "other resource", mutate: func(f url.Values, _ *env) { f.Set("resource", "http://127.0.0.1:9999/mcp") }, code: "invalid_target"},
		{name: "expired (61 s)", before: func(e *env) { e.clk.Add(61 * time.Second) }, code: "invalid_grant"},
		{name: "unknown code", mutate: func(f url.Values, _ *env) { f.Set("code", randomToken(32)) }, code: "invalid_grant"},
		{name: "no grant_type", mutate: func(f url.Values, _ *env) { f.Del("grant_type") }, code: "invalid_request"},
		{name: "password grant", mutate: func(f url.Values, _ *env) { f.Set("grant_type", "password") }, code: "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, v := e.codeFor("")
			f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {v}, "resource": {testResource}}
			if tt.mutate != nil {
				tt.mutate(f, e)
			}
			if tt.before != nil {
				tt.before(e)
			}
			r := e.post("/token", f, tt.auth)
			if tt.code == "" {
				var tok challenge.TokenResponse
				r.json(&tok)
				if r.status != 200 || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 || tok.ExpiresIn > 900 || tok.RefreshToken == "" ||
					r.header.Get("Cache-Control") != "no-store" {
					t.Fatalf("%d %s", r.status, r.body)
				}
				e.claims(tok.AccessToken)
				return
			}
			if r.status != 400 || r.err.Error != tt.code {
				t.Fatalf("got %d %s, want %s", r.status, r.body, tt.code)
			}
		})
	}
}

// TestCodeReuseRevokes: a second redemption fails and revokes the access
// and refresh tokens the first one issued (RFC 6749 §4.1.2).
func TestCodeReuseRevokes(t *testing.T) {
	e := newEnv(t, nil)
	code, v := e.codeFor("")
	r := e.redeem(code, v)
	var tok challenge.TokenResponse
	r.json(&tok)
	if e.introspect(tok.AccessToken)["active"] != true {
		t.Fatal("fresh token inactive")
	}
	if r := e.redeem(code, v); r.err.Error != "invalid_grant" {
		t.Fatalf("reuse: %s", r.body)
	}
	if e.introspect(tok.AccessToken)["active"] != false {
		t.Error("access token survived code reuse")
	}
	if r := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}); r.err.Error != "invalid_grant" {
		t.Errorf("refresh survived code reuse: %s", r.body)
	}
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t, nil)
	code, v := e.codeFor("")
	var t1 challenge.TokenResponse
	e.redeem(code, v).json(&t1)
	refresh := func(rt string, extra ...string) reply {
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		for i := 0; i+1 < len(extra); i += 2 {
			f.Set(extra[i], extra[i+1])
		}
		return e.post("/token", f)
	}
	if r := refresh(t1.RefreshToken, "scope", "medications:read"); r.err.Error != "invalid_scope" {
		t.Fatalf("widening: %s", r.body)
	}
	r := refresh(t1.RefreshToken)
	var t2 challenge.TokenResponse
	r.json(&t2)
	if r.status != 200 || t2.RefreshToken == "" || t2.RefreshToken == t1.RefreshToken {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if cl := e.claims(t2.AccessToken); cl.Subject != "pt-0001" || cl.ACR != challenge.ACRKBA {
		t.Fatalf("claims %+v", cl)
	}
	// Reusing the old refresh token revokes the whole family.
	if r := refresh(t1.RefreshToken); r.err.Error != "invalid_grant" {
		t.Fatalf("reuse: %s", r.body)
	}
	if r := refresh(t2.RefreshToken); r.err.Error != "invalid_grant" {
		t.Fatalf("family survived reuse: %s", r.body)
	}
	if e.introspect(t2.AccessToken)["active"] != false {
		t.Error("access token of the family survived")
	}
	// Other clients cannot use a refresh token.
	code, v = e.codeFor("")
	var t3 challenge.TokenResponse
	e.redeem(code, v).json(&t3)
	r = e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t3.RefreshToken}}, basic("third-party", "third-party-secret"))
	if r.err.Error != "invalid_grant" {
		t.Fatalf("other client: %s", r.body)
	}
}

func TestIntrospectionAndRevocation(t *testing.T) {
	e := newEnv(t, nil)
	code, v := e.codeFor("")
	var tok challenge.TokenResponse
	e.redeem(code, v).json(&tok)
	in := e.introspect(tok.AccessToken)
	if in["active"] != true || in["sub"] != "pt-0001" || in["client_id"] != ivrID || in["acr"] != challenge.ACRKBA {
		t.Fatalf("introspect %v", in)
	}
	if in := e.introspect(tok.RefreshToken); in["active"] != true {
		t.Fatalf("refresh introspect %v", in)
	}
	if in := e.introspect("garbage"); len(in) != 1 || in["active"] != false {
		t.Fatalf("garbage %v", in)
	}
	if r := e.post("/introspect", url.Values{"token": {tok.AccessToken}}, noAuth); r.status != 401 {
		t.Fatalf("unauthenticated introspection: %d", r.status)
	}
	// Revoke the refresh token (hang-up): family dead.
	if r := e.post("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}); r.err.Error != "invalid_grant" {
		t.Fatalf("revoked refresh usable: %s", r.body)
	}
	// Revoke the access token.
	e.post("/revoke", url.Values{"token": {tok.AccessToken}})
	if e.introspect(tok.AccessToken)["active"] != false {
		t.Fatal("revoked access token active")
	}
	// Unknown tokens: 200 (RFC 7009 §2.2); bad hint: unsupported_token_type.
	if r := e.post("/revoke", url.Values{"token": {"nothing"}}); r.status != 200 {
		t.Fatalf("unknown token: %d", r.status)
	}
	if r := e.post("/revoke", url.Values{"token": {"x"}, "token_type_hint": {"saml"}}); r.err.Error != "unsupported_token_type" {
		t.Fatalf("hint: %s", r.body)
	}
	// Expired access token is inactive.
	code, v = e.codeFor("")
	e.redeem(code, v).json(&tok)
	e.clk.Add(11 * time.Minute)
	if e.introspect(tok.AccessToken)["active"] != false {
		t.Fatal("expired token active")
	}
}

func TestPrivateKeyJWT(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0001")
	attempt := func(assertion string) reply {
		_, c := pkce()
		f := kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "")
		f.Set("client_id", "pkjwt-client")
		f.Set("call_ref", "pk-call")
		f.Set("client_assertion_type", assertionTypeJWTBearer)
		f.Set("client_assertion", assertion)
		return e.post("/challenge", f, noAuth)
	}
	jti := randomToken(8)
	good := e.pkAssertion(e.ts.URL, jti, time.Minute)
	if r := attempt(good); r.status != 200 {
		t.Fatalf("good assertion: %d %s", r.status, r.body)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := func() string {
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: other}, nil)
		now := e.clk.Now()
		s, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "pkjwt-client", Subject: "pkjwt-client", Audience: jwt.Audience{e.ts.URL},
			ID: randomToken(8), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
		return s
	}()
	tests := []struct{ name, assertion string }{
		{"replayed jti", good},
		{"endpoint audience ok but other server", e.pkAssertion("http://elsewhere.example", randomToken(8), time.Minute)},
		{"expired", e.pkAssertion(e.ts.URL, randomToken(8), -2*time.Minute)},
		{"too long lived", e.pkAssertion(e.ts.URL, randomToken(8), time.Hour)},
		{"wrong key", forged},
		{"garbage", "a.b.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := attempt(tt.assertion); r.status != 401 || r.err.Error != "invalid_client" || r.header.Get("WWW-Authenticate") != "" {
				t.Fatalf("%d %s %v", r.status, r.body, r.header)
			}
		})
	}
	// RFC 7523bis: an endpoint URL is not an accepted audience (issue 14).
	if r := attempt(e.pkAssertion(e.ts.URL+"/challenge", randomToken(8), time.Minute)); r.status != 401 {
		t.Fatalf("endpoint audience: %d %s", r.status, r.body)
	}
}

// externalIssuer is a trusted third-party IdP with its JWKS on loopback.
type externalIssuer struct {
	ts  *httptest.Server
	key jose.JSONWebKey
	aud string // aud of its tokens (the AS's issuer), unless the claims say otherwise
	typ string // JOSE typ of its tokens; "" = JWT, "-" = none
}

func newExternalIssuer(t *testing.T) *externalIssuer {
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	x := &externalIssuer{key: jose.JSONWebKey{Key: pk, KeyID: "idp-1", Algorithm: "ES256"}}
	x.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{x.key.Public()}})
	}))
	t.Cleanup(x.ts.Close)
	return x
}

func (x *externalIssuer) token(t *testing.T, now time.Time, claims map[string]any) string {
	opts := &jose.SignerOptions{}
	switch x.typ {
	case "":
		opts = opts.WithType("JWT")
	case "-":
	default:
		opts = opts.WithType(jose.ContentType(x.typ))
	}
	sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: x.key}, opts)
	c := map[string]any{"iss": x.ts.URL, "exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": randomToken(12)}
	if x.aud != "" {
		c["aud"] = x.aud
	}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	s, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenExchange(t *testing.T) {
	idp := newExternalIssuer(t)
	untrusted := newExternalIssuer(t)
	e := newEnv(t, func(c *Config) {
		c.TrustedIssuers = []TrustedIssuer{{Issuer: idp.ts.URL, JWKSURL: idp.ts.URL, SubjectClaim: "patient_id"}}
	})
	idp.aud, untrusted.aud = e.ts.URL, e.ts.URL
	now := e.clk.Now()
	good := idp.token(t, now, map[string]any{"sub": "user-77", "patient_id": "pt-0003", "acr": challenge.ACRKBAOTP})
	host := basic("host-app", "host-secret")
	base := func() url.Values {
		return url.Values{"grant_type": {challenge.GrantTypeTokenExchange}, "subject_token": {good},
			"subject_token_type": {challenge.TokenTypeJWT}, "resource": {testResource}, "scope": {"appointments:read medications:read"}}
	}
	with := func(kv ...string) url.Values {
		f := base()
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				f.Del(kv[i])
			} else {
				f.Set(kv[i], kv[i+1])
			}
		}
		return f
	}
	tests := []struct {
		name string
		form url.Values
		auth func(*http.Request)
		code string
	}{
		{"missing subject_token", with("subject_token", ""), host, "invalid_request"},
		{"missing subject_token_type", with("subject_token_type", ""), host, "invalid_request"},
		{"actor_token without type", with("actor_token", good), host, "invalid_request"},
		{"disallowed resource", with("resource", "http://127.0.0.1:9999/mcp"), host, "invalid_target"},
		{"disallowed audience", with("audience", "billing"), host, "invalid_target"},
		{"untrusted issuer", with("subject_token", untrusted.token(t, now, map[string]any{"patient_id": "pt-0003"})), host, "invalid_request"},
		{"forged issuer claim", with("subject_token", func() string {
			sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: untrusted.key}, nil)
			s, _ := jwt.Signed(sig).Claims(map[string]any{"iss": idp.ts.URL, "patient_id": "pt-0003", "exp": now.Add(time.Minute).Unix()}).Serialize()
			return s
		}()), host, "invalid_request"},
		{"expired subject token", with("subject_token", idp.token(t, now.Add(-time.Hour), map[string]any{"patient_id": "pt-0003"})), host, "invalid_request"},
		{"unknown patient", with("subject_token", idp.token(t, now, map[string]any{"patient_id": "pt-9999"})), host, "invalid_request"},
		{"no subject claim", with("subject_token", idp.token(t, now, map[string]any{"sub": "x"})), host, "invalid_request"},
		{"client not allowed", base(), nil, "unauthorized_client"},
		{"only otp scopes under kba cap", with("scope", "medications:read"), host, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r reply
			if tt.auth == nil {
				r = e.post("/token", tt.form)
			} else {
				r = e.post("/token", tt.form, tt.auth)
			}
			if r.status != 400 || r.err.Error != tt.code {
				t.Fatalf("got %d %s, want %s", r.status, r.body, tt.code)
			}
		})
	}
	r := e.post("/token", base(), host)
	var tok challenge.TokenResponse
	r.json(&tok)
	if r.status != 200 || tok.IssuedTokenType != challenge.TokenTypeAccessToken || tok.TokenType != "Bearer" ||
		tok.Scope != "appointments:read" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	cl := e.claims(tok.AccessToken)
	if cl.Subject != "pt-0003" || cl.ACR != challenge.ACRKBA || cl.ClientID != "host-app" {
		t.Fatalf("claims %+v (must be capped at kba)", cl)
	}
}

func TestLoadTrustedIssuers(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, randomToken(4)+".yaml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	good := write("trusted_issuers:\n  - issuer: https://idp.example\n    jwks_url: https://idp.example/jwks\n    subject_claim: patient_id\n    max_acr: urn:voiceauth:acr:kba-otp\n")
	ts, err := LoadTrustedIssuers(good)
	if err != nil || len(ts) != 1 || ts[0].SubjectClaim != "patient_id" || ts[0].MaxACR != challenge.ACRKBAOTP {
		t.Fatalf("%+v %v", ts, err)
	}
	for _, bad := range []string{
		"trusted_issuers:\n  - issuer: https://idp.example\n",
		"trusted_issuers:\n  - issuer: x\n    jwks_url: a\n    jwks_file: b\n",
		"trusted_issuers:\n  - issuer: x\n    jwks_url: a\n    max_acr: gold\n",
		"{{{",
	} {
		if _, err := LoadTrustedIssuers(write(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestJWKSRotation(t *testing.T) {
	old, _ := GenerateSigningKey()
	e := newEnv(t, func(c *Config) { c.SigningKeys = append(c.SigningKeys, old) })
	resp, err := e.ts.Client().Get(e.ts.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.KeyID == "" || k.Algorithm != "ES256" {
			t.Fatalf("bad published key %+v", k)
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		t.Fatal(resp.Header)
	}
}

// TestRefreshNeedsReverification is checklist item 37: a refresh long after
// authentication answers insufficient_authorization with an auth_session;
// the client resumes at the challenge endpoint with it (same call only).
func TestRefreshNeedsReverification(t *testing.T) {
	e := newEnv(t, nil)
	code, v := e.codeFor("")
	var t1 challenge.TokenResponse
	e.redeem(code, v).json(&t1)
	refresh := func(rt string) reply {
		return e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	if r := refresh(t1.RefreshToken); r.status != 200 {
		t.Fatalf("fresh refresh: %d %s", r.status, r.body)
	}
	var t2 challenge.TokenResponse
	code, v = e.codeFor("")
	e.redeem(code, v).json(&t2)

	e.clk.Add(61 * time.Minute)
	r := refresh(t2.RefreshToken)
	if r.status != 400 || r.err.Error != challenge.ErrInsufficientAuthorization || r.err.AuthSession == "" || len(r.err.KBARequired) != 3 {
		t.Fatalf("stale refresh: %d %s", r.status, r.body)
	}
	sess := r.err.AuthSession
	m := demo("pt-0001")
	if rr := e.post("/challenge", follow(sess, "call_ref", "another-call", "kba_name", m.Name)); rr.err.Error != challenge.ErrInvalidSession {
		t.Fatalf("another call resumed the session: %s", rr.body)
	}
	v2, c2 := pkce()
	rr := e.post("/challenge", follow(sess, "code_challenge", c2, "code_challenge_method", "S256",
		"kba_name", m.Name, "kba_birthdate", m.Birthdate, "kba_ssn_last4", m.SSNLast4, "caller_phone", m.Phone, "stir_verstat", stirA))
	var ok challenge.ChallengeSuccess
	if rr.status != 200 || rr.json(&ok) != nil || ok.AuthorizationCode == "" {
		t.Fatalf("resume: %d %s", rr.status, rr.body)
	}
	if red := e.redeem(ok.AuthorizationCode, v2); red.status != 200 {
		t.Fatalf("redeem after re-verification: %d %s", red.status, red.body)
	}
}
