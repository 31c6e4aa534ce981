package mcpclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/voiceauth/voiceauth/mcpidentity"
)

// TestClientOwnsVerifyCache: the cache of verified tool signatures belongs
// to the Client that New made, not to the Config. Reconnecting through one
// Client verifies each signed definition once; a second Client from the
// same Config value starts empty and leaves the first one's cache alone.
func TestClientOwnsVerifyCache(t *testing.T) {
	url := (&testServer{key: newKey(t)}).start(t)
	cfg := Config{Pins: newMemPins()}
	a, b := New(cfg), New(cfg)
	connect := func(cl *Client) {
		t.Helper()
		s, err := cl.Connect(t.Context(), url, &staticTokens{tokens: []string{"tok"}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := strings.Join(toolNames(s), ","); got != "echo,other" {
			t.Fatalf("tools %q", got)
		}
	}
	want := func(cl *Client, name string, verified, hits int64) {
		t.Helper()
		if got := cl.VerifyStats(); got.Verified != verified || got.Hits != hits {
			t.Fatalf("%s: stats %+v, want %d verified, %d hits", name, got, verified, hits)
		}
	}
	connect(a)
	want(a, "a after 1st connect", 2, 0)
	connect(a)
	connect(a)
	want(a, "a after 3rd connect", 2, 4) // the same two definitions: no new Ed25519 work
	want(b, "b before connecting", 0, 0)
	connect(b)
	want(b, "b after 1st connect", 2, 0) // b did not see a's verifications
	want(a, "a after b connected", 2, 4) // and did not touch a's
}

// TestConfigIsAPlainValue: New copies the Config; changing the caller's
// copy afterwards does not change the Client.
func TestConfigIsAPlainValue(t *testing.T) {
	url := (&testServer{key: newKey(t)}).start(t)
	cfg := Config{Pins: newMemPins()}
	cl := New(cfg)
	cfg.Policy.Mode = PolicyPublisher // no anchors: would refuse every server
	s, err := cl.Connect(t.Context(), url, &staticTokens{tokens: []string{"tok"}})
	if err != nil {
		t.Fatalf("Client followed a Config change made after New: %v", err)
	}
	s.Close()
	if _, err := New(cfg).Connect(t.Context(), url, &staticTokens{tokens: []string{"tok"}}); err == nil {
		t.Fatal("publisher policy without anchors accepted the server")
	}
}

// TestIdentityOnBothRevisions: a Client set to 2026-07-28 against a
// stateless go-sdk server (server/discover, no initialize) finds the
// extension where it finds it on 2025-11-25, and establishes the identity
// and the signed tools the same way.
func TestIdentityOnBothRevisions(t *testing.T) {
	key := newKey(t)
	id, err := mcpidentity.NewServer(key, mcpidentity.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, &mcp.ServerOptions{Capabilities: id.Capabilities()})
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
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{Stateless: true}))
	t.Cleanup(hs.Close)
	for _, v := range []string{"2025-11-25", "2026-07-28"} {
		s, err := New(Config{Pins: newMemPins(), ProtocolVersion: v, Policy: Policy{RequireExtSignature: true}}).
			Connect(t.Context(), hs.URL+"/mcp", &staticTokens{tokens: []string{"tok"}})
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if got := s.cs.InitializeResult().ProtocolVersion; got != v {
			t.Errorf("%s: negotiated %s", v, got)
		}
		if s.key == nil || s.key.KeyID != key.KeyID || strings.Join(toolNames(s), ",") != "echo" {
			t.Errorf("%s: identity %v, tools %v", v, s.key, toolNames(s))
		}
		s.Close()
	}
}
