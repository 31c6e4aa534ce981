package broker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/broker"
	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/ivr"
	"github.com/voiceauth/voiceauth/mcpclient"
	"github.com/voiceauth/voiceauth/session"
)

// session.Store is the store the wiring hands the broker.
var _ broker.Store = session.Store(nil)

// clock is a settable clock shared by the AS, the MCP server and the broker.
// It starts at the wall clock because the store expires records by it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// otpBox is the AS's SMS channel: it keeps the last code sent to each number.
type otpBox struct {
	mu   sync.Mutex
	sent map[string]string // to → code
	refs map[string]string // ref → code
}

func (o *otpBox) Send(_ context.Context, to string) (string, error) {
	n, _ := rand.Int(rand.Reader, big.NewInt(1e6))
	code := fmt.Sprintf("%06d", n.Int64())
	ref := rand.Text()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sent[to], o.refs[ref] = code, code
	return ref, nil
}

func (o *otpBox) Check(_ context.Context, ref, code string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.refs[ref]; ok && c == code {
		delete(o.refs, ref)
		return true, nil
	}
	return false, nil
}

func (o *otpBox) last(to string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sent[to]
}

// stack is a real AS (authserver) and an MCP server whose tools need the
// scopes "x:read" (x_read) and "x:write" (x_write), neither of them the
// demo's: the AS asks for the one-time code for x:write.
type stack struct {
	clk    *clock
	store  session.Store
	otp    *otpBox
	as     *authserver.Server
	asURL  string
	mcpURL string
	b      *broker.Broker

	logs   *syncBuffer // every component's log
	asDown atomic.Bool // the AS answers 503 to everything
	hooks  hookLog

	mu        sync.Mutex
	asked     []string // scope of every request at the challenge endpoint, in order
	toolCalls []string // tools the MCP server ran
}

// syncBuffer collects log lines from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hookLog records what the broker's hooks were told.
type hookLog struct {
	mu          sync.Mutex
	jobs        int
	tools       []string // tool=outcome
	revocations []string
}

func (h *hookLog) hooks() broker.Hooks {
	return broker.Hooks{
		Job: func(time.Duration) { h.mu.Lock(); h.jobs++; h.mu.Unlock() },
		ToolCall: func(tool string, err error, _ time.Duration) {
			h.mu.Lock()
			defer h.mu.Unlock()
			out := "ok"
			if err != nil {
				out = err.Error()
			}
			h.tools = append(h.tools, tool+"="+out)
		},
		Revocation: func(r string) { h.mu.Lock(); h.revocations = append(h.revocations, r); h.mu.Unlock() },
	}
}

func (h *hookLog) snapshot() (int, []string, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.jobs, slices.Clone(h.tools), slices.Clone(h.revocations)
}

