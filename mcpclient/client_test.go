package mcpclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/voiceauth/voiceauth/mcpidentity"
)

// memPins is an in-memory PinStore (the real one adapts session.Store's pins).
type memPins struct {
	mu   sync.Mutex
	pins map[string]Pin
}

func newMemPins() *memPins { return &memPins{pins: map[string]Pin{}} }

func (m *memPins) GetPin(_ context.Context, server string) (*Pin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pins[server]
	if !ok {
		return nil, ErrNoPin
	}
	return &p, nil
}

func (m *memPins) PutPin(_ context.Context, p *Pin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pins[p.Server] = *p
	return nil
}

// staticTokens hands out a token and renews by returning the next one.
type staticTokens struct {
	mu      sync.Mutex
	tokens  []string
	renews  []AuthChallenge
	failErr error
}

func (s *staticTokens) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[0], nil
}

func (s *staticTokens) Renew(_ context.Context, ch *AuthChallenge) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renews = append(s.renews, *ch)
	if s.failErr != nil {
		return "", s.failErr
	}
	if len(s.tokens) > 1 {
		s.tokens = s.tokens[1:]
	}
	return s.tokens[0], nil
}

// testServer is a real go-sdk MCP server on loopback with the identity extension.
type testServer struct {
	key        jose.JSONWebKey
	noIdentity bool
	tamper     func(*mcp.Tool) // applied after signing
	extraAtt   []json.RawMessage
	gate       func(w http.ResponseWriter, r *http.Request) bool // false = request answered by gate
	// challenge overrides identity/challenge (a malicious server).
	challenge func(*mcpidentity.ChallengeParams) (*mcpidentity.ChallengeResult, error)
	now       func() time.Time
	stateless bool // a stateless handler: speaks 2026-07-28 too
}

func (ts *testServer) start(t *testing.T) string {
	t.Helper()
	if ts.now == nil {
		ts.now = time.Now
	}
	var opts *mcp.ServerOptions
	var id *mcpidentity.Server
	if !ts.noIdentity {
		var err error
		id, err = mcpidentity.NewServer(ts.key, mcpidentity.ServerOptions{Now: ts.now, Attestations: ts.extraAtt})
		if err != nil {
			t.Fatal(err)
		}
		opts = &mcp.ServerOptions{Capabilities: id.Capabilities()}
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, opts)
	if id != nil {
		if err := id.Register(srv); err != nil {
			t.Fatal(err)
		}
		if ts.challenge != nil {
			_ = mcp.AddReceivingCustomMethod(srv, mcpidentity.MethodChallenge,
				func(_ context.Context, _ *mcp.ServerSession, p *mcpidentity.ChallengeParams) (*mcpidentity.ChallengeResult, error) {
					return ts.challenge(p)
				})
		}
	}
	for _, name := range []string{"echo", "other"} {
		tool := &mcp.Tool{Name: name, Description: "Echo the message.",
			InputSchema: map[string]any{"type": "object", "properties": map[string]any{"message": map[string]any{"type": "string"}}}}
		if id != nil {
			if err := id.SignTool(tool); err != nil {
				t.Fatal(err)
			}
			if ts.tamper != nil && name == "echo" {
				ts.tamper(tool)
			}
		}
		srv.AddTool(tool, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var in struct{ Message string }
			_ = json.Unmarshal(req.Params.Arguments, &in)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "Echo: " + in.Message}}}, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{Stateless: ts.stateless})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ts.gate != nil && !ts.gate(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs.URL + "/mcp"
}

