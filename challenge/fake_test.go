package challenge

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The fake servers below speak the real wire format of the voice KBA
// profile; the real reference AS is exercised in authserver_test.go.

const (
	testClientID     = "voiceauth-ivr"
	testClientSecret = "s3cret-Value-with/odd+chars"
	goodName         = "Maria Garcia"
	goodDOB          = "1985-03-14"
	goodSSN          = "4821"
	goodOTP          = "604153"
)

type recorded struct {
	Method, Path string
	Header       http.Header
	Body         string
}

// fakeAS is an authorization server for the profile that rotates
// auth_session on every response and rejects superseded values.
type fakeAS struct {
	t      testing.TB
	srv    *httptest.Server
	Issuer string

	mu       sync.Mutex
	Meta     ASMetadata
	MetaHook func(w http.ResponseWriter, r *http.Request) bool // true: handled
	// ChallengeHook, TokenHook: if set and returns true the request is handled.
	ChallengeHook func(w http.ResponseWriter, r *http.Request, form url.Values) bool
	TokenHook     func(w http.ResponseWriter, r *http.Request, form url.Values) bool
	Audience      string // aud of issued tokens; default: the requested resource
	AssertionKey  *jose.JSONWebKey
	sessions      map[string]*fakeSession
	codes         map[string]fakeCode
	refresh       map[string]string // refresh token → resource
	Revoked       []string
	Requests      []recorded
}

type fakeSession struct {
	challenge, resource, scope, acr string
	name, dob, ssn                  string
	kbaOK                           bool
	kbaFails, otpFails              int
	otpOK                           bool
}

type fakeCode struct {
	challenge, resource, scope string
	s                          *fakeSession
}

