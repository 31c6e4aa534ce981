package mcpclient

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/voiceauth/voiceauth/mcpidentity"
)

// Errors a caller branches on (match with errors.Is / errors.As).
var (
	// ErrIdentity: the server's identity could not be established or changed
	// without a valid rotation record. The caller is transferred.
	ErrIdentity = errors.New("mcpclient: server identity check failed")
	// ErrToolNotVerified: the tool is unknown or its signature did not verify.
	ErrToolNotVerified = errors.New("mcpclient: tool not verified")
	// ErrUnavailable: the server could not be reached or did not answer in time.
	ErrUnavailable = errors.New("mcpclient: MCP server unavailable")
	// ErrNoPin: PinStore.GetPin found no pin for the server.
	ErrNoPin = errors.New("mcpclient: no pin")
)

// AuthError is returned when a 401/403 cannot be cured by renewing the
// token: the challenge is not renewable, the retry budget is spent, or
// TokenSource.Renew failed (Err, e.g. the adapter's "caller must do OTP").
type AuthError struct {
	Challenge AuthChallenge
	Err       error
}

func (e *AuthError) Error() string {
	msg := fmt.Sprintf("mcpclient: authorization refused (%d %s)", e.Challenge.Status, e.Challenge.Error)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *AuthError) Unwrap() error { return e.Err }

// TokenSource supplies the caller's access token for one MCP server.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	// Renew is called on a 401/403 with the parsed challenge; it returns a
	// fresh or stepped-up token, or an error which CallTool returns wrapped.
	Renew(ctx context.Context, ch *AuthChallenge) (string, error)
}

// Pin is a trust-on-first-use record of a server's identity key.
type Pin struct {
	Server, KeyID, Thumbprint string
	Key                       []byte // public JWK JSON
	PinnedAt                  time.Time
}

// PinStore keeps pins (the wiring adapts session.Store's pins to it).
type PinStore interface {
	GetPin(ctx context.Context, server string) (*Pin, error) // ErrNoPin
	PutPin(ctx context.Context, p *Pin) error
}

// PolicyMode is how a server's identity is trusted.
type PolicyMode int

const (
	// PolicyPinned (default): trust the first key seen, then only that key or
	// a successor named by a rotation record the pinned key signed.
	PolicyPinned PolicyMode = iota
	// PolicyPublisher: trust a key that a publisher anchor attests (bound to
	// the key's thumbprint, unexpired).
	PolicyPublisher
	// PolicyUnsignedAllowed: servers without the extension are accepted and
	// unsigned tools may be called. Signed tools that fail are still refused.
	PolicyUnsignedAllowed
)

func (m PolicyMode) String() string {
	switch m {
	case PolicyPinned:
		return "pinned"
	case PolicyPublisher:
		return "publisher"
	case PolicyUnsignedAllowed:
		return "unsigned-allowed"
	}
	return "unknown"
}

// Policy is the per-server trust policy.
type Policy struct {
	Mode    PolicyMode
	Anchors []ed25519.PublicKey // publisher trust anchors (PolicyPublisher)
	MaxSkew time.Duration       // challenge timestamp window, default mcpidentity.DefaultMaxSkew
	// MaxToolAge refuses tool signatures older than this (0 = no limit).
	MaxToolAge time.Duration
	// RequireExtSignature refuses tools that lack extSignature (stops a
	// downgrade to the draft signature, which leaves annotations unsigned).
	RequireExtSignature bool
}

// Config configures a Client; it is a plain value (copy it freely). The zero
// value works with http.DefaultClient, no logging, the wall clock and no pin
// store (pinned policy then fails: a pin store is required to pin).
type Config struct {
	HTTPClient      *http.Client
	Logger          *slog.Logger
	Now             func() time.Time
	Pins            PinStore
	Policy          Policy
	ProtocolVersion string // "" negotiates 2026-07-28, falling back to 2025-11-25 (remembered per server); set = required (ErrProtocol)
	// ClientName is sent as clientInfo.name; default "voiceauth".
	ClientName string
}

// Client connects caller-bound MCP sessions with one Config. It owns the
// cache of tool signatures already verified and the protocol revision each
// server negotiated, shared by all its sessions, so a server reconnected to
// for every phone call costs no repeated Ed25519 work and no repeated
// revision probe. Make one with New and share it.
type Client struct {
	cfg      Config
	verified mcpidentity.ToolCache
	versions versionMemo
}

// New returns a Client for cfg (copied: later changes to cfg do not reach it).
func New(cfg Config) *Client { return &Client{cfg: cfg} }