const (
	voiceID     = "voice-client"
	voiceSecret = "voice-secret-0123456789abcdef01"
	maria       = "+15555550101"
	hostID      = "host-app"
	hostSecret  = "host-secret-0123456789abcdef01"
)

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{clk: &clock{now: time.Now()}, otp: &otpBox{sent: map[string]string{}, refs: map[string]string{}}, logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := session.NewSealer(map[uint32][]byte{1: key}, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.store, err = session.Open(ctx, filepath.Join(t.TempDir(), "broker.db"), session.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	pepper := []byte("pepper-pepper-pepper-pepper-0001")
	if err := authserver.Seed(ctx, s.store, pepper, authserver.DemoPatients()); err != nil {
		t.Fatal(err)
	}
	sk, err := authserver.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	asSrv := httptest.NewUnstartedServer(nil)
	s.asURL = "http://" + asSrv.Listener.Addr().String()
	mcpSrv := httptest.NewUnstartedServer(nil)
	s.mcpURL = "http://" + mcpSrv.Listener.Addr().String() + "/mcp"

	s.as, err = authserver.New(authserver.Config{
		Issuer: s.asURL, Store: s.store, Pepper: pepper, LogKey: []byte("log-key"),
		SigningKeys: []jose.JSONWebKey{sk},
		Clients: []authserver.Client{{ID: voiceID, Secret: voiceSecret, FirstParty: true, Kind: authserver.KindVoice,
			Scopes: []string{"x:read", "x:write"}, Resources: []string{s.mcpURL}},
			{ID: hostID, Secret: hostSecret, Kind: authserver.KindHost}},
		Resources: []string{s.mcpURL},
		ScopeACR:  map[string]string{"x:read": challenge.ACRKBA, "x:write": challenge.ACRKBAOTP},
		OTP:       s.otp,
		Logger:    logger.With("component", "authserver"),
		Now:       s.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	asH := s.as.Handler()
	challengePath := mustPath(t, s.as.Metadata().AuthorizationChallengeEndpoint)
	asSrv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.asDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == challengePath {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			f, _ := url.ParseQuery(string(body))
			s.mu.Lock()
			s.asked = append(s.asked, f.Get("scope"))
			s.mu.Unlock()
		}
		asH.ServeHTTP(w, r)
	})
	asSrv.Start()
	t.Cleanup(asSrv.Close)

	mcpSrv.Config.Handler = s.mcpHandler(t)
	mcpSrv.Start()
	t.Cleanup(mcpSrv.Close)

	hc := &http.Client{Timeout: 10 * time.Second}
	ch := challenge.New(challenge.Config{ClientID: voiceID, ClientSecret: voiceSecret, Issuer: s.asURL, HTTPClient: hc, Now: s.clk.Now,
		Logger: logger.With("component", "challenge")})
	s.b = broker.New(broker.Config{
		Challenge: ch, MCPURL: s.mcpURL, Store: s.store, HTTPClient: hc, Now: s.clk.Now, LogKey: []byte("log-key"),
		MCP: mcpclient.New(mcpclient.Config{HTTPClient: hc, Now: s.clk.Now, Policy: mcpclient.Policy{Mode: mcpclient.PolicyUnsignedAllowed},
			Logger: logger.With("component", "mcpclient")}),
		Logger: logger.With("component", "broker"), Hooks: s.hooks.hooks(),
	})
	t.Cleanup(s.b.Close)
	return s
}

func mustPath(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Path
}

// mcpHandler is the protected resource: its PRM lists only x:read, and
// its gate verifies the AS's JWT and answers a tool call whose scope the
// token lacks with 403 insufficient_scope naming that scope.
func (s *stack) mcpHandler(t *testing.T) http.Handler {
	srv := mcp.NewServer(&mcp.Implementation{Name: "x-server", Version: "1"}, nil)
	type out struct {
		Tool string `json:"tool"`
	}
	for _, name := range []string{"x_read", "x_write"} {
		mcp.AddTool(srv, &mcp.Tool{Name: name, Description: name}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, out, error) {
			s.mu.Lock()
			s.toolCalls = append(s.toolCalls, name)
			s.mu.Unlock()
			return nil, out{Tool: name}, nil
		})
	}
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	u, _ := url.Parse(s.mcpURL)
	prm := "http://" + u.Host + "/.well-known/oauth-protected-resource/mcp"
	needs := map[string]string{"x_read": "x:read", "x_write": "x:write"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(challenge.ProtectedResourceMetadata{Resource: s.mcpURL,
			AuthorizationServers: []string{s.asURL}, ScopesSupported: []string{"x:read"}})
	})
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		deny := func(status int, params string) {
			w.Header().Set("WWW-Authenticate", `Bearer `+params+`, resource_metadata="`+prm+`"`)
			w.WriteHeader(status)
		}
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			deny(http.StatusUnauthorized, `scope="x:read"`)
			return
		}
		claims, err := s.verify(raw)
		if err != nil {
			deny(http.StatusUnauthorized, `error="invalid_token"`)
			return
		}
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct {
				Method string `json:"method"`
				Params struct {
					Name string `json:"name"`
				} `json:"params"`
			}
			if json.Unmarshal(body, &msg) == nil && msg.Method == "tools/call" {
				if need := needs[msg.Params.Name]; !slices.Contains(strings.Fields(claims.Scope), need) {
					deny(http.StatusForbidden, `error="insufficient_scope", scope="`+need+`"`)
					return
				}
			}
		}
		sdk.ServeHTTP(w, r)
	})
	return mux
}

type xClaims struct {
	jwt.Claims
	Scope string `json:"scope"`
	ACR   string `json:"acr"`
}

// verify checks an access token's signature against the AS's JWKS, its
// issuer, audience and expiry.
func (s *stack) verify(raw string) (*xClaims, error) {
	resp, err := http.Get(s.as.Metadata().JWKSURI)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ks jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&ks); err != nil {
		return nil, err
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, fmt.Errorf("not a JWT")
	}
	keys := ks.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 {
		return nil, fmt.Errorf("unknown kid")
	}
	var c xClaims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		return nil, err
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: s.asURL, AnyAudience: jwt.Audience{s.mcpURL}, Time: s.clk.Now()}, 0); err != nil {
		return nil, err
	}
	return &c, nil
}

func (s *stack) challengeScopes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

// submit runs one Submit and keeps the flow state, like ivr does.
type caller struct {
	t    *testing.T
	s    *stack
	call ivr.CallInfo
	flow []byte
}

func (c *caller) submit(a ivr.Answers, stepUp bool) ivr.AuthStep {
	c.t.Helper()
	step, flow, err := c.s.b.Submit(context.Background(), c.call, c.flow, a, stepUp)
	if err != nil {
		c.t.Fatalf("submit: %v", err)
	}
	c.flow = flow
	return step
}

func (c *caller) kba() ivr.AuthStep {
	c.t.Helper()
	return c.submit(ivr.Answers{Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "4567"}, false)
}

func newCaller(t *testing.T, s *stack, sid string) *caller {
	return &caller{t: t, s: s, call: ivr.CallInfo{CallSid: sid, From: maria, StirVerstat: "TN-Validation-Passed-A", CallRef: "ref-" + sid}}
}
