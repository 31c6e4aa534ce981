package challenge_test

// Tests against the real reference authorization server (authserver) over
// loopback HTTP, backed by a SQLite session store seeded with the demo
// patients. The MCP side is a minimal protected resource (401 + PRM), which
// is all discovery needs.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/session"
)

const (
	ivrID     = "voiceauth-ivr"
	ivrSecret = "ivr-secret-0123456789abcdef0123456789abcdef"
	stirA     = "TN-Validation-Passed-A"
	maria     = "Maria Garcia"
	mariaDOB  = "1980-03-03"
	mariaSSN  = "4567"
	mariaTel  = "+15555550101"
	idpIssuer = "https://idp.example.com"
)

type realStack struct {
	as      *authserver.Server
	asURL   string
	mcpURL  string
	outbox  string
	pkKey   *jose.JSONWebKey
	idpKey  *jose.JSONWebKey
	storeDB string
}

// tb is the part of testing.TB the stack needs, so Example functions can
// build one too.
type tb interface {
	Helper()
	Fatal(args ...any)
	TempDir() string
	Cleanup(func())
}

func newRealStack(t tb, mod func(*authserver.Config)) *realStack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := session.NewSealer(map[uint32][]byte{1: key}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := session.Open(ctx, filepath.Join(dir, "as.db"), session.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pepper := []byte("pepper-pepper-pepper-pepper-0001")
	if err := authserver.Seed(ctx, st, pepper, authserver.DemoPatients()); err != nil {
		t.Fatal(err)
	}
	sk, err := authserver.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s := &realStack{outbox: filepath.Join(dir, "otp-outbox.jsonl")}
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s.pkKey = &jose.JSONWebKey{Key: pk, KeyID: "client-key-1", Algorithm: string(jose.ES256)}
	ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s.idpKey = &jose.JSONWebKey{Key: ik, KeyID: "idp-1", Algorithm: string(jose.ES256)}
	jwksFile := filepath.Join(dir, "idp-jwks.json")
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.idpKey.Public()}})
	if err := os.WriteFile(jwksFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	// The protected resource: 401 with resource_metadata, and its PRM.
	mcp := httptest.NewUnstartedServer(nil)
	s.mcpURL = "http://" + mcp.Listener.Addr().String() + "/mcp"
	asSrv := httptest.NewUnstartedServer(nil)
	s.asURL = "http://" + asSrv.Listener.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer resource_metadata="http://%s/.well-known/oauth-protected-resource/mcp", scope="appointments:read"`, r.Host))
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(challenge.ProtectedResourceMetadata{Resource: s.mcpURL, AuthorizationServers: []string{s.asURL},
			ScopesSupported: []string{"appointments:read", "medications:read", "prescriptions:refill"}})
	})
	mcp.Config.Handler = mux
	mcp.Start()
	t.Cleanup(mcp.Close)

	cfg := authserver.Config{
		Issuer: s.asURL, Store: st, Pepper: pepper, LogKey: []byte("log-key"),
		SigningKeys: []jose.JSONWebKey{sk},
		Clients: []authserver.Client{
			{ID: ivrID, Secret: ivrSecret, FirstParty: true},
			{ID: "pkjwt-client", JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.pkKey.Public()}}, FirstParty: true},
			{ID: "host-app", Secret: "host-secret-0123456789abcdef", TokenExchange: true},
		},
		Resources:      []string{s.mcpURL},
		OTP:            &authserver.OutboxChannel{Path: s.outbox, Store: st},
		TrustedIssuers: []authserver.TrustedIssuer{{Issuer: idpIssuer, JWKSFile: jwksFile}},
		Policy:         authserver.Policy{WebOnlyScopes: []string{"records:export"}},
	}
	if mod != nil {
		mod(&cfg)
	}
	s.as, err = authserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	asSrv.Config.Handler = s.as.Handler()
	asSrv.Start()
	t.Cleanup(asSrv.Close)
	return s
}

func (s *realStack) client(t tb, mod func(*challenge.Config)) (*challenge.Client, *challenge.Discovery) {
	t.Helper()
	cfg := challenge.Config{ClientID: ivrID, ClientSecret: ivrSecret, Issuer: s.asURL}
	if mod != nil {
		mod(&cfg)
	}
	c := challenge.New(cfg)
	d, err := c.Discover(context.Background(), s.mcpURL)
	if err != nil {
		t.Fatal(err)
	}
	return c, d
}

func (s *realStack) otp(t tb) string {
	t.Helper()
	code, err := authserver.LatestOutboxCode(s.outbox, mariaTel)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// verifyAccessToken checks the JWT with the AS's published JWKS (a real
// signature) and returns its claims.
func (s *realStack) verifyAccessToken(t *testing.T, d *challenge.Discovery, tok *challenge.Token) map[string]any {
	t.Helper()
	resp, err := http.Get(d.AS.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	jt, err := jwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var std jwt.Claims
	var all map[string]any
	if err := jt.Claims(set.Key(jt.Headers[0].KeyID)[0].Key, &std, &all); err != nil {
		t.Fatal(err)
	}
	if err := std.Validate(jwt.Expected{Issuer: s.asURL, AnyAudience: jwt.Audience{s.mcpURL}, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return all
}

type step struct {
	a    challenge.Answers
	want challenge.Outcome
	otp  bool // fill Answers.OTP from the outbox
}

func runSteps(t *testing.T, s *realStack, c *challenge.Client, f *challenge.Flow, steps []step) *challenge.Result {
	t.Helper()
	var res *challenge.Result
	for i, st := range steps {
		if st.otp {
			st.a.OTP = s.otp(t)
		}
		var err error
		res, err = c.Submit(context.Background(), f, st.a)
		if err != nil && st.want != challenge.TransportFailure {
			t.Fatalf("step %d: %v", i, err)
		}
		if res.Outcome != st.want {
			t.Fatalf("step %d: outcome %v (err %v), want %v", i, res.Outcome, res.Err, st.want)
		}
	}
	return res
}

func TestRealAS_Outcomes(t *testing.T) {
	good := challenge.Answers{Name: maria, Birthdate: mariaDOB, SSNLast4: mariaSSN, CallerPhone: mariaTel, StirVerstat: stirA}
	wrong := challenge.Answers{Name: maria, Birthdate: mariaDOB, SSNLast4: "0000", CallerPhone: mariaTel, StirVerstat: stirA}
	tests := []struct {
		name    string
		scope   string
		prepare func(f *challenge.Flow)
		steps   []step
		acr     string
	}{
		{"kba only, one answer at a time", "appointments:read", nil, []step{
			{a: challenge.Answers{Name: maria, CallerPhone: mariaTel, StirVerstat: stirA}, want: challenge.NeedMore},
			{a: challenge.Answers{Birthdate: mariaDOB}, want: challenge.NeedMore},
			{a: challenge.Answers{SSNLast4: mariaSSN}, want: challenge.Code},
		}, challenge.ACRKBA},
		{"retry then code", "appointments:read", nil, []step{
			{a: wrong, want: challenge.RetryKBA},
			{a: good, want: challenge.Code},
		}, challenge.ACRKBA},
		{"denied after two failures", "appointments:read", nil, []step{
			{a: wrong, want: challenge.RetryKBA},
			{a: wrong, want: challenge.Denied},
		}, ""},
		{"otp for medications", "appointments:read medications:read", nil, []step{
			{a: good, want: challenge.NeedOTP},
			{a: challenge.Answers{OTP: "000000"}, want: challenge.RetryOTP},
			{otp: true, want: challenge.Code},
		}, challenge.ACRKBAOTP},
		{"otp for an unattested call", "appointments:read", nil, []step{
			{a: challenge.Answers{Name: maria, Birthdate: mariaDOB, SSNLast4: mariaSSN, CallerPhone: mariaTel, StirVerstat: "TN-Validation-Passed-C"}, want: challenge.NeedOTP},
			{otp: true, want: challenge.Code},
		}, challenge.ACRKBAOTP},
		{"invalid session", "appointments:read", func(f *challenge.Flow) {
			f.AuthSession = strings.Repeat("A", 43)
			f.ChallengeSent = true
		}, []step{{a: good, want: challenge.SessionInvalid}}, ""},
		{"redirect to web", "records:export", nil, []step{{a: good, want: challenge.RedirectToWeb}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh AS per case: failures count per identity across sessions,
			// and a locked identity looks exactly like a mismatch.
			s := newRealStack(t, nil)
			c, d := s.client(t, nil)
			f, err := c.NewFlow(d, tt.scope, "call-ref-"+strings.ReplaceAll(tt.name, " ", "-"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.prepare != nil {
				tt.prepare(f)
			}
			res := runSteps(t, s, c, f, tt.steps)
			if res.Outcome != challenge.Code {
				if res.Err == nil {
					t.Fatal("non-code outcome without the wire error")
				}
				return
			}
			tok, err := c.Redeem(context.Background(), f, res.Code)
			if err != nil {
				t.Fatal(err)
			}
			claims := s.verifyAccessToken(t, d, tok)
			if claims["acr"] != tt.acr || claims["client_id"] != ivrID || claims["sub"] != "pt-0001" {
				t.Fatalf("claims %v", claims)
			}
			if _, err := c.Redeem(context.Background(), f, res.Code); !isOAuth(err, challenge.ErrInvalidGrant) {
				t.Fatalf("second redemption: %v", err)
			}
		})
	}
}

func isOAuth(err error, code string) bool {
	var ce *challenge.Error
	return errors.As(err, &ce) && ce.ErrorResponse.Error == code
}

func TestRealAS_RefreshRevokeStepUp(t *testing.T) {
	s := newRealStack(t, nil)
	c, d := s.client(t, nil)
	ctx := context.Background()
	f, _ := c.NewFlow(d, "", "call-ref-stepup")
	res := runSteps(t, s, c, f, []step{{a: challenge.Answers{Name: maria, Birthdate: mariaDOB, SSNLast4: mariaSSN, CallerPhone: mariaTel, StirVerstat: stirA}, want: challenge.Code}})
	tok, err := c.Redeem(ctx, f, res.Code)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Scope != "appointments:read" || tok.RefreshToken == "" || f.AuthSession == "" {
		t.Fatalf("token %v, auth_session kept %v", tok, f.AuthSession != "")
	}
	nt, err := c.Refresh(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if nt.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh token not rotated")
	}
	// The resource server wants kba-otp for medications.
	scope, acr, _, ok := c.StepUp(f, `Bearer error="insufficient_user_authentication", acr_values="urn:voiceauth:acr:kba-otp", scope="medications:read"`)
	if !ok || scope != "appointments:read medications:read" || acr != challenge.ACRKBAOTP {
		t.Fatalf("step-up %q %q %v", scope, acr, ok)
	}
	res = runSteps(t, s, c, f, []step{{want: challenge.NeedOTP}, {otp: true, want: challenge.Code}})
	up, err := c.Redeem(ctx, f, res.Code)
	if err != nil {
		t.Fatal(err)
	}
	claims := s.verifyAccessToken(t, d, up)
	if claims["acr"] != challenge.ACRKBAOTP || !strings.Contains(up.Scope, "medications:read") {
		t.Fatalf("stepped-up token: %v scope %q", claims, up.Scope)
	}
	if err := c.Revoke(ctx, nt); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx, nt); !isOAuth(err, challenge.ErrInvalidGrant) {
		t.Fatalf("refresh after revoke: %v", err)
	}
}

func TestRealAS_PrivateKeyJWT(t *testing.T) {
	s := newRealStack(t, nil)
	c, d := s.client(t, func(cfg *challenge.Config) {
		cfg.ClientID, cfg.ClientSecret, cfg.PrivateKey = "pkjwt-client", "", s.pkKey
	})
	f, _ := c.NewFlow(d, "", "call-ref-pk")
	res := runSteps(t, s, c, f, []step{{a: challenge.Answers{Name: maria, Birthdate: mariaDOB, SSNLast4: mariaSSN, CallerPhone: mariaTel, StirVerstat: stirA}, want: challenge.Code}})
	tok, err := c.Redeem(context.Background(), f, res.Code)
	if err != nil {
		t.Fatal(err)
	}
	if s.verifyAccessToken(t, d, tok)["client_id"] != "pkjwt-client" {
		t.Fatal("wrong client_id")
	}
	// A wrong secret is invalid_client: a TransportFailure outcome carrying the code.
	bad, _ := s.client(t, func(cfg *challenge.Config) { cfg.ClientSecret = "wrong" })
	f2, _ := bad.NewFlow(d, "", "call-ref-bad")
	r2, err := bad.Submit(context.Background(), f2, challenge.Answers{Name: maria})
	if r2.Outcome != challenge.TransportFailure || !isOAuth(err, challenge.ErrInvalidClient) {
		t.Fatalf("%v %v", r2.Outcome, err)
	}
}

func TestRealAS_Exchange(t *testing.T) {
	s := newRealStack(t, nil)
	c, d := s.client(t, func(cfg *challenge.Config) {
		cfg.ClientID, cfg.ClientSecret = "host-app", "host-secret-0123456789abcdef"
	})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.idpKey}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	// A subject token names this AS as its audience and has a jti (issue 14).
	subject, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: idpIssuer, Subject: "pt-0001", Audience: jwt.Audience{s.asURL},
		ID: "idp-jti-1", Expiry: jwt.NewNumericDate(time.Now().Add(5 * time.Minute)), IssuedAt: jwt.NewNumericDate(time.Now())}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	// The client sends audience = the AS issuer beside resource (the ID-JAG
	// convention); the AS must take that audience as naming itself, not as
	// a second target (invalid_target).
	tok, err := c.Exchange(context.Background(), d, subject, challenge.TokenTypeJWT, "appointments:read")
	if err != nil {
		t.Fatal(err)
	}
	if tok.IssuedTokenType != challenge.TokenTypeAccessToken || s.verifyAccessToken(t, d, tok)["sub"] != "pt-0001" {
		t.Fatalf("%v", tok)
	}
}

// benchTB adapts *testing.B's Fatal/TempDir/Cleanup (it already has them).
var _ tb = (*testing.B)(nil)

// BenchmarkFlowRealAS: discovery (cached), one challenge POST with all
// answers, and the code redemption against the reference AS backed by
// SQLite: what one authenticated call costs end to end, minus the MCP call.
func BenchmarkFlowRealAS(b *testing.B) {
	s := newRealStack(b, nil)
	c, d := s.client(b, nil)
	ctx := context.Background()
	a := challenge.Answers{Name: maria, Birthdate: mariaDOB, SSNLast4: mariaSSN, CallerPhone: mariaTel, StirVerstat: stirA}
	b.ReportAllocs()
	for b.Loop() {
		f, _ := c.NewFlow(d, "", "call-ref-bench")
		res, err := c.Submit(ctx, f, a)
		if err != nil || res.Outcome != challenge.Code {
			b.Fatal(res.Outcome, err)
		}
		if _, err := c.Redeem(ctx, f, res.Code); err != nil {
			b.Fatal(err)
		}
	}
}