// VerifyStats reports how many tool signature sets this Client has checked
// with Ed25519 and how many it found already verified.
func (c *Client) VerifyStats() mcpidentity.CacheStats { return c.verified.Stats() }

// maxRenewals bounds token renewals per HTTP request (one MCP operation).
const maxRenewals = 2

// Session is one caller-bound MCP session. Methods are safe for concurrent use.
type Session struct {
	cfg    *Config
	cache  *mcpidentity.ToolCache
	server string
	cs     *mcp.ClientSession
	key    *jose.JSONWebKey // nil when the server has no identity (unsigned-allowed)
	tools  []*mcp.Tool
	byName map[string]*mcp.Tool
	log    *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Connect opens an MCP session to serverURL with the caller's token, checks
// the server's identity per Policy (identity/get, pin or publisher,
// identity/challenge with a fresh nonce), lists tools and keeps only those
// whose signatures verify. Any identity failure closes the session and
// returns an error wrapping ErrIdentity.
func (cl *Client) Connect(ctx context.Context, serverURL string, ts TokenSource) (*Session, error) {
	c := &cl.cfg
	if ts == nil {
		return nil, errors.New("mcpclient: nil TokenSource")
	}
	base := c.HTTPClient
	if base == nil {
		base = http.DefaultClient
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc := *base
	at := &authTransport{base: rt, ts: ts}
	at.connecting.Store(true)
	hc.Transport = at

	name := c.ClientName
	if name == "" {
		name = "voiceauth"
	}
	client := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1"},
		&mcp.ClientOptions{Capabilities: &mcp.ClientCapabilities{}})
	if err := mcpidentity.AddClientMethods(client); err != nil {
		return nil, err
	}
	pv, remembered := cl.requestVersion(serverURL)
	tr := &mcp.StreamableClientTransport{Endpoint: serverURL, HTTPClient: &hc, MaxRetries: -1, DisableStandaloneSSE: true}
	cs, err := client.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: pv})
	at.connecting.Store(false)
	if err != nil {
		if remembered {
			// The server may have changed; the next connection negotiates.
			cl.versions.forget(serverURL)
		}
		return nil, classify(ctx, "connect", err)
	}
	got := ""
	if ir := cs.InitializeResult(); ir != nil {
		got = ir.ProtocolVersion
	}
	if c.ProtocolVersion != "" && got != c.ProtocolVersion {
		_ = cs.Close()
		return nil, fmt.Errorf("%w: server speaks %q, %q required", ErrProtocol, got, c.ProtocolVersion)
	}
	if c.ProtocolVersion == "" {
		cl.versions.put(serverURL, got, c.now())
	}
	s := &Session{cfg: c, cache: &cl.verified, server: serverURL, cs: cs, byName: map[string]*mcp.Tool{}, log: c.logger().With("mcp_server", serverURL)}
	if err := s.establish(ctx); err != nil {
		_ = cs.Close()
		return nil, err
	}
	return s, nil
}

// classify maps transport-level failures to ErrUnavailable and keeps auth
// errors as they are.
func classify(ctx context.Context, op string, err error) error {
	var ae *AuthError
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, ErrIdentity) || errors.Is(err, ErrToolNotVerified) {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, ctx.Err())
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// identityCallErr sorts a failed identity/get or identity/challenge: only
// the server's own refusal (a JSON-RPC error such as invalid params, stale
// timestamp, replayed nonce, method not found) is an identity failure. A
// transport failure, an HTTP 5xx, a timeout, a closing connection or a
// server too busy to answer says nothing about who the server is: it is
// ErrUnavailable, never a false security alarm.
func identityCallErr(ctx context.Context, op string, err error) error {
	var je *jsonrpc.Error
	if errors.As(err, &je) && !outageCodes[je.Code] && ctx.Err() == nil {
		return identityErr("%s: %v", op, err)
	}
	return classify(ctx, op, err)
}

// outageCodes are JSON-RPC codes that the SDK uses for its own transport
// failures (-32005 "rejected by transport" wraps every HTTP error, -32003 and
// -32004 a closing connection) or that a server sends when it cannot work
// (-32603 internal error, also mcpidentity.Server's "busy").
var outageCodes = map[int64]bool{-32603: true, -32003: true, -32004: true, -32005: true}

func identityErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrIdentity}, args...)...)
}

