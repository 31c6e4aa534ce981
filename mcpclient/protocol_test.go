package mcpclient

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// methodLog records the JSON-RPC methods a server receives, and can answer
// server/discover the way the TypeScript servers do (HTTP 400, not JSON-RPC).
type methodLog struct {
	mu          sync.Mutex
	methods     []string
	discover400 bool
}

func (l *methodLog) gate(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		return true
	}
	var m struct{ Method string }
	_ = json.Unmarshal([]byte(peekBody(r)), &m)
	l.mu.Lock()
	l.methods = append(l.methods, m.Method)
	l.mu.Unlock()
	if l.discover400 && m.Method == "server/discover" {
		http.Error(w, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Server not initialized"},"id":null}`, http.StatusBadRequest)
		return false
	}
	return true
}

// take returns and clears the recorded methods.
func (l *methodLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.methods
	l.methods = nil
	return m
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func connectAndEcho(t *testing.T, cl *Client, url string) *Session {
	t.Helper()
	s, err := cl.Connect(t.Context(), url, &staticTokens{tokens: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	res, err := s.CallTool(t.Context(), "echo", map[string]any{"message": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if txt := res.Content[0].(*mcp.TextContent).Text; txt != "Echo: hi" {
		t.Fatalf("echo %q", txt)
	}
	return s
}

// TestNegotiationRemembersLegacyServer: a server that speaks only
// 2025-11-25 (a stateful go-sdk server answering the probe with a JSON-RPC
// error, or a TypeScript server answering it with HTTP 400) is probed once;
// later connections ask for 2025-11-25 directly until the memo expires.
func TestNegotiationRemembersLegacyServer(t *testing.T) {
	for _, ts400 := range []bool{false, true} {
		name := "go-sdk stateful"
		if ts400 {
			name = "HTTP 400 probe"
		}
		t.Run(name, func(t *testing.T) {
			log := &methodLog{discover400: ts400}
			clk := &testClock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
			url := (&testServer{key: newKey(t), gate: log.gate, now: clk.now}).start(t)
			cl := New(Config{Pins: newMemPins(), Now: clk.now})

			s := connectAndEcho(t, cl, url)
			if v := s.ProtocolVersion(); v != Version20251125 {
				t.Fatalf("first: version %q", v)
			}
			if got := log.take(); !slices.Contains(got, "server/discover") || !slices.Contains(got, "initialize") {
				t.Fatalf("first connection sent %v, want a probe then initialize", got)
			}

			s = connectAndEcho(t, cl, url)
			if v := s.ProtocolVersion(); v != Version20251125 {
				t.Fatalf("second: version %q", v)
			}
			if got := log.take(); slices.Contains(got, "server/discover") || !slices.Contains(got, "initialize") {
				t.Fatalf("second connection sent %v, want initialize without a probe", got)
			}

			clk.add(versionMemoTTL)
			connectAndEcho(t, cl, url)
			if got := log.take(); !slices.Contains(got, "server/discover") {
				t.Fatalf("after the memo expired: sent %v, want a fresh probe", got)
			}
		})
	}
}

// TestNegotiationStatelessServer: a server that speaks 2026-07-28 gets it,
// with no initialize at all, and the tools work.
func TestNegotiationStatelessServer(t *testing.T) {
	log := &methodLog{}
	url := (&testServer{key: newKey(t), gate: log.gate, stateless: true}).start(t)
	cl := New(Config{Pins: newMemPins()})
	for i := range 2 {
		s := connectAndEcho(t, cl, url)
		if v := s.ProtocolVersion(); v != Version20260728 {
			t.Fatalf("connection %d: version %q", i, v)
		}
		got := log.take()
		if slices.Contains(got, "initialize") || got[0] != "server/discover" {
			t.Fatalf("connection %d sent %v", i, got)
		}
	}
}

// TestRequiredVersion: a configured revision is required, not a hint.
func TestRequiredVersion(t *testing.T) {
	legacy := (&testServer{key: newKey(t)}).start(t)
	_, err := New(Config{Pins: newMemPins(), ProtocolVersion: Version20260728}).Connect(t.Context(), legacy, &staticTokens{tokens: []string{"t"}})
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("2026-07-28 required of a 2025-11-25 server: err %v, want ErrProtocol", err)
	}

	log := &methodLog{}
	modern := (&testServer{key: newKey(t), gate: log.gate, stateless: true}).start(t)
	s := connectAndEcho(t, New(Config{Pins: newMemPins(), ProtocolVersion: Version20251125}), modern)
	if v := s.ProtocolVersion(); v != Version20251125 {
		t.Fatalf("version %q", v)
	}
	if got := log.take(); slices.Contains(got, "server/discover") {
		t.Fatalf("pinned 2025-11-25 still probed: %v", got)
	}
}

// TestConnectRefusalRenewsOnce: when the probe is refused with a challenge
// the TokenSource cannot cure, the SDK's fallback to initialize must not
// ask the caller's TokenSource again.
func TestConnectRefusalRenewsOnce(t *testing.T) {
	gate := func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
	url := (&testServer{key: newKey(t), gate: gate}).start(t)
	tok := &staticTokens{tokens: []string{"t"}, failErr: errMustDoOTP}
	_, err := New(Config{Pins: newMemPins()}).Connect(t.Context(), url, tok)
	var ae *AuthError
	if !errors.As(err, &ae) || !errors.Is(err, errMustDoOTP) {
		t.Fatalf("err %v, want *AuthError wrapping the renewal failure", err)
	}
	if len(tok.renews) != 1 {
		t.Fatalf("renewals %d, want 1", len(tok.renews))
	}
}

// TestNegotiationForgetsOnFailure: a connection that fails on the
// remembered revision drops the memo, so the next one negotiates afresh
// (a server that moved to 2026-07-28 only is found at once, not in an hour).
func TestNegotiationForgetsOnFailure(t *testing.T) {
	log := &methodLog{}
	var failInit sync.Mutex
	fail := false
	gate := func(w http.ResponseWriter, r *http.Request) bool {
		if !log.gate(w, r) {
			return false
		}
		failInit.Lock()
		defer failInit.Unlock()
		if fail && strings.Contains(peekBody(r), `"initialize"`) {
			fail = false
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return false
		}
		return true
	}
	url := (&testServer{key: newKey(t), gate: gate}).start(t)
	cl := New(Config{Pins: newMemPins()})
	connectAndEcho(t, cl, url)
	log.take()

	failInit.Lock()
	fail = true
	failInit.Unlock()
	if _, err := cl.Connect(t.Context(), url, &staticTokens{tokens: []string{"t"}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	if got := log.take(); slices.Contains(got, "server/discover") {
		t.Fatalf("the remembered revision was not used: %v", got)
	}
	connectAndEcho(t, cl, url)
	if got := log.take(); !slices.Contains(got, "server/discover") {
		t.Fatalf("after a failure the client did not negotiate again: %v", got)
	}
}
