package mcpidentity

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// methodLog records the JSON-RPC methods a server receives.
type methodLog struct {
	mu      sync.Mutex
	methods []string
}

func (l *methodLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct{ Method string }
			if json.Unmarshal(body, &msg) == nil && msg.Method != "" {
				l.mu.Lock()
				l.methods = append(l.methods, msg.Method)
				l.mu.Unlock()
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (l *methodLog) saw(m string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.methods, m)
}

// identityServer is a real go-sdk MCP server on loopback with one signed
// tool; declare=false leaves the extension out of its capabilities (the
// methods are still installed, as a careless server might do).
func identityServer(t *testing.T, declare, stateless bool) (string, *methodLog) {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewServer(key, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := &mcp.ServerOptions{}
	if declare {
		opts.Capabilities = id.Capabilities()
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "identity-test", Version: "1"}, opts)
	if err := id.Register(srv); err != nil {
		t.Fatal(err)
	}
	tool := &mcp.Tool{Name: "echo", Description: "Echo.", InputSchema: map[string]any{"type": "object"}}
	if err := id.SignTool(tool); err != nil {
		t.Fatal(err)
	}
	srv.AddTool(tool, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
	})
	log := &methodLog{}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{Stateless: stateless})
	hs := httptest.NewServer(log.wrap(h))
	t.Cleanup(hs.Close)
	return hs.URL + "/mcp", log
}

// TestDiscoveryBothRevisions: the extension declared once through
// Server.Capabilities reaches a go-sdk client on 2025-11-25 (initialize)
// and on 2026-07-28 (server/discover, no initialize; only a stateless
// go-sdk server speaks it), Advertised reads it the same way on both, and
// identity/get, identity/challenge and the signed tools/list work on both.
// A server that does not declare it is not taken as advertising it.
func TestDiscoveryBothRevisions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		version    string
		stateless  bool
		handshake  string // the method that carried the capabilities
		notSent    string
		declare    bool
		advertised bool
	}{
		{"2025-11-25 stateful", "2025-11-25", false, "initialize", "server/discover", true, true},
		{"2025-11-25 stateless", "2025-11-25", true, "initialize", "server/discover", true, true},
		{"2026-07-28 stateless", "2026-07-28", true, "server/discover", "initialize", true, true},
		{"2025-11-25 undeclared", "2025-11-25", false, "initialize", "server/discover", false, false},
		{"2026-07-28 undeclared", "2026-07-28", true, "server/discover", "initialize", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			url, log := identityServer(t, tc.declare, tc.stateless)
			client := mcp.NewClient(&mcp.Implementation{Name: "identity-test-client", Version: "1"}, nil)
			if err := AddClientMethods(client); err != nil {
				t.Fatal(err)
			}
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, MaxRetries: -1, DisableStandaloneSSE: true},
				&mcp.ClientSessionOptions{ProtocolVersion: tc.version})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if got := cs.InitializeResult().ProtocolVersion; got != tc.version {
				t.Fatalf("negotiated %s, want %s", got, tc.version)
			}
			if !log.saw(tc.handshake) || log.saw(tc.notSent) {
				t.Fatalf("methods %v: want %s and no %s", log.methods, tc.handshake, tc.notSent)
			}
			if got := Advertised(cs); got != tc.advertised {
				t.Fatalf("Advertised = %v, want %v", got, tc.advertised)
			}
			if !tc.advertised {
				return
			}
			if v, _ := cs.InitializeResult().Capabilities.Extensions[ExtensionID].(map[string]any); v["version"] != ExtensionVersion {
				t.Fatalf("extension settings %v", cs.InitializeResult().Capabilities.Extensions[ExtensionID])
			}
			md, err := Get(ctx, cs)
			if err != nil {
				t.Fatal(err)
			}
			id, err := VerifyMetadata(md)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewChallenge(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			res, err := CallChallenge(ctx, cs, p)
			if err != nil {
				t.Fatal(err)
			}
			if err := id.VerifyChallenge(p, res); err != nil {
				t.Fatal(err)
			}
			// The same nonce again is a replay, also when each request is
			// its own stateless session.
			if _, err := CallChallenge(ctx, cs, p); jsonrpcCode(err) != CodeReplayedNonce {
				t.Fatalf("replayed challenge: %v, want code %d", err, CodeReplayedNonce)
			}
			lt, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(lt.Tools) != 1 {
				t.Fatalf("tools %v", lt.Tools)
			}
			if err := VerifyTool(lt.Tools[0], id.Key, time.Now(), 0); err != nil {
				t.Fatalf("listed tool: %v", err)
			}
		})
	}
}
