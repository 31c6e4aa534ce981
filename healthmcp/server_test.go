package healthmcp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/voiceauth/voiceauth/healthmcp"
	"github.com/voiceauth/voiceauth/mcpclient"
	"github.com/voiceauth/voiceauth/mcpidentity"
	"github.com/voiceauth/voiceauth/session"
)

const issuer = "http://127.0.0.1:8081"

var fixedNow = time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)

func clock() time.Time { return fixedNow }

// auditLog is the real SQLite session store; all lists its audit trail.
type auditLog struct {
	session.Store
}

func newAuditLog(t testing.TB) *auditLog {
	t.Helper()
	sealer, err := session.NewSealer(map[uint32][]byte{1: make([]byte, 32)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := session.Open(context.Background(), filepath.Join(t.TempDir(), "voiceauth.db"), session.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &auditLog{Store: st}
}

func (a *auditLog) all() []session.AuditEvent {
	ev, err := a.ListAudit(context.Background(), session.AuditFilter{})
	if err != nil {
		panic(err)
	}
	return ev
}

// stack is one healthmcp server plus a JWKS server and an ES256 signing key.
type stack struct {
	url      string // resource
	prm      string
	signer   jose.Signer
	key      *ecdsa.PrivateKey
	audit    *auditLog
	identity jose.JSONWebKey
	logKey   []byte
	jwksURL  string
}

func newStack(t testing.TB) *stack {
	t.Helper()
	return newStackOn(t, newAuditLog(t))
}

// newStackOn is newStack on a given store (the PostgreSQL runs).
func newStackOn(t testing.TB, store *auditLog) *stack {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key.Public(), KeyID: "as-1", Algorithm: "ES256", Use: "sig"}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	}))
	t.Cleanup(jwks.Close)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "as-1"))
	if err != nil {
		t.Fatal(err)
	}
	idKey, err := mcpidentity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	st := &stack{url: "http://" + hs.Listener.Addr().String() + "/mcp", signer: signer, key: key, audit: store,
		identity: idKey, logKey: []byte("test-log-key"), jwksURL: jwks.URL}
	srv, err := healthmcp.New(healthmcp.Config{Resource: st.url, Issuer: issuer, JWKSURL: jwks.URL, IdentityKey: idKey,
		Store: st.audit, LogKey: st.logKey, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	st.prm = srv.PRMURL()
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(hs.Close)
	return st
}

type tokenOpts struct {
	sub, scope, acr, aud, iss string
	jti                       string // "" = a random one
	exp                       time.Time
	noExp                     bool
}

func (st *stack) mint(t testing.TB, o tokenOpts) string {
	t.Helper()
	if o.aud == "" {
		o.aud = st.url
	}
	if o.iss == "" {
		o.iss = issuer
	}
	if o.exp.IsZero() {
		// Valid by the server's fixed clock and by the wall clock (the SDK's
		// own expiry check uses time.Now).
		o.exp = later(time.Now(), fixedNow).Add(10 * time.Minute)
	}
	if o.jti == "" {
		o.jti = rand.Text()
	}
	c := map[string]any{"iss": o.iss, "aud": o.aud, "sub": o.sub, "scope": o.scope, "acr": o.acr,
		"iat": fixedNow.Add(-time.Minute).Unix(), "client_id": "voiceauth-ivr", "jti": o.jti}
	if !o.noExp {
		c["exp"] = o.exp.Unix()
	}
	tok, err := jwt.Signed(st.signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (st *stack) mintClaims(t testing.TB, c map[string]any) string {
	t.Helper()
	tok, err := jwt.Signed(st.signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

const allScopes = "appointments:read medications:read prescriptions:refill"

// tokens is a caller's token source: Renew hands out the next token.
type tokens struct {
	mu     sync.Mutex
	list   []string
	renews []mcpclient.AuthChallenge
}

func (s *tokens) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list[0], nil
}

var errNeedOTP = errors.New("caller must do OTP")

func (s *tokens) Renew(_ context.Context, ch *mcpclient.AuthChallenge) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renews = append(s.renews, *ch)
	if len(s.list) < 2 {
		return "", errNeedOTP
	}
	s.list = s.list[1:]
	return s.list[0], nil
}

func connect(t testing.TB, st *stack, ts mcpclient.TokenSource) *mcpclient.Session {
	t.Helper()
	cl := mcpclient.New(mcpclient.Config{Pins: newPins(), Now: clock, Policy: mcpclient.Policy{Mode: mcpclient.PolicyPinned, RequireExtSignature: true}})
	s, err := cl.Connect(context.Background(), st.url, ts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type pins struct {
	mu sync.Mutex
	m  map[string]mcpclient.Pin
}

func newPins() *pins { return &pins{m: map[string]mcpclient.Pin{}} }
func (p *pins) GetPin(_ context.Context, s string) (*mcpclient.Pin, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[s]
	if !ok {
		return nil, mcpclient.ErrNoPin
	}
	return &v, nil
}
func (p *pins) PutPin(_ context.Context, v *mcpclient.Pin) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[v.Server] = *v
	return nil
}

func structured(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %v", res.Content)
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestToolsEndToEnd(t *testing.T) {
	st := newStack(t)
	s := connect(t, st, &tokens{list: []string{st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBAOTP})}})
	var names []string
	for _, tl := range s.Tools() {
		names = append(names, tl.Name)
	}
	if got := strings.Join(names, ","); got != "list_appointments,list_medications,request_refill" {
		t.Fatalf("verified tools %q", got)
	}
	ctx := t.Context()
	tests := []struct {
		tool    string
		args    map[string]any
		want    string // structuredContent JSON, or the error text when isError
		isError bool
	}{
		{"list_appointments", nil, `{"appointments":[{"clinician":"Dr. Lee","department":"Cardiology","id":"ap-1","location":"Main Street Clinic","start":"2026-11-27T09:30:00-05:00"},{"clinician":"Dr. Patel","department":"Primary Care","id":"ap-2","location":"Riverside Health Center","start":"2026-12-10T14:00:00-05:00"}]}`, false},
		{"list_medications", nil, `{"medications":[{"dose":"10 mg once daily","id":"rx-1","name":"Lisinopril","refillable":true,"refills_left":2},{"dose":"20 mg at bedtime","id":"rx-2","name":"Atorvastatin","refillable":false,"refills_left":0},{"dose":"500 mg three times daily","id":"rx-3","name":"Amoxicillin","refillable":false,"refills_left":0}]}`, false},
		{"request_refill", map[string]any{"medication_id": "rx-1"}, `{"medication":"Lisinopril","ready_on":"2026-11-27","status":"requested"}`, false},
		{"request_refill", map[string]any{"medication_id": "rx-2"}, "not refillable", true},
		{"request_refill", map[string]any{"medication_id": "rx-9"}, "medication not found", true},
		{"request_refill", map[string]any{}, "medication_id is required", true},
	}
	for _, tc := range tests {
		res, err := s.CallTool(ctx, tc.tool, tc.args)
		if err != nil {
			t.Fatalf("%s: %v", tc.tool, err)
		}
		if tc.isError {
			if !res.IsError || res.Content[0].(*mcp.TextContent).Text != tc.want {
				t.Errorf("%s %v: got %+v, want error %q", tc.tool, tc.args, res, tc.want)
			}
			continue
		}
		// Re-encode through a map so key order is canonical.
		var m any
		_ = json.Unmarshal([]byte(structured(t, res)), &m)
		got, _ := json.Marshal(m)
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.tool, got, tc.want)
		}
	}
}

// rawCall posts one tools/call without an MCP session: the authorization
// middleware answers before the SDK would.
func rawCall(t *testing.T, st *stack, token, tool string, args map[string]any) *http.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args}})
	req, _ := http.NewRequest(http.MethodPost, st.url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestHTTPChallenges(t *testing.T) {
	st := newStack(t)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forger, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: otherKey},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "as-1"))
	forged, _ := jwt.Signed(forger).Claims(map[string]any{"iss": issuer, "aud": st.url, "sub": "pt-0001", "scope": allScopes,
		"acr": healthmcp.ACRKBAOTP, "exp": time.Now().Add(time.Hour).Unix()}).Serialize()
	plainJWT, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: st.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "as-1"))
	idToken, _ := jwt.Signed(plainJWT).Claims(map[string]any{"iss": issuer, "aud": st.url, "sub": "pt-0001", "scope": allScopes,
		"exp": time.Now().Add(time.Hour).Unix()}).Serialize()
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "as-1"))
	hsTok, _ := jwt.Signed(hs).Claims(map[string]any{"iss": issuer, "aud": st.url, "sub": "pt-0001", "scope": allScopes,
		"exp": time.Now().Add(time.Hour).Unix()}).Serialize()

	good := func(scope, acr string) string {
		return st.mint(t, tokenOpts{sub: "pt-0001", scope: scope, acr: acr})
	}
	prm := `resource_metadata="` + st.prm + `"`
	tests := []struct {
		name   string
		token  string
		tool   string
		args   map[string]any
		status int
		want   []string // substrings of WWW-Authenticate
		audit  string   // reason recorded, "" = none
	}{
		{"no token", "", "list_appointments", nil, 401, []string{prm, `scope="appointments:read"`}, ""},
		{"wrong audience", st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, aud: "http://127.0.0.1:9999/mcp"}), "list_appointments", nil, 401, []string{`error="invalid_token"`, prm}, ""},
		{"audience with trailing slash", st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, aud: st.url + "/"}), "list_appointments", nil, 401, []string{`error="invalid_token"`}, ""},
		{"wrong issuer", st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, iss: "http://evil"}), "list_appointments", nil, 401, []string{`error="invalid_token"`}, ""},
		{"expired", st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, exp: fixedNow.Add(-time.Hour)}), "list_appointments", nil, 401, []string{`error="invalid_token"`}, ""},
		{"no exp", st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, noExp: true}), "list_appointments", nil, 401, []string{`error="invalid_token"`}, ""},
		{"no sub", st.mint(t, tokenOpts{scope: allScopes}), "list_appointments", nil, 401, []string{`error="invalid_token"`}, ""},
		{"bad signature", forged, "list_appointments", nil, 401, []string{`error="invalid_token"`}, ""},
		{"typ JWT", idToken, "list_appointments", nil, 401, []string{`error="invalid_token"`}, ""},
		{"HS256", hsTok, "list_appointments", nil, 401, []string{`error="invalid_token"`}, ""},
		{"garbage", "not.a.jwt", "list_appointments", nil, 401, []string{`error="invalid_token"`}, ""},
		{"no scope at all", good("openid", healthmcp.ACRKBA), "list_appointments", nil, 403, []string{`error="insufficient_scope"`, `scope="appointments:read"`}, "no_scope"},
		{"needs medications scope", good("appointments:read", healthmcp.ACRKBAOTP), "list_medications", nil, 403, []string{`error="insufficient_scope"`, `scope="medications:read"`, prm}, "insufficient_scope"},
		{"needs refill scope", good("appointments:read medications:read", healthmcp.ACRKBAOTP), "request_refill", map[string]any{"medication_id": "rx-1"}, 403, []string{`scope="prescriptions:refill"`}, "insufficient_scope"},
		{"acr too low for refill", good(allScopes, healthmcp.ACRKBA), "request_refill", map[string]any{"medication_id": "rx-1"}, 401, []string{`error="insufficient_user_authentication"`, `acr_values="urn:voiceauth:acr:kba-otp"`, prm}, "acr_too_low"},
		{"acr too low for medications", good(allScopes, healthmcp.ACRKBA), "list_medications", nil, 401, []string{`error="insufficient_user_authentication"`}, "acr_too_low"},
		{"no acr", good(allScopes, ""), "request_refill", map[string]any{"medication_id": "rx-1"}, 401, []string{`error="insufficient_user_authentication"`}, "acr_too_low"},
		{"cross-patient argument", good(allScopes, healthmcp.ACRKBAOTP), "list_appointments", map[string]any{"patient_id": "pt-0002"}, 403, []string{`error="access_denied"`}, "unexpected_argument"},
		{"cross-patient on refill", good(allScopes, healthmcp.ACRKBAOTP), "request_refill", map[string]any{"medication_id": "rx-1", "sub": "pt-0002"}, 403, []string{`error="access_denied"`}, "unexpected_argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(st.audit.all())
			resp := rawCall(t, st, tc.token, tc.tool, tc.args)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			h := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(h, "Bearer ") {
				t.Fatalf("WWW-Authenticate %q", h)
			}
			for _, w := range tc.want {
				if !strings.Contains(h, w) {
					t.Errorf("WWW-Authenticate %q lacks %s", h, w)
				}
			}
			// It must parse with the client's parser, too.
			ch := mcpclient.ParseChallenge(resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
			if ch.ResourceMetadata != st.prm {
				t.Errorf("parsed resource_metadata %q", ch.ResourceMetadata)
			}
			events := st.audit.all()[before:]
			if tc.audit == "" {
				if len(events) != 0 {
					t.Fatalf("unexpected audit %+v", events)
				}
				return
			}
			if len(events) != 1 || events[0].Type != "mcp.denied" || events[0].Detail["reason"] != tc.audit {
				t.Fatalf("audit %+v, want one mcp.denied/%s", events, tc.audit)
			}
			if s := events[0].Subject; s != session.Pseudonym(st.logKey, "patient", "pt-0001") {
				t.Fatalf("audit subject %q is not the patient's pseudonym", s)
			}
		})
	}
}

