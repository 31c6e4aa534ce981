package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/internal/app"
)

// mcpInitialize posts one MCP initialize with a bearer token, as any MCP
// client would first do, and returns the HTTP status.
func mcpInitialize(t *testing.T, mcpURL, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize",`+
		`"params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"replay","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// TestHangUpRevokesAtTheMCPServer: the access token of a verified call
// works at the MCP server until the caller hangs up; the AS revokes it at
// hang-up and the very next MCP request with it is 401, not ten minutes of
// cached verification later.
func TestHangUpRevokesAtTheMCPServer(t *testing.T) {
	st, _ := startStack(t, app.Config{})
	p := &phone{t: t, st: st, callSid: "CArevoke0000000000000000000000001", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := authenticate(t, p, "Maria Garcia", "March third nineteen eighty", "4567")
	if !strings.Contains(tr.said, "verified") {
		t.Fatalf("KBA did not verify: %q", tr.said)
	}
	// Reading appointments makes the MCP server verify (and cache) the token.
	if tr = p.say(tr, "appointments"); !strings.Contains(tr.said, "Dr. ") {
		t.Fatalf("appointments not read: %q", tr.said)
	}
	ts, err := st.Store().GetTokens(context.Background(), p.callSid)
	if err != nil || ts.AccessToken == "" {
		t.Fatalf("call tokens: %v", err)
	}
	if status, h := mcpInitialize(t, st.MCPURL, ts.AccessToken); status != http.StatusOK {
		t.Fatalf("before hang-up: %d %s", status, h)
	}
	if status, body := p.send("/twilio/status", url.Values{"CallStatus": {"completed"}, "CallDuration": {"42"}}); status/100 != 2 {
		t.Fatalf("status callback: %d %s", status, body)
	}
	status, h := mcpInitialize(t, st.MCPURL, ts.AccessToken)
	if status != http.StatusUnauthorized || !strings.Contains(h, `error="invalid_token"`) {
		t.Fatalf("after hang-up: %d %q, want 401 invalid_token", status, h)
	}
}
