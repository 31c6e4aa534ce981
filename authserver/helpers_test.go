package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/session"
)

const (
	testResource = "http://127.0.0.1:8082/mcp"
	ivrID        = "voiceauth-ivr"
	ivrSecret    = "ivr-secret-0123456789abcdef0123456789abcdef"
	stirA        = "TN-Validation-Passed-A"
)

// clock is an injectable clock shared by the AS and its store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      testing.TB
	srv    *Server
	ts     *httptest.Server
	st     session.Store
	clk    *clock
	outbox string
	pkKey  jose.JSONWebKey // private key of the private_key_jwt client
	base   string          // when set, requests go here instead of ts
}

func openStore(t testing.TB, clk func() time.Time) session.Store {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := session.NewSealer(map[uint32][]byte{1: key}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := session.Open(context.Background(), filepath.Join(t.TempDir(), "as.db"), session.Options{Sealer: sealer, Now: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var testPepper = []byte("pepper-pepper-pepper-pepper-0001")

// newEnv starts a real AS over loopback HTTP with a SQLite store seeded with
// the demo patients. mod may change the config before New.
func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clk: &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}}
	e.st = openStore(t, e.clk.Now)
	if err := Seed(context.Background(), e.st, testPepper, DemoPatients()); err != nil {
		t.Fatal(err)
	}
	e.outbox = filepath.Join(t.TempDir(), "otp-outbox.jsonl")
	sk, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e.pkKey = jose.JSONWebKey{Key: pk, KeyID: "client-key-1", Algorithm: "ES256"}
	e.ts = httptest.NewUnstartedServer(nil)
	cfg := Config{
		Issuer: "http://" + e.ts.Listener.Addr().String(),
		Store:  e.st, Pepper: testPepper, LogKey: []byte("log-key"),
		SigningKeys: []jose.JSONWebKey{sk},
		Clients: []Client{
			{ID: ivrID, Secret: ivrSecret, FirstParty: true},
			{ID: "third-party", Secret: "third-party-secret", FirstParty: false},
			{ID: "pkjwt-client", JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{e.pkKey.Public()}}, FirstParty: true},
			{ID: "host-app", Secret: "host-secret", TokenExchange: true},
		},
		Resources: []string{testResource},
		OTP:       &OutboxChannel{Path: e.outbox, Store: e.st, Now: e.clk.Now},
		Now:       e.clk.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	e.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.ts.Config.Handler = e.srv.Handler()
	e.ts.Start()
	t.Cleanup(e.ts.Close)
	return e
}

type reply struct {
	status int
	header http.Header
	body   []byte
	err    challenge.ErrorResponse
}

func (r reply) json(v any) error { return json.Unmarshal(r.body, v) }

// post sends a form with HTTP Basic as the IVR client unless auth says otherwise.
func (e *env) post(path string, form url.Values, auth ...func(*http.Request)) reply {
	e.t.Helper()
	base := e.base
	if base == "" {
		base = e.ts.URL
	}
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	custom := false
	for _, a := range auth {
		if a != nil {
			a(req)
			custom = true
		}
	}
	if !custom {
		req.SetBasicAuth(ivrID, ivrSecret)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) reply {
	e.t.Helper()
	hc := http.DefaultClient
	if e.ts != nil {
		hc = e.ts.Client()
	}
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: b}
	json.Unmarshal(b, &r.err)
	return r
}

func basic(id, secret string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(id, secret) }
}

func noAuth(*http.Request) {}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, chal string) {
	v := randomToken(32)
	return v, pkceS256(v)
}

// kba builds a first challenge request.
func kba(chal, name, dob, ssn, phone, stir, scope string) url.Values {
	f := url.Values{"response_type": {"code"}, "client_id": {ivrID}, "resource": {testResource},
		"code_challenge": {chal}, "code_challenge_method": {"S256"}, "call_ref": {"call-ref-1"}}
	set := func(k, v string) {
		if v != "" {
			f.Set(k, v)
		}
	}
	set("kba_name", name)
	set("kba_birthdate", dob)
	set("kba_ssn_last4", ssn)
	set("caller_phone", phone)
	set("stir_verstat", stir)
	set("scope", scope)
	return f
}

// follow builds a follow-up request on an auth_session.
func follow(sess string, kv ...string) url.Values {
	f := url.Values{"auth_session": {sess}, "client_id": {ivrID}, "call_ref": {"call-ref-1"}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// redeem exchanges a code at the token endpoint.
func (e *env) redeem(code, verifier string) reply {
	e.t.Helper()
	return e.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "resource": {testResource}})
}

// demo returns a demo patient by id.
func demo(id string) DemoPatient {
	for _, p := range DemoPatients() {
		if p.ID == id {
			return p
		}
	}
	panic(id)
}

// maskSession replaces the auth_session value so bodies of different
// sessions can be compared byte for byte.
func maskSession(b []byte, sess string) string {
	return strings.Replace(string(b), sess, "SESSION", 1)
}