func TestPRM(t *testing.T) {
	st := newStack(t)
	if !strings.HasSuffix(st.prm, "/.well-known/oauth-protected-resource/mcp") {
		t.Fatalf("PRM URL %s", st.prm)
	}
	resp, err := http.Get(st.prm)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&prm); err != nil {
		t.Fatal(err)
	}
	if prm.Resource != st.url || len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != issuer || len(prm.ScopesSupported) != 3 {
		t.Fatalf("PRM %+v", prm)
	}
}

// TestStepUpRenew: a kba token calls request_refill, the server answers
// 401 insufficient_user_authentication, the token source steps up, the call
// is retried and succeeds; without a stepped-up token the adapter's error
// comes back wrapped.
func TestStepUpRenew(t *testing.T) {
	st := newStack(t)
	kba := st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBA})
	otp := st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBAOTP})

	ts := &tokens{list: []string{kba, otp}}
	s := connect(t, st, ts)
	res, err := s.CallTool(t.Context(), "request_refill", map[string]any{"medication_id": "rx-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := structured(t, res); !strings.Contains(got, `"status":"requested"`) {
		t.Fatalf("result %s", got)
	}
	if len(ts.renews) != 1 || ts.renews[0].Error != "insufficient_user_authentication" || ts.renews[0].ACRValues != healthmcp.ACRKBAOTP {
		t.Fatalf("renewals %+v", ts.renews)
	}

	landline := &tokens{list: []string{st.mint(t, tokenOpts{sub: "pt-0007", scope: allScopes, acr: healthmcp.ACRKBA})}}
	s2 := connect(t, st, landline)
	_, err = s2.CallTool(t.Context(), "request_refill", map[string]any{"medication_id": "rx-1"})
	var ae *mcpclient.AuthError
	if !errors.As(err, &ae) || !errors.Is(err, errNeedOTP) || ae.Challenge.Error != "insufficient_user_authentication" {
		t.Fatalf("err %v, want AuthError wrapping errNeedOTP", err)
	}
	// list_appointments still works on the same session (kba suffices).
	if _, err := s2.CallTool(t.Context(), "list_appointments", nil); err != nil {
		t.Fatal(err)
	}
}

