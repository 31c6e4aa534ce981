package healthmcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/session"
)

// Scopes and ACR values (shared facts).
const (
	ScopeAppointments = "appointments:read"
	ScopeMedications  = "medications:read"
	ScopeRefill       = "prescriptions:refill"
	ACRKBA            = "urn:voiceauth:acr:kba"
	ACRKBAOTP         = "urn:voiceauth:acr:kba-otp"
)

// toolPolicy is what one tool needs from the token, and which arguments it takes.
type toolPolicy struct {
	scope string
	acr   string // "" = any acr
	args  []string
}

var toolPolicies = map[string]toolPolicy{
	"list_appointments": {scope: ScopeAppointments},
	"list_medications":  {scope: ScopeMedications, acr: ACRKBAOTP},
	"request_refill":    {scope: ScopeRefill, acr: ACRKBAOTP, args: []string{"medication_id"}},
}

// acrRank orders the ACR values this server knows; unknown values rank 0.
func acrRank(acr string) int {
	switch acr {
	case ACRKBA:
		return 1
	case ACRKBAOTP:
		return 2
	}
	return 0
}

// claims are the access-token claims this server reads (RFC 9068).
type claims struct {
	jwt.Claims
	Scope    string `json:"scope"`
	ACR      string `json:"acr"`
	ClientID string `json:"client_id"`
}

// grant is a verified token, kept in the request context.
type grant struct {
	Subject  string
	Scopes   []string
	ACR      string
	ClientID string
	JTI      string // the revocation record's key
	Expiry   time.Time
}

type grantKey struct{}

func grantFrom(ctx context.Context) *grant {
	g, _ := ctx.Value(grantKey{}).(*grant)
	return g
}

var errInvalidToken = errors.New("invalid token")

// jwks fetches and caches the AS signing keys; an unknown kid triggers a
// refetch, at most once per minRefetch so a flood of bad kids cannot DoS the AS.
type jwks struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	keys      map[string]jose.JSONWebKey
	fetchedAt time.Time
}

const minRefetch = 10 * time.Second

func (j *jwks) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if k, ok := j.keys[kid]; ok {
		return k, nil
	}
	if !j.fetchedAt.IsZero() && j.now().Sub(j.fetchedAt) < minRefetch {
		return jose.JSONWebKey{}, fmt.Errorf("%w: unknown kid", errInvalidToken)
	}
	if err := j.fetch(ctx); err != nil {
		return jose.JSONWebKey{}, err
	}
	if k, ok := j.keys[kid]; ok {
		return k, nil
	}
	return jose.JSONWebKey{}, fmt.Errorf("%w: unknown kid", errInvalidToken)
}

func (j *jwks) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return fmt.Errorf("healthmcp: fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthmcp: fetch JWKS: HTTP %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("healthmcp: JWKS: %w", err)
	}
	keys := map[string]jose.JSONWebKey{}
	for _, k := range set.Keys {
		if k.KeyID != "" && k.IsPublic() && k.Valid() {
			keys[k.KeyID] = k
		}
	}
	j.keys = keys
	j.fetchedAt = j.now()
	return nil
}

// tokenCache remembers verified tokens by SHA-256 so that the several HTTP
// requests of one MCP session pay for one ES256 verification. Expiry is
// re-checked on every hit; the cache is dropped whole when full.
type tokenCache struct {
	mu sync.Mutex
	m  map[[32]byte]*grant
}

const tokenCacheMax = 10000

func (c *tokenCache) get(k [32]byte, now time.Time) *grant {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.m[k]
	if g != nil && !now.Before(g.Expiry.Add(30*time.Second)) {
		delete(c.m, k)
		return nil
	}
	return g
}

func (c *tokenCache) drop(k [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

func (c *tokenCache) put(k [32]byte, g *grant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= tokenCacheMax {
		c.m = map[[32]byte]*grant{}
	}
	c.m[k] = g
}

// verifyToken checks signature (ES256 only), typ at+jwt, iss, aud, exp, sub,
// then the store's revocation record. Only the signature check is cached:
// revocation is looked up on every request (one indexed read), so a token
// the AS revokes stops working at its next request.
func (s *Server) verifyToken(ctx context.Context, raw string) (*grant, error) {
	k := sha256.Sum256([]byte(raw))
	g := s.tokens.get(k, s.now())
	if g == nil {
		var err error
		if g, err = s.verifyTokenSlow(ctx, raw); err != nil {
			return nil, err
		}
		s.tokens.put(k, g)
	}
	if s.cfg.Store == nil {
		return g, nil
	}
	if g.JTI == "" {
		return nil, fmt.Errorf("%w: no jti, cannot be revoked", errInvalidToken)
	}
	revoked, err := s.cfg.Store.TokenRevoked(ctx, g.JTI)
	if err != nil {
		return nil, fmt.Errorf("healthmcp: revocation check: %w", err)
	}
	if revoked {
		s.tokens.drop(k)
		return nil, fmt.Errorf("%w: revoked", errInvalidToken)
	}
	return g, nil
}

func (s *Server) verifyTokenSlow(ctx context.Context, raw string) (*grant, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, errInvalidToken
	}
	h := tok.Headers[0]
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, errInvalidToken
	}
	key, err := s.jwks.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	var c claims
	if err := tok.Claims(key.Key, &c); err != nil {
		return nil, errInvalidToken
	}
	if c.Expiry == nil || c.Subject == "" {
		return nil, errInvalidToken
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: s.cfg.Issuer, AnyAudience: jwt.Audience{s.cfg.Resource}, Time: s.now()}, 30*time.Second); err != nil {
		return nil, errInvalidToken
	}
	return &grant{Subject: c.Subject, Scopes: strings.Fields(c.Scope), ACR: c.ACR, ClientID: c.ClientID, JTI: c.ID, Expiry: c.Expiry.Time()}, nil
}

