package mcpidentity

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Server answers identity/get and identity/challenge for an MCP server that
// owns an Ed25519 identity key. It lives beside the verifier so the server
// (healthmcp) and the client (mcpclient) share one definition of every
// signed byte. One Server may back many go-sdk sessions (a stateless
// 2026-07-28 handler makes one per request): the replay cache is shared.
type Server struct {
	key      jose.JSONWebKey
	priv     ed25519.PrivateKey
	metadata *Metadata
	now      func() time.Time
	maxSkew  time.Duration

	mu     sync.Mutex
	nonces map[string]time.Time // seen nonce → when it may be forgotten
	limit  int
}

// ServerOptions tunes an Server; the zero value is usable.
type ServerOptions struct {
	Now          func() time.Time
	MaxSkew      time.Duration     // default DefaultMaxSkew
	Attestations []json.RawMessage // extra attestations (publisher, revocation/rotation records)
	MaxNonces    int               // replay-cache bound, default 100000; when full, new challenges are refused
}

// NewServer prepares the identity metadata (public JWK plus a self
// attestation signed now) for key.
func NewServer(key jose.JSONWebKey, opts ServerOptions) (*Server, error) {
	priv, err := privateKey(key)
	if err != nil {
		return nil, err
	}
	if key.KeyID == "" {
		return nil, errors.New("mcpidentity: identity key has no kid")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxSkew <= 0 {
		opts.MaxSkew = DefaultMaxSkew
	}
	if opts.MaxNonces <= 0 {
		opts.MaxNonces = 100000
	}
	pubJWK, err := PublicJWK(key)
	if err != nil {
		return nil, err
	}
	self, err := SelfAttestation(key, pubJWK, opts.Now())
	if err != nil {
		return nil, err
	}
	md := &Metadata{PublicKey: pubJWK, Attestations: append([]json.RawMessage{self}, opts.Attestations...)}
	return &Server{key: key, priv: priv, metadata: md, now: opts.Now, maxSkew: opts.MaxSkew,
		nonces: map[string]time.Time{}, limit: opts.MaxNonces}, nil
}

// Capabilities returns server capabilities declaring the extension (tools
// are still inferred by the SDK). Pass them as mcp.ServerOptions.Capabilities:
// the go-sdk server sends the same capabilities in the initialize result
// (2025-11-25) and in the server/discover result (2026-07-28), so one
// declaration reaches clients of both revisions.
func (s *Server) Capabilities() *mcp.ServerCapabilities {
	caps := &mcp.ServerCapabilities{}
	caps.AddExtension(ExtensionID, map[string]any{"version": ExtensionVersion})
	return caps
}

// Register installs identity/get and identity/challenge on srv.
func (s *Server) Register(srv *mcp.Server) error {
	if err := mcp.AddReceivingCustomMethod(srv, MethodGet,
		func(ctx context.Context, _ *mcp.ServerSession, _ *GetParams) (*Metadata, error) {
			md := *s.metadata
			return &md, nil
		}); err != nil {
		return err
	}
	return mcp.AddReceivingCustomMethod(srv, MethodChallenge,
		func(ctx context.Context, _ *mcp.ServerSession, p *ChallengeParams) (*ChallengeResult, error) {
			return s.Challenge(p)
		})
}

// SignTool signs t with this server's key at the server's current time.
func (s *Server) SignTool(t *mcp.Tool) error { return SignTool(t, s.key, s.now()) }

// Challenge answers one identity/challenge, refusing short nonces, stale
// timestamps and nonces it has seen within the freshness window.
func (s *Server) Challenge(p *ChallengeParams) (*ChallengeResult, error) {
	if p == nil {
		return nil, &jsonrpc.Error{Code: CodeInvalidParams, Message: "Invalid params"}
	}
	nonce, err := decodeB64(p.Challenge)
	if err != nil || len(nonce) < MinNonceBytes || len(nonce) > 1024 {
		return nil, &jsonrpc.Error{Code: CodeInvalidParams, Message: "Invalid params: challenge"}
	}
	ts, err := time.Parse(time.RFC3339, p.Timestamp)
	if err != nil {
		return nil, &jsonrpc.Error{Code: CodeInvalidParams, Message: "Invalid params: timestamp"}
	}
	now := s.now()
	if d := now.Sub(ts); d > s.maxSkew || d < -s.maxSkew {
		return nil, &jsonrpc.Error{Code: CodeStaleTimestamp, Message: "Stale timestamp"}
	}
	key := string(nonce)
	s.mu.Lock()
	for n, until := range s.nonces { // amortized sweep; the map is bounded
		if len(s.nonces) < s.limit/2 {
			break
		}
		if now.After(until) {
			delete(s.nonces, n)
		}
	}
	if until, seen := s.nonces[key]; seen && !now.After(until) {
		s.mu.Unlock()
		return nil, &jsonrpc.Error{Code: CodeReplayedNonce, Message: "Replayed nonce"}
	}
	if len(s.nonces) >= s.limit {
		s.mu.Unlock()
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "busy"}
	}
	// A nonce must be remembered for as long as its timestamp stays fresh.
	s.nonces[key] = ts.Add(s.maxSkew)
	s.mu.Unlock()
	sig := ed25519.Sign(s.priv, ChallengeMessage(nonce, p.Timestamp))
	return &ChallengeResult{Signature: b64.EncodeToString(sig), KeyID: s.key.KeyID}, nil
}