// TestCrossPatient: a token for patient B only ever sees B's records, and a
// patient argument is refused with 403 and audited.
func TestCrossPatient(t *testing.T) {
	st := newStack(t)
	s := connect(t, st, &tokens{list: []string{st.mint(t, tokenOpts{sub: "pt-0002", scope: allScopes, acr: healthmcp.ACRKBAOTP})}})
	res, err := s.CallTool(t.Context(), "list_medications", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := structured(t, res); strings.Contains(got, "Lisinopril") || !strings.Contains(got, "Metformin") {
		t.Fatalf("pt-0002 saw %s", got)
	}
	for _, arg := range []string{"patient_id", "sub", "mrn"} {
		_, err = s.CallTool(t.Context(), "list_medications", map[string]any{arg: "pt-0001"})
		var ae *mcpclient.AuthError
		if !errors.As(err, &ae) || ae.Challenge.Status != 403 {
			t.Fatalf("%s: err %v, want 403", arg, err)
		}
	}
	var ev []session.AuditEvent
	for _, e := range st.audit.all() {
		if e.Type == "mcp.denied" {
			ev = append(ev, e)
		}
	}
	if len(ev) != 3 || ev[0].Detail["tool"] != "list_medications" || ev[0].Actor != "healthmcp" {
		t.Fatalf("audit %+v", ev)
	}
	// The refill of another patient's medication id only ever resolves in
	// the caller's own record.
	res, err = s.CallTool(t.Context(), "request_refill", map[string]any{"medication_id": "rx-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := structured(t, res); !strings.Contains(got, "Metformin") {
		t.Fatalf("refill resolved outside the caller's record: %s", got)
	}
}

func TestRecords(t *testing.T) {
	for i := 1; i <= 7; i++ {
		id := "pt-000" + string(rune('0'+i))
		r, ok := healthmcp.RecordFor(id, fixedNow, nil)
		if !ok {
			t.Fatalf("%s: no record", id)
		}
		wantAppts, minMeds, maxMeds := 1, 1, 2
		if id == "pt-0001" {
			wantAppts, minMeds, maxMeds = 2, 3, 3
			refillable := 0
			for _, m := range r.Medications {
				if m.Refillable {
					refillable++
				}
			}
			if refillable != 1 {
				t.Errorf("pt-0001 refillable %d", refillable)
			}
		}
		if len(r.Appointments) != wantAppts || len(r.Medications) < minMeds || len(r.Medications) > maxMeds {
			t.Errorf("%s: %d appointments, %d medications", id, len(r.Appointments), len(r.Medications))
		}
	}
	a, _ := healthmcp.RecordFor("pt-g000042", fixedNow, nil)
	b, _ := healthmcp.RecordFor("pt-g000042", fixedNow, nil)
	c, _ := healthmcp.RecordFor("pt-g000043", fixedNow, nil)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	jc, _ := json.Marshal(c)
	if string(ja) != string(jb) || string(ja) == string(jc) || len(a.Appointments) != 1 {
		t.Fatalf("generated records not deterministic/distinct: %s %s", ja, jc)
	}
	if _, ok := healthmcp.RecordFor("pt-9999", fixedNow, nil); ok {
		t.Fatal("unknown id has a record")
	}
}

func TestServerKeyRotationAccepted(t *testing.T) {
	// A server restarted with a new key and a rotation record from the old
	// one is accepted by a client that pinned the old key; without the record
	// it is refused.
	st := newStack(t)
	p := newPins()
	tok := &tokens{list: []string{st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBA})}}
	s, err := mcpclient.New(mcpclient.Config{Pins: p, Now: clock}).Connect(t.Context(), st.url, tok)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	pinned, _ := p.GetPin(t.Context(), st.url)

	next, _ := mcpidentity.GenerateKey()
	rot, _ := mcpidentity.SignRotation(st.identity, next, fixedNow)
	rotJSON, _ := json.Marshal(rot)
	for _, tc := range []struct {
		name string
		att  []json.RawMessage
		ok   bool
	}{{"without record", nil, false}, {"with record", []json.RawMessage{rotJSON}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			hs := httptest.NewUnstartedServer(nil)
			url := "http://" + hs.Listener.Addr().String() + "/mcp"
			srv, err := healthmcp.New(healthmcp.Config{Resource: url, Issuer: issuer, JWKSURL: st.jwksURL,
				IdentityKey: next, Attestations: tc.att, Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			hs.Config.Handler = srv.Handler()
			hs.Start()
			defer hs.Close()
			old := *pinned
			old.Server = url
			_ = p.PutPin(t.Context(), &old)
			tok := &tokens{list: []string{st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBA, aud: url})}}
			s, err := mcpclient.New(mcpclient.Config{Pins: p, Now: clock}).Connect(t.Context(), url, tok)
			if !tc.ok {
				if !errors.Is(err, mcpclient.ErrIdentity) {
					t.Fatalf("err %v, want ErrIdentity", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("rotation refused: %v", err)
			}
			defer s.Close()
			if len(s.Tools()) != 3 {
				t.Fatalf("tools after rotation: %d", len(s.Tools()))
			}
			if now, _ := p.GetPin(t.Context(), url); now.KeyID != next.KeyID {
				t.Fatal("pin not rotated")
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	id, _ := mcpidentity.GenerateKey()
	tests := []healthmcp.Config{
		{Resource: "http://127.0.0.1:8082", Issuer: issuer, JWKSURL: "http://x/jwks", IdentityKey: id},
		{Resource: "http://127.0.0.1:8082/mcp#f", Issuer: issuer, JWKSURL: "http://x/jwks", IdentityKey: id},
		{Resource: "/mcp", Issuer: issuer, JWKSURL: "http://x/jwks", IdentityKey: id},
		{Resource: "http://127.0.0.1:8082/mcp", JWKSURL: "http://x/jwks", IdentityKey: id},
		{Resource: "http://127.0.0.1:8082/mcp", Issuer: issuer, JWKSURL: "http://x/jwks"},
	}
	for i, cfg := range tests {
		if _, err := healthmcp.New(cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
}
