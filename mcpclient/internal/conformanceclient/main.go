// Command conformanceclient is mcpclient under the official MCP conformance
// suite (@modelcontextprotocol/conformance, client mode). The suite starts
// a mock server per scenario and runs this program with the server URL as
// its last argument and the scenario in MCP_CONFORMANCE_SCENARIO (and
// MCP_CONFORMANCE_CONTEXT, JSON, for pre-registered credentials).
//
// Every scenario goes through mcpclient.Config.Connect / Session.CallTool:
// protocol negotiation, the bearer transport, renewal on 401/403
// challenges and its retry budget are mcpclient's. The suite's mock servers
// have no server identity, so the policy is unsigned-allowed. For the auth
// scenarios the OAuth authorization-code flow itself (PRM and AS discovery,
// registration, PKCE, the redirect — which the mock AS answers at once with
// a 302, so no browser is involved — and RFC 9207 iss) is the go-sdk's
// auth.AuthorizationCodeHandler behind mcpclient's TokenSource:
// voiceauth's own OAuth client (package challenge) speaks the first-party
// challenge endpoint, which the suite does not test. docs/DECISIONS.md
// lists the scenarios run and why the others are not.
//
// It is test tooling: .ci/run builds it into a temporary directory and
// runs the suite against it; it is not part of the voiceauth binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/voiceauth/voiceauth/mcpclient"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: conformanceclient <server-url>   (MCP_CONFORMANCE_SCENARIO names the scenario)")
		os.Exit(2)
	}
	serverURL := os.Args[len(os.Args)-1]
	scenario := os.Getenv("MCP_CONFORMANCE_SCENARIO")
	var sc map[string]any
	if raw := os.Getenv("MCP_CONFORMANCE_CONTEXT"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &sc); err != nil {
			fmt.Fprintln(os.Stderr, "MCP_CONFORMANCE_CONTEXT is not a JSON object")
			os.Exit(2)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := run(ctx, scenario, serverURL, sc); err != nil {
		fmt.Fprintf(os.Stderr, "scenario %q: %v\n", scenario, err)
		os.Exit(1)
	}
}

// run plays one scenario.
func run(ctx context.Context, scenario, serverURL string, sc map[string]any) error {
	cl := mcpclient.New(mcpclient.Config{ClientName: "voiceauth-conformance", Policy: mcpclient.Policy{Mode: mcpclient.PolicyUnsignedAllowed}})
	switch {
	case scenario == "initialize":
		s, err := cl.Connect(ctx, serverURL, noTokens{})
		if err != nil {
			return err
		}
		return s.Close()
	case scenario == "tools_call":
		return connectAndCall(ctx, cl, serverURL, noTokens{}, "add_numbers", map[string]any{"a": 5, "b": 3})
	case scenario == "request-metadata" || scenario == "json-schema-ref-no-deref":
		// The handshake and the tools/list at Connect are the scenario.
		s, err := cl.Connect(ctx, serverURL, noTokens{})
		if err != nil {
			return err
		}
		return s.Close()
	case scenario == "http-standard-headers" || scenario == "http-invalid-tool-headers" ||
		scenario == "http-custom-headers" || scenario == "json-schema-2020-12-preservation":
		return headerScenario(ctx, cl, scenario, serverURL, sc)
	case strings.HasPrefix(scenario, "auth/"):
		ts, err := newOAuthTokens(serverURL, sc)
		if err != nil {
			return err
		}
		return connectAndCall(ctx, cl, serverURL, ts, "test-tool", nil)
	}
	return fmt.Errorf("scenario not supported by this client (see docs/DECISIONS.md)")
}

func connectAndCall(ctx context.Context, cl *mcpclient.Client, serverURL string, ts mcpclient.TokenSource, tool string, args map[string]any) error {
	s, err := cl.Connect(ctx, serverURL, ts)
	if err != nil {
		return err
	}
	defer s.Close()
	if !slices.ContainsFunc(s.Tools(), func(t *mcp.Tool) bool { return t.Name == tool }) {
		return fmt.Errorf("tool %q not listed", tool)
	}
	res, err := s.CallTool(ctx, tool, args)
	if err != nil {
		return err
	}
	if res.IsError {
		return errors.New("tool returned an error result")
	}
	return nil
}

// noTokens is the token source of an unprotected server.
type noTokens struct{}

func (noTokens) Token(context.Context) (string, error) { return "", nil }
func (noTokens) Renew(context.Context, *mcpclient.AuthChallenge) (string, error) {
	return "", errors.New("server asks for authorization in a scenario without it")
}