func newFakeAS(t testing.TB) *fakeAS {
	t.Helper()
	a := &fakeAS{t: t, sessions: map[string]*fakeSession{}, codes: map[string]fakeCode{}, refresh: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", a.metadata)
	mux.HandleFunc("POST /challenge", a.challenge)
	mux.HandleFunc("POST /token", a.token)
	mux.HandleFunc("POST /revoke", a.revoke)
	a.srv = httptest.NewServer(a.record(mux))
	t.Cleanup(a.srv.Close)
	a.Issuer = a.srv.URL
	a.Meta = ASMetadata{
		Issuer:                            a.Issuer,
		AuthorizationChallengeEndpoint:    a.Issuer + "/challenge",
		TokenEndpoint:                     a.Issuer + "/token",
		RevocationEndpoint:                a.Issuer + "/revoke",
		CodeChallengeMethodsSupported:     []string{"S256"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token", GrantTypeTokenExchange},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "private_key_jwt"},
		KBAFieldsSupported:                []string{FieldName, FieldBirthdate, FieldSSNLast4},
	}
	return a
}

func (a *fakeAS) record(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		a.mu.Lock()
		a.Requests = append(a.Requests, recorded{r.Method, r.URL.Path, r.Header.Clone(), string(body)})
		a.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (a *fakeAS) requests() []recorded {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.Requests)
}

func (a *fakeAS) metadata(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	hook, meta := a.MetaHook, a.Meta
	a.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	writeMetaJSON(w, meta)
}

// writeMetaJSON serves metadata without Cache-Control (cacheable by default).
func writeMetaJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthErr(w http.ResponseWriter, status int, er ErrorResponse) { writeJSON(w, status, er) }

// authClient checks client_secret_basic or private_key_jwt.
func (a *fakeAS) authClient(r *http.Request, form url.Values) bool {
	if a.AssertionKey != nil {
		if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			return false
		}
		tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
		if err != nil {
			return false
		}
		var cl jwt.Claims
		if err := tok.Claims(a.AssertionKey.Public().Key, &cl); err != nil {
			return false
		}
		return cl.Validate(jwt.Expected{Issuer: testClientID, Subject: testClientID, AnyAudience: jwt.Audience{a.Issuer}, Time: time.Now()}) == nil
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		return false
	}
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	return id == testClientID && secret == testClientSecret
}

func (a *fakeAS) newSession(s *fakeSession) string {
	v := randToken()
	a.sessions[v] = s
	return v
}

var tokCounter struct {
	sync.Mutex
	n int
}

func randToken() string {
	tokCounter.Lock()
	defer tokCounter.Unlock()
	tokCounter.n++
	return fmt.Sprintf("opaque-%06d-%s", tokCounter.n, strings.Repeat("x", 40))
}

func (a *fakeAS) challenge(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	form := r.PostForm
	a.mu.Lock()
	hook := a.ChallengeHook
	a.mu.Unlock()
	if hook != nil && hook(w, r, form) {
		return
	}
	if !a.authClient(r, form) {
		w.Header().Set("WWW-Authenticate", `Basic realm="as"`)
		oauthErr(w, 401, ErrorResponse{Error: ErrInvalidClient})
		return
	}
	if form.Get("response_type") != "code" || form.Get("client_id") != testClientID || form.Get("resource") == "" {
		oauthErr(w, 400, ErrorResponse{Error: ErrInvalidRequest})
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var s *fakeSession
	if v := form.Get(FieldAuthSession); v != "" {
		s = a.sessions[v]
		delete(a.sessions, v) // rotate: the old value is dead either way
		if s == nil {
			oauthErr(w, 400, ErrorResponse{Error: ErrInvalidSession})
			return
		}
	} else {
		if form.Get("code_challenge_method") != "S256" || len(form.Get("code_challenge")) != 43 {
			oauthErr(w, 400, ErrorResponse{Error: ErrInvalidRequest})
			return
		}
		s = &fakeSession{resource: form.Get("resource")}
	}
	if cc := form.Get("code_challenge"); cc != "" {
		s.challenge = cc
	}
	if s.challenge == "" { // one code per code_challenge, as the reference AS
		oauthErr(w, 400, ErrorResponse{Error: ErrInvalidRequest, ErrorDescription: "code_challenge is required for a new code"})
		return
	}
	s.scope = form.Get("scope")
	if v := form.Get("acr_values"); v != "" {
		s.acr = v
	}
	if form.Get(FieldName) == "WEB" {
		oauthErr(w, 400, ErrorResponse{Error: ErrRedirectToWeb})
		return
	}
	for k, dst := range map[string]*string{FieldName: &s.name, FieldBirthdate: &s.dob, FieldSSNLast4: &s.ssn} {
		if v := form.Get(k); v != "" {
			*dst = v
		}
	}
	needOTP := strings.Contains(s.scope, "medications:read") || s.acr == ACRKBAOTP
	if !s.kbaOK {
		var missing []string
		for _, f := range []struct{ k, v string }{{FieldName, s.name}, {FieldBirthdate, s.dob}, {FieldSSNLast4, s.ssn}} {
			if f.v == "" {
				missing = append(missing, f.k)
			}
		}
		if len(missing) > 0 {
			oauthErr(w, 400, ErrorResponse{Error: ErrInsufficientAuthorization, AuthSession: a.newSession(s), KBARequired: missing})
			return
		}
		if s.name != goodName || s.dob != goodDOB || s.ssn != goodSSN {
			s.kbaFails++
			if s.kbaFails >= 2 {
				oauthErr(w, 400, ErrorResponse{Error: ErrAccessDenied})
				return
			}
			s.name, s.dob, s.ssn = "", "", ""
			oauthErr(w, 400, ErrorResponse{Error: ErrInsufficientAuthorization, AuthSession: a.newSession(s),
				KBARequired: []string{FieldName, FieldBirthdate, FieldSSNLast4}, KBARetry: true,
				// A careless AS echoing input: the client must never surface this.
				ErrorDescription: "no match for " + form.Get(FieldName) + " " + form.Get(FieldSSNLast4)})
			return
		}
		s.kbaOK = true
	}
	if needOTP && !s.otpOK {
		switch otp := form.Get(FieldOTP); {
		case otp == "":
			oauthErr(w, 400, ErrorResponse{Error: ErrInsufficientAuthorization, AuthSession: a.newSession(s), OTPRequired: true})
			return
		case otp != goodOTP:
			s.otpFails++
			oauthErr(w, 400, ErrorResponse{Error: ErrInsufficientAuthorization, AuthSession: a.newSession(s), OTPRequired: true, OTPRetry: true})
			return
		}
		s.otpOK = true
	}
	code := randToken()
	a.codes[code] = fakeCode{challenge: s.challenge, resource: s.resource, scope: s.scope, s: s}
	s.challenge = ""
	writeJSON(w, 200, ChallengeSuccess{AuthorizationCode: code})
}

func (a *fakeAS) signedToken(resource, scope string) string {
	aud := resource
	if a.Audience != "" {
		aud = a.Audience
	}
	// Unsigned-looking but JWT-shaped: the client only reads claims.
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"at+jwt"}`))
	cl, _ := json.Marshal(map[string]any{"iss": a.Issuer, "aud": aud, "scope": scope, "sub": "pt-0001", "jti": randToken()})
	return hdr + "." + base64.RawURLEncoding.EncodeToString(cl) + "." + base64.RawURLEncoding.EncodeToString([]byte("sig"))
}

func (a *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	form := r.PostForm
	a.mu.Lock()
	hook := a.TokenHook
	a.mu.Unlock()
	if hook != nil && hook(w, r, form) {
		return
	}
	if !a.authClient(r, form) {
		oauthErr(w, 401, ErrorResponse{Error: ErrInvalidClient})
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var resource, scope, issuedType, authSession string
	switch form.Get("grant_type") {
	case "authorization_code":
		c, ok := a.codes[form.Get("code")]
		delete(a.codes, form.Get("code"))
		sum := sha256.Sum256([]byte(form.Get("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge || form.Get("resource") != c.resource {
			oauthErr(w, 400, ErrorResponse{Error: ErrInvalidGrant})
			return
		}
		resource, scope = c.resource, c.scope
		authSession = a.newSession(c.s) // FiPA: the session stays live for step-up
	case "refresh_token":
		res, ok := a.refresh[form.Get("refresh_token")]
		delete(a.refresh, form.Get("refresh_token"))
		if !ok || form.Get("resource") != res {
			oauthErr(w, 400, ErrorResponse{Error: ErrInvalidGrant})
			return
		}
		resource, scope = res, "appointments:read"
	case GrantTypeTokenExchange:
		if form.Get("subject_token") == "" || form.Get("subject_token_type") == "" || form.Get("audience") != a.Issuer {
			oauthErr(w, 400, ErrorResponse{Error: ErrInvalidRequest})
			return
		}
		resource, scope, issuedType = form.Get("resource"), "appointments:read", TokenTypeAccessToken
	default:
		oauthErr(w, 400, ErrorResponse{Error: ErrUnsupportedGrantType})
		return
	}
	rt := randToken()
	a.refresh[rt] = resource
	writeJSON(w, 200, struct {
		TokenResponse
		AuthSession string `json:"auth_session,omitempty"`
	}{TokenResponse{AccessToken: a.signedToken(resource, scope), TokenType: "Bearer", ExpiresIn: 900,
		RefreshToken: rt, Scope: scope, IssuedTokenType: issuedType}, authSession})
}

func (a *fakeAS) revoke(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	if !a.authClient(r, r.PostForm) {
		oauthErr(w, 401, ErrorResponse{Error: ErrInvalidClient})
		return
	}
	a.mu.Lock()
	a.Revoked = append(a.Revoked, r.PostForm.Get("token"))
	a.mu.Unlock()
	w.WriteHeader(200)
}

// fakeMCP is a protected resource: 401 + resource_metadata for any request
// without a token; PRM at the path-inserted well-known URL.
type fakeMCP struct {
	srv      *httptest.Server
	URL      string // the MCP endpoint
	mu       sync.Mutex
	PRM      ProtectedResourceMetadata
	Header   string // WWW-Authenticate; "" = none
	Requests []recorded
	PRMHook  func(w http.ResponseWriter, r *http.Request) bool
}

func newFakeMCP(t testing.TB, issuer string) *fakeMCP {
	t.Helper()
	m := &fakeMCP{}
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		h := m.Header
		m.mu.Unlock()
		if h != "" {
			w.Header().Set("WWW-Authenticate", h)
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
	prm := func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		hook, p := m.PRMHook, m.PRM
		m.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		writeMetaJSON(w, p)
	}
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", prm)
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		m.Requests = append(m.Requests, recorded{r.Method, r.URL.Path, r.Header.Clone(), string(body)})
		m.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(m.srv.Close)
	m.URL = m.srv.URL + "/mcp"
	m.PRM = ProtectedResourceMetadata{Resource: m.URL, AuthorizationServers: []string{issuer},
		ScopesSupported: []string{"appointments:read", "medications:read", "prescriptions:refill"}}
	m.Header = fmt.Sprintf(`Bearer resource_metadata="%s/.well-known/oauth-protected-resource/mcp", scope="appointments:read"`, m.srv.URL)
	return m
}

func (m *fakeMCP) requests() []recorded {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.Requests)
}

func newTestClient(t *testing.T, mod func(*Config)) *Client {
	cfg := Config{ClientID: testClientID, ClientSecret: testClientSecret, HTTPClient: &http.Client{}}
	if mod != nil {
		mod(&cfg)
	}
	return New(cfg)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// newPRMRoot serves the PRM at the root well-known URL of mcp's server.
func newPRMRoot(t *testing.T, m *fakeMCP) struct{} {
	t.Helper()
	inner := m.srv.Config.Handler
	m.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/oauth-protected-resource" {
			m.mu.Lock()
			m.Requests = append(m.Requests, recorded{r.Method, r.URL.Path, r.Header.Clone(), ""})
			p := m.PRM
			m.mu.Unlock()
			writeJSON(w, 200, p)
			return
		}
		inner.ServeHTTP(w, r)
	})
	return struct{}{}
}

// newMux starts a server whose handler learns its own base URL.
func newMux(t *testing.T, h func(w http.ResponseWriter, r *http.Request, base string)) string {
	t.Helper()
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, base) }))
	base = srv.URL
	t.Cleanup(srv.Close)
	return base
}