// establish runs the identity check and the verified tools/list.
func (s *Session) establish(ctx context.Context) error {
	c := s.cfg
	if !mcpidentity.Advertised(s.cs) {
		if c.Policy.Mode != PolicyUnsignedAllowed {
			s.log.Warn("mcp server has no identity extension", "policy", c.Policy.Mode.String())
			return identityErr("server does not declare %s", mcpidentity.ExtensionID)
		}
	} else if err := s.checkIdentity(ctx); err != nil {
		if errors.Is(err, ErrIdentity) {
			s.log.Warn("mcp server identity refused", "err", err)
		} else {
			s.log.Warn("mcp server identity check could not complete", "err", err)
		}
		return err
	}
	return s.listTools(ctx)
}

func (s *Session) checkIdentity(ctx context.Context) error {
	c := s.cfg
	md, err := mcpidentity.Get(ctx, s.cs)
	if err != nil {
		return identityCallErr(ctx, mcpidentity.MethodGet, err)
	}
	// A key its own holder has revoked is refused under every policy: a
	// pin on it (or a first use) must not outlive the revocation.
	id, err := mcpidentity.VerifyMetadata(md)
	if err != nil {
		return identityErr("%v", err)
	}

	switch c.Policy.Mode {
	case PolicyPublisher:
		if err := id.VerifyPublisher(c.Policy.Anchors, c.now()); err != nil {
			return identityErr("%v", err)
		}
	case PolicyPinned, PolicyUnsignedAllowed:
		if c.Pins == nil {
			if c.Policy.Mode == PolicyPinned {
				return identityErr("pinned policy without a pin store")
			}
			break
		}
		if err := s.checkPin(ctx, id); err != nil {
			return err
		}
	default:
		return identityErr("unknown policy")
	}

	// Liveness and possession: the server signs our fresh nonce now, so an
	// old recorded answer cannot be replayed to us.
	p, err := mcpidentity.NewChallenge(c.now())
	if err != nil {
		return err
	}
	res, err := mcpidentity.CallChallenge(ctx, s.cs, p)
	if err != nil {
		return identityCallErr(ctx, mcpidentity.MethodChallenge, err)
	}
	if err := id.VerifyChallenge(p, res); err != nil {
		return identityErr("challenge: %v", err)
	}
	s.key = &id.Key
	return nil
}

// checkPin applies trust on first use, and accepts a changed key only with a
// rotation record signed by the pinned key that names the new one.
func (s *Session) checkPin(ctx context.Context, id *mcpidentity.Identity) error {
	c := s.cfg
	key, thumb := id.Key, id.Thumbprint
	pin, err := c.Pins.GetPin(ctx, s.server)
	switch {
	case errors.Is(err, ErrNoPin):
		p := &Pin{Server: s.server, KeyID: key.KeyID, Thumbprint: thumb, Key: id.Metadata.PublicKey, PinnedAt: c.now()}
		if err := c.Pins.PutPin(ctx, p); err != nil {
			return fmt.Errorf("mcpclient: store pin: %w", err)
		}
		s.log.Info("mcp server key pinned on first use", "kid", key.KeyID, "thumbprint", thumb)
		return nil
	case err != nil:
		return fmt.Errorf("mcpclient: read pin: %w", err)
	case pin.Thumbprint == thumb:
		return nil
	}
	pinned, err := mcpidentity.ParsePublicKey(pin.Key)
	if err != nil {
		return identityErr("stored pin unreadable")
	}
	// One rotation record, signed by the pinned key, must name the presented key.
	if id.RotatedFrom(pinned) {
		p := &Pin{Server: s.server, KeyID: key.KeyID, Thumbprint: thumb, Key: id.Metadata.PublicKey, PinnedAt: c.now()}
		if err := c.Pins.PutPin(ctx, p); err != nil {
			return fmt.Errorf("mcpclient: store pin: %w", err)
		}
		s.log.Warn("mcp server key rotated", "old_kid", pin.KeyID, "kid", key.KeyID)
		return nil
	}
	return identityErr("server key changed from pinned %s without a valid rotation record", pin.KeyID)
}

// listTools pages through tools/list and keeps the tools that verify.
func (s *Session) listTools(ctx context.Context) error {
	c := s.cfg
	var all []*mcp.Tool
	for t, err := range s.cs.Tools(ctx, nil) {
		if err != nil {
			return classify(ctx, "tools/list", err)
		}
		all = append(all, t)
	}
	now := c.now()
	for _, t := range all {
		if err := s.verify(t, now); err != nil {
			s.log.Warn("mcp tool refused", "tool", t.Name, "err", err)
			continue
		}
		if _, dup := s.byName[t.Name]; dup {
			s.log.Warn("mcp tool listed twice; refusing both", "tool", t.Name)
			s.byName[t.Name] = nil
			continue
		}
		s.byName[t.Name] = t
	}
	for _, t := range all {
		if v := s.byName[t.Name]; v == t {
			s.tools = append(s.tools, t)
		}
	}
	return nil
}