// oauthTokens is an mcpclient.TokenSource that obtains tokens with the
// go-sdk's authorization-code handler: Renew hands it the 401/403 challenge
// mcpclient parsed, exactly as the SDK's own transport would.
type oauthTokens struct {
	h         *auth.AuthorizationCodeHandler
	serverURL string
}

const redirectURL = "http://localhost:3000/callback"

func newOAuthTokens(serverURL string, sc map[string]any) (*oauthTokens, error) {
	// Registration in the order MCP 2025-11-25 gives: pre-registered
	// credentials (the suite's context), a client ID metadata document
	// where the AS supports one, else dynamic registration. The client
	// keeps refresh tokens (SEP-2207: it asks for offline_access where the
	// AS lists it and registers the refresh_token grant).
	cfg := &auth.AuthorizationCodeHandlerConfig{
		RedirectURL:                    redirectURL,
		AuthorizationCodeFetcher:       fetchCode,
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: "https://conformance-test.local/client-metadata.json"},
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{RedirectURIs: []string{redirectURL},
				GrantTypes: []string{"authorization_code", "refresh_token"}},
		},
		RequestRefreshToken: true,
	}
	id, _ := sc["client_id"].(string)
	secret, _ := sc["client_secret"].(string)
	if id != "" && secret != "" {
		cfg.PreregisteredClient = &oauthex.ClientCredentials{ClientID: id, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: secret}}
	}
	h, err := auth.NewAuthorizationCodeHandler(cfg)
	if err != nil {
		return nil, err
	}
	return &oauthTokens{h: h, serverURL: serverURL}, nil
}

func (o *oauthTokens) Token(ctx context.Context) (string, error) {
	ts, err := o.h.TokenSource(ctx)
	if err != nil || ts == nil {
		return "", nil // not authorized yet: the server's 401 starts the flow
	}
	t, err := ts.Token()
	if err != nil {
		return "", nil
	}
	return t.AccessToken, nil
}

func (o *oauthTokens) Renew(ctx context.Context, ch *mcpclient.AuthChallenge) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.serverURL, nil)
	if err != nil {
		return "", err
	}
	resp := &http.Response{StatusCode: ch.Status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}
	if ch.Raw != "" {
		resp.Header.Set("WWW-Authenticate", ch.Raw)
	}
	if err := o.h.Authorize(ctx, req, resp); err != nil {
		return "", err
	}
	tok, _ := o.Token(ctx)
	if tok == "" {
		return "", errors.New("authorization gave no token")
	}
	return tok, nil
}

// fetchCode follows the authorization URL one hop without a browser: the
// suite's mock AS redirects at once to the redirect URI with code, state and
// (RFC 9207) iss, which the handler checks.
func fetchCode(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode/100 != 3 {
		return nil, fmt.Errorf("authorization endpoint answered %d without a usable redirect", resp.StatusCode)
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("authorization refused: %s", e)
	}
	return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
}

// headerScenario plays the 2026-07-28 header scenarios (SEP-2243: Mcp-Method,
// Mcp-Name, Mcp-Param-* from x-mcp-header) and the JSON Schema 2020-12
// preservation check: the calls go through Session.CallTool, so the
// headers are what mcpclient sends. Refusals of single calls are expected
// in some of them (the referee judges what reached the wire).
func headerScenario(ctx context.Context, cl *mcpclient.Client, scenario, serverURL string, sc map[string]any) error {
	s, err := cl.Connect(ctx, serverURL, noTokens{})
	if err != nil {
		return err
	}
	defer s.Close()
	tools := s.Tools()
	switch scenario {
	case "http-standard-headers":
		if len(tools) > 0 {
			_, _ = s.CallTool(ctx, tools[0].Name, map[string]any{})
		}
	case "http-invalid-tool-headers":
		for _, t := range tools {
			_, _ = s.CallTool(ctx, t.Name, map[string]any{"region": "us-west1"})
		}
	case "http-custom-headers":
		calls, _ := sc["toolCalls"].([]any)
		for _, c := range calls {
			obj, _ := c.(map[string]any)
			name, _ := obj["name"].(string)
			args, _ := obj["arguments"].(map[string]any)
			_, _ = s.CallTool(ctx, name, args)
		}
	case "json-schema-2020-12-preservation":
		i := slices.IndexFunc(tools, func(t *mcp.Tool) bool { return t.Name == "json_schema_2020_12_tool" })
		if i < 0 {
			return errors.New("json_schema_2020_12_tool not listed")
		}
		if _, err := s.CallTool(ctx, "json_schema_echo", map[string]any{"schema": tools[i].InputSchema}); err != nil {
			return err
		}
	}
	return nil
}