// denial is one authorization refusal, mapped to HTTP in one place.
type denial struct {
	status int
	err    string // RFC 6750 / RFC 9470 error code; "" for a missing token
	scope  string
	acr    string
	reason string // audit detail, non-PHI
}

// authorize is the per-request token check; it runs before the SDK so that
// the status code and WWW-Authenticate reach the client.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		fields := strings.Fields(r.Header.Get("Authorization"))
		if len(fields) != 2 || !strings.EqualFold(fields[0], "Bearer") {
			s.deny(w, r, nil, nil, denial{status: http.StatusUnauthorized, scope: ScopeAppointments})
			return
		}
		g, err := s.verifyToken(r.Context(), fields[1])
		if err != nil {
			if !errors.Is(err, errInvalidToken) {
				s.log.Warn("token verification unavailable", "err", err)
				http.Error(w, "authorization temporarily unavailable", http.StatusServiceUnavailable)
				return
			}
			s.deny(w, r, nil, nil, denial{status: http.StatusUnauthorized, err: "invalid_token", reason: "invalid_token"})
			return
		}
		// Every request needs at least the base scope.
		if !slices.Contains(g.Scopes, ScopeAppointments) && !slices.Contains(g.Scopes, ScopeMedications) && !slices.Contains(g.Scopes, ScopeRefill) {
			s.deny(w, r, g, nil, denial{status: http.StatusForbidden, err: "insufficient_scope", scope: ScopeAppointments, reason: "no_scope"})
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodDelete:
			// No JSON-RPC message: the SSE stream and session close.
		case http.MethodPost:
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
				return
			}
			m, err := readRPC(body)
			if err != nil {
				s.refuseBody(w, r, g, err)
				return
			}
			if err := checkHeaders(r.Header, m); err != nil {
				s.refuseHeaders(w, r, g, m, err)
				return
			}
			// The SDK reads the gate's canonical re-encoding, never the
			// client's bytes: one reading.
			r.Body = io.NopCloser(bytes.NewReader(m.Body))
			r.ContentLength = int64(len(m.Body))
			r.Header.Del("Content-Length")
			if d, ok := checkCall(g, m); !ok {
				s.deny(w, r, g, m, d)
				return
			}
		default:
			w.Header().Set("Allow", "GET, POST, DELETE")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), grantKey{}, g)))
	})
}

// maxBody bounds a POSTed JSON-RPC message (the SDK's own bound is larger).
const maxBody = 1 << 20

// refuseBody answers a body the strict reader would not read: 400 with a
// JSON-RPC error, never a pass to the SDK. Refusals of verified tokens are
// audited like other denials.
func (s *Server) refuseBody(w http.ResponseWriter, r *http.Request, g *grant, err error) {
	code, msg := -32600, "invalid request"
	if isBodyErr(err) {
		code, msg = -32700, err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": code, "message": msg}})
	subject := session.Pseudonym(s.cfg.LogKey, "patient", g.Subject)
	s.log.Info("mcp request denied", "subject", subject, "reason", "unreadable_body", "status", http.StatusBadRequest)
	s.audit(r.Context(), "mcp.denied", subject, "denied", map[string]string{"reason": "unreadable_body", "client_id": g.ClientID, "acr": g.ACR})
}

// deny writes the challenge and a JSON-RPC error body (so SDK clients keep
// their connection), and audits refusals of verified tokens.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, g *grant, m *rpcMsg, d denial) {
	params := []string{fmt.Sprintf("resource_metadata=%q", s.prmURL)}
	if d.err != "" {
		params = append([]string{fmt.Sprintf("error=%q", d.err)}, params...)
	}
	if d.scope != "" {
		params = append(params, fmt.Sprintf("scope=%q", d.scope))
	}
	if d.acr != "" {
		params = append(params, fmt.Sprintf("acr_values=%q", d.acr))
	}
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(d.status)
	var id json.RawMessage
	if m != nil && m.ID != nil {
		id = m.ID
	}
	msg := d.err
	if msg == "" {
		msg = "unauthorized"
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": -32001, "message": msg}})

	if g == nil {
		return
	}
	tool := ""
	if m != nil {
		tool = m.Tool
	}
	subject := session.Pseudonym(s.cfg.LogKey, "patient", g.Subject)
	s.log.Info("mcp request denied", "subject", subject, "tool", tool, "reason", d.reason, "status", d.status)
	s.audit(r.Context(), "mcp.denied", subject, "denied", map[string]string{"tool": tool, "reason": d.reason, "client_id": g.ClientID, "acr": g.ACR})
}