func (s *Session) verify(t *mcp.Tool, now time.Time) error {
	sig, sigErr := mcpidentity.ParseToolSignature(t)
	if s.key == nil {
		// Server without identity: allowed only under unsigned-allowed, and
		// then a signature cannot be checked, so none is trusted either way.
		if s.cfg.Policy.Mode == PolicyUnsignedAllowed {
			return nil
		}
		return ErrToolNotVerified
	}
	if errors.Is(sigErr, mcpidentity.ErrNoSignature) && s.cfg.Policy.Mode == PolicyUnsignedAllowed {
		return nil
	}
	if sigErr == nil && s.cfg.Policy.RequireExtSignature {
		if sig.ExtSignature == "" {
			return fmt.Errorf("%w: extSignature missing", ErrToolNotVerified)
		}
	}
	if err := s.cache.VerifyTool(t, *s.key, now, s.cfg.Policy.MaxToolAge); err != nil {
		return fmt.Errorf("%w: %v", ErrToolNotVerified, err)
	}
	return nil
}

// Tools returns the verified tools, in server order.
func (s *Session) Tools() []*mcp.Tool { return append([]*mcp.Tool(nil), s.tools...) }

// CallTool calls a verified tool. A 401/403 is answered by TokenSource.Renew
// and the request retried, at most twice; after that, or when renewal is
// impossible, the error is an *AuthError. Tool-level failures come back as a
// result with IsError set and a nil error.
func (s *Session) CallTool(ctx context.Context, name string, args map[string]any) (*mcp.CallToolResult, error) {
	if t := s.byName[name]; t == nil {
		return nil, fmt.Errorf("%w: %q", ErrToolNotVerified, name)
	}
	if args == nil {
		args = map[string]any{}
	}
	res, err := s.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return nil, classify(ctx, "tools/call", err)
	}
	return res, nil
}

// Close ends the MCP session (HTTP DELETE); safe to call more than once.
func (s *Session) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.cs.Close() })
	return s.closeErr
}

// authTransport puts the caller's token on every request and answers a
// 401/403 by asking the TokenSource to renew, up to maxRenewals times per
// request. It does this at the HTTP layer rather than through the SDK's
// auth.OAuthHandler because the SDK retries only once per request and a
// second non-JSON-RPC 401 would fail the whole connection; here the status
// and WWW-Authenticate are always seen and the budget is exact.
//
// While connecting, the first refusal is final for the whole handshake: the
// SDK falls back from server/discover to initialize on any error, and that
// second request must not ask the caller's TokenSource to renew again.
type authTransport struct {
	base http.RoundTripper
	ts   TokenSource

	connecting atomic.Bool
	mu         sync.Mutex
	refused    *AuthError // first refusal while connecting
}

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := a.roundTrip(req)
	var ae *AuthError
	if a.connecting.Load() && errors.As(err, &ae) {
		a.mu.Lock()
		if a.refused == nil {
			a.refused = ae
		}
		a.mu.Unlock()
	}
	return resp, err
}

func (a *authTransport) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if a.connecting.Load() {
		a.mu.Lock()
		refused := a.refused
		a.mu.Unlock()
		if refused != nil {
			return nil, refused
		}
	}
	tok, err := a.ts.Token(ctx)
	if err != nil {
		return nil, &AuthError{Challenge: AuthChallenge{MaxAge: -1}, Err: err}
	}
	for attempt := 0; ; attempt++ {
		r := req.Clone(ctx)
		if attempt > 0 {
			if req.GetBody == nil {
				return nil, errors.New("mcpclient: request body cannot be replayed")
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		if tok != "" { // no token yet: no header (an empty bearer is malformed); the 401 asks Renew
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := a.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			return resp, nil
		}
		ch := ParseChallenge(resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if req.Method != http.MethodPost || attempt >= maxRenewals || !renewable(ch) {
			return nil, &AuthError{Challenge: ch}
		}
		tok, err = a.ts.Renew(ctx, &ch)
		if err != nil {
			return nil, &AuthError{Challenge: ch, Err: err}
		}
	}
}

// renewable reports whether a new token could cure the challenge.
func renewable(ch AuthChallenge) bool {
	switch ch.Status {
	case http.StatusUnauthorized:
		return ch.Error == "" || ch.Error == "invalid_token" || ch.Error == "insufficient_user_authentication"
	case http.StatusForbidden:
		return ch.Error == "insufficient_scope"
	}
	return false
}
