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
	Subject string
	Scopes  []string
	ACR     string
	Expiry  time.Time
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

func (c *tokenCache) put(k [32]byte, g *grant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= tokenCacheMax {
		c.m = map[[32]byte]*grant{}
	}
	c.m[k] = g
}

// verifyToken checks signature (ES256 only), typ at+jwt, iss, aud, exp, sub.
func (s *Server) verifyToken(ctx context.Context, raw string) (*grant, error) {
	k := sha256.Sum256([]byte(raw))
	if g := s.tokens.get(k, s.now()); g != nil {
		return g, nil
	}
	g, err := s.verifyTokenSlow(ctx, raw)
	if err == nil {
		s.tokens.put(k, g)
	}
	return g, err
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
	return &grant{Subject: c.Subject, Scopes: strings.Fields(c.Scope), ACR: c.ACR, Expiry: c.Expiry.Time()}, nil
}

// rpcPeek is the part of a JSON-RPC request the middleware needs.
type rpcPeek struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Name      string                     `json:"name"`
		Arguments map[string]json.RawMessage `json:"arguments"`
	} `json:"params"`
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
		var msgs []rpcPeek
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
			if err != nil {
				http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			msgs = peekRPC(body)
		}
		for i := range msgs {
			m := &msgs[i]
			if m.Method != "tools/call" {
				continue
			}
			p, ok := toolPolicies[m.Params.Name]
			if !ok {
				continue // the SDK answers "unknown tool"
			}
			for arg := range m.Params.Arguments {
				if !slices.Contains(p.args, arg) {
					// Tools act on the token's patient only; any other
					// argument (patient_id, mrn, …) is an attempt to reach
					// another record.
					s.deny(w, r, g, m, denial{status: http.StatusForbidden, err: "access_denied", reason: "unexpected_argument"})
					return
				}
			}
			if !slices.Contains(g.Scopes, p.scope) {
				s.deny(w, r, g, m, denial{status: http.StatusForbidden, err: "insufficient_scope", scope: p.scope, reason: "insufficient_scope"})
				return
			}
			if p.acr != "" && acrRank(g.ACR) < acrRank(p.acr) {
				s.deny(w, r, g, m, denial{status: http.StatusUnauthorized, err: "insufficient_user_authentication", acr: p.acr, reason: "acr_too_low"})
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), grantKey{}, g)))
	})
}

// peekRPC decodes a single message or a batch; undecodable bodies yield
// nothing and are left to the SDK to reject.
func peekRPC(body []byte) []rpcPeek {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var batch []rpcPeek
		if json.Unmarshal(body, &batch) == nil {
			return batch
		}
		return nil
	}
	var one rpcPeek
	if json.Unmarshal(body, &one) == nil {
		return []rpcPeek{one}
	}
	return nil
}

// deny writes the challenge and a JSON-RPC error body (so SDK clients keep
// their connection), and audits refusals of verified tokens.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, g *grant, m *rpcPeek, d denial) {
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
	if m != nil && len(m.ID) > 0 {
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
		tool = m.Params.Name
	}
	subject := session.Pseudonym(s.cfg.LogKey, "patient", g.Subject)
	s.log.Info("mcp request denied", "subject", subject, "tool", tool, "reason", d.reason, "status", d.status)
	s.audit(r.Context(), subject, tool, d.reason)
}