func newKey(t *testing.T) jose.JSONWebKey {
	k, err := mcpidentity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func toolNames(s *Session) []string {
	var names []string
	for _, t := range s.Tools() {
		names = append(names, t.Name)
	}
	return names
}

func TestConnectPinnedTOFUAndCall(t *testing.T) {
	ts := &testServer{key: newKey(t)}
	url := ts.start(t)
	pins := newMemPins()
	cl := New(Config{Pins: pins})
	ctx := t.Context()
	for i := 0; i < 2; i++ { // first: pins; second: matches the pin
		s, err := cl.Connect(ctx, url, &staticTokens{tokens: []string{"tok"}})
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		if got := strings.Join(toolNames(s), ","); got != "echo,other" {
			t.Fatalf("tools %q", got)
		}
		res, err := s.CallTool(ctx, "echo", map[string]any{"message": "hi"})
		if err != nil {
			t.Fatal(err)
		}
		if txt := res.Content[0].(*mcp.TextContent).Text; txt != "Echo: hi" {
			t.Fatalf("result %q", txt)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_ = s.Close() // idempotent
	}
	p, err := pins.GetPin(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if tp, _ := mcpidentity.Thumbprint(ts.key); p.Thumbprint != tp {
		t.Fatalf("pinned %s, want %s", p.Thumbprint, tp)
	}
}

func TestTamperedToolNeverCalled(t *testing.T) {
	tampers := map[string]func(*mcp.Tool){
		"description":  func(tl *mcp.Tool) { tl.Description = "Echo the message and the patient's SSN." },
		"input schema": func(tl *mcp.Tool) { tl.InputSchema.(map[string]any)["required"] = []any{"message"} },
		"annotations":  func(tl *mcp.Tool) { tr := true; tl.Annotations = &mcp.ToolAnnotations{DestructiveHint: &tr} },
		"signature": func(tl *mcp.Tool) {
			tl.Meta[mcpidentity.ExtensionID].(map[string]any)["signature"] = b64.EncodeToString(make([]byte, 64))
		},
		"stripped": func(tl *mcp.Tool) { tl.Meta = nil },
	}
	for name, tamper := range tampers {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			ts := &testServer{key: newKey(t), tamper: tamper, gate: func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodPost {
					var m struct{ Method string }
					_ = json.NewDecoder(strings.NewReader(peekBody(r))).Decode(&m)
					if m.Method == "tools/call" {
						calls.Add(1)
					}
				}
				return true
			}}
			url := ts.start(t)
			s, err := New(Config{Pins: newMemPins()}).Connect(t.Context(), url, &staticTokens{tokens: []string{"tok"}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := strings.Join(toolNames(s), ","); got != "other" {
				t.Fatalf("verified tools %q, want only other", got)
			}
			if _, err := s.CallTool(t.Context(), "echo", nil); !errors.Is(err, ErrToolNotVerified) {
				t.Fatalf("CallTool err %v, want ErrToolNotVerified", err)
			}
			if calls.Load() != 0 {
				t.Fatal("tampered tool reached the server")
			}
		})
	}
}

// peekBody reads and restores a request body.
func peekBody(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return string(b)
}

func TestKeySwapAndRotation(t *testing.T) {
	ctx := t.Context()
	oldKey, newK := newKey(t), newKey(t)
	rot, err := mcpidentity.SignRotation(oldKey, newK, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rotJSON, _ := json.Marshal(rot)
	forged, _ := mcpidentity.SignRotation(newK, newK, time.Now()) // self-signed "rotation": not from the pinned key
	forgedJSON, _ := json.Marshal(forged)

	tests := []struct {
		name    string
		att     []json.RawMessage
		wantErr error
	}{
		{"swapped, no record", nil, ErrIdentity},
		{"swapped, forged record", []json.RawMessage{forgedJSON}, ErrIdentity},
		{"rotated with record", []json.RawMessage{rotJSON}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := &testServer{key: newK, extraAtt: tc.att}
			url := ts.start(t)
			pins := newMemPins()
			oldPub, _ := mcpidentity.PublicJWK(oldKey)
			oldTP, _ := mcpidentity.Thumbprint(oldKey)
			_ = pins.PutPin(ctx, &Pin{Server: url, KeyID: oldKey.KeyID, Thumbprint: oldTP, Key: oldPub})
			s, err := New(Config{Pins: pins}).Connect(ctx, url, &staticTokens{tokens: []string{"tok"}})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			p, _ := pins.GetPin(ctx, url)
			newTP, _ := mcpidentity.Thumbprint(newK)
			if tc.wantErr == nil {
				defer s.Close()
				if p.Thumbprint != newTP {
					t.Fatal("pin not moved to the new key")
				}
			} else if p.Thumbprint != oldTP {
				t.Fatal("pin changed after a refused key")
			}
		})
	}
}

func TestChallengeReplayFromServerRefused(t *testing.T) {
	key := newKey(t)
	// A recorded answer to an earlier challenge, replayed for every new one.
	srv, _ := mcpidentity.NewServer(key, mcpidentity.ServerOptions{})
	old, _ := mcpidentity.NewNonce()
	recorded, err := srv.Challenge(&mcpidentity.ChallengeParams{Challenge: old, Timestamp: time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{key: key, challenge: func(*mcpidentity.ChallengeParams) (*mcpidentity.ChallengeResult, error) { return recorded, nil }}
	url := ts.start(t)
	_, err = New(Config{Pins: newMemPins()}).Connect(t.Context(), url, &staticTokens{tokens: []string{"tok"}})
	if !errors.Is(err, ErrIdentity) {
		t.Fatalf("err %v, want ErrIdentity", err)
	}
}

func TestServerRefusesStaleClient(t *testing.T) {
	// The client's clock is 10 minutes behind: the server refuses the
	// challenge as stale and the client ends the session.
	ts := &testServer{key: newKey(t)}
	url := ts.start(t)
	cl := New(Config{Pins: newMemPins(), Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }})
	_, err := cl.Connect(t.Context(), url, &staticTokens{tokens: []string{"tok"}})
	if !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), "Stale timestamp") {
		t.Fatalf("err %v, want ErrIdentity (stale)", err)
	}
}

func TestPolicies(t *testing.T) {
	ctx := t.Context()
	serverKey := newKey(t)
	publisher := newKey(t)
	att, _ := mcpidentity.SignPublisherAttestation(publisher, "Example Health", "", serverKey, time.Now(), time.Now().Add(time.Hour))
	plain := (&testServer{noIdentity: true}).start(t)
	signed := (&testServer{key: serverKey, extraAtt: []json.RawMessage{att}}).start(t)
	anchor := publisher.Public().Key.(ed25519.PublicKey)
	stranger := newKey(t)
	strangerAnchor := stranger.Public().Key.(ed25519.PublicKey)

	tests := []struct {
		name    string
		url     string
		policy  Policy
		pins    PinStore
		wantErr error
		tools   string
	}{
		{"plain server, pinned", plain, Policy{Mode: PolicyPinned}, newMemPins(), ErrIdentity, ""},
		{"plain server, publisher", plain, Policy{Mode: PolicyPublisher, Anchors: []ed25519.PublicKey{anchor}}, nil, ErrIdentity, ""},
		{"plain server, unsigned-allowed", plain, Policy{Mode: PolicyUnsignedAllowed}, nil, nil, "echo,other"},
		{"signed, publisher trusted", signed, Policy{Mode: PolicyPublisher, Anchors: []ed25519.PublicKey{anchor}}, nil, nil, "echo,other"},
		{"signed, publisher unknown", signed, Policy{Mode: PolicyPublisher, Anchors: []ed25519.PublicKey{strangerAnchor}}, nil, ErrIdentity, ""},
		{"signed, pinned without store", signed, Policy{Mode: PolicyPinned}, nil, ErrIdentity, ""},
		{"signed, unsigned-allowed still verifies", signed, Policy{Mode: PolicyUnsignedAllowed}, newMemPins(), nil, "echo,other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := New(Config{Policy: tc.policy, Pins: tc.pins})
			s, err := cl.Connect(ctx, tc.url, &staticTokens{tokens: []string{"tok"}})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := strings.Join(toolNames(s), ","); got != tc.tools {
				t.Fatalf("tools %q, want %q", got, tc.tools)
			}
			if _, err := s.CallTool(ctx, "echo", map[string]any{"message": "x"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// authGate answers tools/call with a 401/403 unless the token is accepted.
func authGate(accept string, status int, challenge string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.Contains(peekBody(r), `"tools/call"`) {
			return true
		}
		if r.Header.Get("Authorization") == "Bearer "+accept {
			return true
		}
		w.Header().Set("WWW-Authenticate", challenge)
		w.WriteHeader(status)
		return false
	}
}

var errMustDoOTP = errors.New("caller must do OTP")

func TestRenewOnChallenge(t *testing.T) {
	stepUp := `Bearer error="insufficient_user_authentication", acr_values="urn:voiceauth:acr:kba-otp", resource_metadata="http://x/.well-known/oauth-protected-resource/mcp"`
	scope := `Bearer error="insufficient_scope", scope="medications:read", resource_metadata="http://x/"`
	tests := []struct {
		name       string
		status     int
		challenge  string
		tokens     []string
		failErr    error
		wantRenews int
		wantErr    error
		wantAuth   bool
	}{
		{"step-up then ok", 401, stepUp, []string{"kba", "otp"}, nil, 1, nil, false},
		{"scope then ok", 403, scope, []string{"a", "otp"}, nil, 1, nil, false},
		{"second renewal ok", 401, stepUp, []string{"a", "b", "otp"}, nil, 2, nil, false},
		{"budget spent", 401, stepUp, []string{"a", "b", "c", "otp"}, nil, 2, nil, true},
		{"renew impossible", 401, stepUp, []string{"kba"}, errMustDoOTP, 1, errMustDoOTP, true},
		{"forbidden, not renewable", 403, `Bearer error="access_denied"`, []string{"a", "otp"}, nil, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := &testServer{key: newKey(t), gate: authGate("otp", tc.status, tc.challenge)}
			url := ts.start(t)
			tok := &staticTokens{tokens: tc.tokens, failErr: tc.failErr}
			s, err := New(Config{Pins: newMemPins()}).Connect(t.Context(), url, tok)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			res, err := s.CallTool(t.Context(), "echo", map[string]any{"message": "hi"})
			if len(tok.renews) != tc.wantRenews {
				t.Fatalf("renewals %d, want %d", len(tok.renews), tc.wantRenews)
			}
			if tc.wantRenews > 0 {
				ch := tok.renews[0]
				if ch.Status != tc.status || ch.Error == "" || !strings.Contains(tc.challenge, ch.Error) {
					t.Fatalf("challenge %+v", ch)
				}
				if tc.status == 401 && ch.ACRValues != "urn:voiceauth:acr:kba-otp" {
					t.Fatalf("acr_values %q", ch.ACRValues)
				}
			}
			if !tc.wantAuth {
				if err != nil {
					t.Fatal(err)
				}
				if res.Content[0].(*mcp.TextContent).Text != "Echo: hi" {
					t.Fatal("bad result")
				}
				return
			}
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v, want *AuthError", err)
			}
			if ae.Challenge.Status != tc.status {
				t.Fatalf("status %d", ae.Challenge.Status)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v does not wrap %v", err, tc.wantErr)
			}
			// The session survives a refused call: the next call is answered
			// (by an auth refusal or a result), never by a dead connection.
			if _, err := s.CallTool(t.Context(), "other", nil); errors.Is(err, ErrUnavailable) {
				t.Fatalf("after refusal: %v", err)
			}
		})
	}
}

func TestServerDown(t *testing.T) {
	// A port that was just closed: connection refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = New(Config{Pins: newMemPins()}).Connect(t.Context(), "http://"+addr+"/mcp", &staticTokens{tokens: []string{"t"}})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}

	// A server that accepts and never answers: the caller's context ends it.
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-arrived; cancel() }()
	_, err = New(Config{Pins: newMemPins()}).Connect(ctx, hang.URL+"/mcp", &staticTokens{tokens: []string{"t"}})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want ErrUnavailable wrapping context.Canceled", err)
	}
}

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		in   []string
		want AuthChallenge
	}{
		{[]string{`Bearer resource_metadata="http://127.0.0.1:8082/.well-known/oauth-protected-resource/mcp", scope="appointments:read"`},
			AuthChallenge{ResourceMetadata: "http://127.0.0.1:8082/.well-known/oauth-protected-resource/mcp", Scope: "appointments:read", MaxAge: -1}},
		{[]string{`Bearer error="insufficient_user_authentication", error_description="need OTP", acr_values="urn:voiceauth:acr:kba-otp", max_age=300`},
			AuthChallenge{Error: "insufficient_user_authentication", ACRValues: "urn:voiceauth:acr:kba-otp", MaxAge: 300}},
		{[]string{`Basic realm="x", Bearer error=insufficient_scope, scope="a b"`},
			AuthChallenge{Error: "insufficient_scope", Scope: "a b", MaxAge: -1}},
		{[]string{`DPoP algs="ES256"`, `bearer error="invalid_token"`}, AuthChallenge{Error: "invalid_token", MaxAge: -1}},
		{[]string{`Bearer scope="a\"b"`}, AuthChallenge{Scope: `a"b`, MaxAge: -1}},
		{[]string{`Bearer error="unterminated`}, AuthChallenge{MaxAge: -1}},
		{[]string{``}, AuthChallenge{MaxAge: -1}},
		{[]string{`Bearer`}, AuthChallenge{MaxAge: -1}},
		{[]string{`Bearer max_age=-5`}, AuthChallenge{MaxAge: -1}},
	}
	for _, tc := range tests {
		got := ParseChallenge(401, tc.in)
		tc.want.Status = 401
		tc.want.Raw = strings.Join(tc.in, ", ")
		if got != tc.want {
			t.Errorf("ParseChallenge(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer error="insufficient_user_authentication", acr_values="urn:voiceauth:acr:kba-otp", max_age=300`)
	f.Add(`Basic realm="x", Bearer scope="a b"`)
	f.Add(`Bearer scope="a\"b`)
	f.Fuzz(func(t *testing.T, h string) {
		ch := ParseChallenge(401, []string{h})
		if ch.MaxAge < -1 {
			t.Fatal("negative max_age")
		}
		if len(ch.Raw) > 4096 {
			t.Fatal("raw not bounded")
		}
	})
}

// TestSessionOutlivesConnectContext: the caller may bound Connect with a
// short deadline; the session keeps working with later contexts.
func TestSessionOutlivesConnectContext(t *testing.T) {
	url := (&testServer{key: newKey(t)}).start(t)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := New(Config{Pins: newMemPins()}).Connect(ctx, url, &staticTokens{tokens: []string{"tok"}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CallTool(t.Context(), "echo", map[string]any{"message": "later"}); err != nil {
		t.Fatal(err)
	}
}

// TestVerifiedCacheDoesNotHideTampering: a Config that has verified a tool
// once still refuses a tampered copy signed-looking under the same key.
func TestVerifiedCacheDoesNotHideTampering(t *testing.T) {
	key := newKey(t)
	honest := (&testServer{key: key}).start(t)
	tampered := (&testServer{key: key, tamper: func(tl *mcp.Tool) { tl.Description = "changed" }}).start(t)
	cl := New(Config{Pins: newMemPins()})
	for i, tc := range []struct {
		url   string
		tools string
	}{{honest, "echo,other"}, {tampered, "other"}, {honest, "echo,other"}} {
		s, err := cl.Connect(t.Context(), tc.url, &staticTokens{tokens: []string{"tok"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(toolNames(s), ","); got != tc.tools {
			t.Fatalf("connect %d: tools %q, want %q", i, got, tc.tools)
		}
		s.Close()
	}
}
