package authserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/voiceauth/voiceauth/session"
)

// Client kinds of the registry: what a registered client may do at the AS.
const (
	KindVoice    = "voice"    // may use the authorization challenge endpoint
	KindHost     = "host"     // may register subject tokens for calls (checked by the voice service)
	KindExchange = "exchange" // may use RFC 8693 token exchange
)

// Client authentication methods of the registry.
const (
	AuthSecret        = "secret"          // client_secret_basic with a generated secret
	AuthPrivateKeyJWT = "private_key_jwt" // RFC 7523 assertions signed with a key of the client's JWKS
)

// Registry errors (match with errors.Is).
var (
	ErrClientExists   = errors.New("authserver: client already exists")
	ErrClientNotFound = errors.New("authserver: no such client")
	ErrClientInvalid  = errors.New("authserver: invalid client registration")
)

// DefaultSecretGrace is how long a rotated-out secret keeps working.
const DefaultSecretGrace = 24 * time.Hour

var reClientID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Registry is the client registry kept in the store, so every instance
// sharing the store sees every client the moment it is added or removed.
// Secrets are generated here and kept only as SHA-256 hashes (they are 256
// random bits, so a plain hash is enough).
type Registry struct {
	Store Store         // must implement session.ClientStore (every store from session.Open does)
	Grace time.Duration // DefaultSecretGrace when zero
	Now   func() time.Time
}

// RegisteredClient is what List reports: never a secret or its hash.
type RegisteredClient struct {
	ID, Kind, Auth  string
	PrevSecretUntil time.Time // zero when no rotated-out secret is still valid
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// clientData is the sealed, store-opaque part of a registry entry.
type clientData struct {
	Auth      string          `json:"auth"`
	Secret    []byte          `json:"secret,omitempty"` // SHA-256 of the current secret
	Prev      []byte          `json:"prev,omitempty"`   // SHA-256 of the rotated-out secret
	PrevUntil time.Time       `json:"prev_until,omitzero"`
	JWKS      json.RawMessage `json:"jwks,omitempty"`
}

func (r *Registry) store() (session.ClientStore, error) {
	cs, ok := r.Store.(session.ClientStore)
	if !ok || r.Store == nil {
		return nil, errors.New("authserver: the store has no client registry")
	}
	return cs, nil
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Registry) grace() time.Duration {
	if r.Grace > 0 {
		return r.Grace
	}
	return DefaultSecretGrace
}

// ValidKind reports whether kind is one of the registry's kinds.
func ValidKind(kind string) bool {
	return kind == KindVoice || kind == KindHost || kind == KindExchange
}

// Add registers a client. For AuthSecret it returns the generated secret,
// the only time it is ever shown; for AuthPrivateKeyJWT, jwks (a JSON Web
// Key Set of public keys) is required and the secret is "".
func (r *Registry) Add(ctx context.Context, id, kind, auth string, jwks []byte) (string, error) {
	cs, err := r.store()
	if err != nil {
		return "", err
	}
	if !reClientID.MatchString(id) {
		return "", fmt.Errorf("%w: client id must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrClientInvalid)
	}
	if !ValidKind(kind) {
		return "", fmt.Errorf("%w: kind must be voice, host or exchange", ErrClientInvalid)
	}
	var d clientData
	var secret string
	switch auth {
	case AuthSecret, "":
		if len(jwks) > 0 {
			return "", fmt.Errorf("%w: a JWKS is only for --auth private_key_jwt", ErrClientInvalid)
		}
		secret = randomToken(32)
		sum := sha256.Sum256([]byte(secret))
		d = clientData{Auth: AuthSecret, Secret: sum[:]}
	case AuthPrivateKeyJWT:
		set, err := parsePublicJWKS(jwks)
		if err != nil {
			return "", err
		}
		canon, _ := json.Marshal(set)
		d = clientData{Auth: AuthPrivateKeyJWT, JWKS: canon}
	default:
		return "", fmt.Errorf("%w: auth must be secret or private_key_jwt", ErrClientInvalid)
	}
	data, _ := json.Marshal(d)
	if err := cs.CreateClient(ctx, &session.Client{ID: id, Kind: kind, Data: data}); err != nil {
		if errors.Is(err, session.ErrExists) {
			return "", ErrClientExists
		}
		return "", err
	}
	r.audit(ctx, "client.added", id, map[string]string{"client_id": id, "kind": kind, "auth": d.Auth})
	return secret, nil
}

// parsePublicJWKS accepts a JWKS of valid public signing keys only: a
// private key handed to the AS by mistake is refused, not stored.
func parsePublicJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: --auth private_key_jwt needs --jwks FILE", ErrClientInvalid)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%w: the JWKS is not a JSON Web Key Set", ErrClientInvalid)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: the JWKS has no keys", ErrClientInvalid)
	}
	for _, k := range set.Keys {
		if !k.Valid() {
			return nil, fmt.Errorf("%w: the JWKS has an invalid key", ErrClientInvalid)
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("%w: the JWKS holds a private key; give only the public keys", ErrClientInvalid)
		}
	}
	return &set, nil
}

// RotateSecret gives a secret client a new secret (returned once). The
// previous secret keeps working for the grace period, so deployments can
// roll the new one out without a gap; the one before that stops at once.
func (r *Registry) RotateSecret(ctx context.Context, id string) (secret string, prevUntil time.Time, err error) {
	cs, err := r.store()
	if err != nil {
		return "", time.Time{}, err
	}
	for range 5 { // retry a lost compare-and-swap against a concurrent rotation
		c, err := cs.GetClient(ctx, id)
		if errors.Is(err, session.ErrNotFound) {
			return "", time.Time{}, ErrClientNotFound
		}
		if err != nil {
			return "", time.Time{}, err
		}
		var d clientData
		if err := json.Unmarshal(c.Data, &d); err != nil {
			return "", time.Time{}, fmt.Errorf("authserver: client %s: unreadable registry entry", id)
		}
		if d.Auth != AuthSecret {
			return "", time.Time{}, fmt.Errorf("%w: client %s authenticates with private_key_jwt; it has no secret to rotate", ErrClientInvalid, id)
		}
		secret = randomToken(32)
		sum := sha256.Sum256([]byte(secret))
		d.Prev, d.PrevUntil, d.Secret = d.Secret, r.now().Add(r.grace()), sum[:]
		c.Data, _ = json.Marshal(d)
		err = cs.UpdateClient(ctx, c)
		if errors.Is(err, session.ErrConflict) {
			continue
		}
		if errors.Is(err, session.ErrNotFound) {
			return "", time.Time{}, ErrClientNotFound
		}
		if err != nil {
			return "", time.Time{}, err
		}
		r.audit(ctx, "client.secret_rotated", id, map[string]string{"client_id": id, "kind": c.Kind})
		return secret, d.PrevUntil, nil
	}
	return "", time.Time{}, errors.New("authserver: client changed concurrently; try again")
}

// Remove deletes a client; its credentials stop working on every instance.
func (r *Registry) Remove(ctx context.Context, id string) error {
	cs, err := r.store()
	if err != nil {
		return err
	}
	if err := cs.DeleteClient(ctx, id); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			return ErrClientNotFound
		}
		return err
	}
	r.audit(ctx, "client.removed", id, map[string]string{"client_id": id})
	return nil
}

// List returns every registered client, ordered by id, without secrets.
func (r *Registry) List(ctx context.Context) ([]RegisteredClient, error) {
	cs, err := r.store()
	if err != nil {
		return nil, err
	}
	rows, err := cs.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now()
	out := make([]RegisteredClient, 0, len(rows))
	for _, c := range rows {
		var d clientData
		json.Unmarshal(c.Data, &d)
		rc := RegisteredClient{ID: c.ID, Kind: c.Kind, Auth: d.Auth, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
		if len(d.Prev) > 0 && now.Before(d.PrevUntil) {
			rc.PrevSecretUntil = d.PrevUntil
		}
		out = append(out, rc)
	}
	return out, nil
}

// Kind returns a registered client's kind, or ErrClientNotFound. It says
// nothing about credentials: authenticate the client first.
func (r *Registry) Kind(ctx context.Context, id string) (string, error) {
	cs, err := r.store()
	if err != nil {
		return "", err
	}
	c, err := cs.GetClient(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		return "", ErrClientNotFound
	}
	if err != nil {
		return "", err
	}
	return c.Kind, nil
}

// client loads a registered client as the AS's Client: nil, nil when there
// is none.
func (r *Registry) client(ctx context.Context, id string) (*Client, error) {
	if !reClientID.MatchString(id) {
		return nil, nil
	}
	cs, err := r.store()
	if err != nil {
		return nil, err
	}
	row, err := cs.GetClient(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d clientData
	if err := json.Unmarshal(row.Data, &d); err != nil {
		return nil, fmt.Errorf("authserver: client registry entry %s is unreadable", id)
	}
	c := &Client{ID: id, Kind: row.Kind,
		FirstParty: row.Kind == KindVoice, TokenExchange: row.Kind == KindExchange}
	switch d.Auth {
	case AuthSecret:
		if len(d.Secret) != sha256.Size {
			return nil, fmt.Errorf("authserver: client registry entry %s has no secret", id)
		}
		copy(c.SecretSHA256[:], d.Secret)
		if len(d.Prev) == sha256.Size {
			copy(c.PrevSecretSHA256[:], d.Prev)
			c.PrevSecretUntil = d.PrevUntil
		}
	case AuthPrivateKeyJWT:
		set, err := parsePublicJWKS(d.JWKS)
		if err != nil {
			return nil, err
		}
		c.JWKS = set
	default:
		return nil, fmt.Errorf("authserver: client registry entry %s has unknown auth %q", id, d.Auth)
	}
	return c, nil
}

func (r *Registry) audit(ctx context.Context, typ, id string, detail map[string]string) {
	if r.Store == nil {
		return
	}
	// Best effort: the change is made; a failed audit append must not undo it.
	r.Store.AppendAudit(ctx, &session.AuditEvent{Time: r.now(), Type: typ, Actor: "operator", Outcome: "ok", Detail: detail})
}

// lookupClient finds a client: configured clients first, then the registry.
// nil, nil means no such client.
func (s *Server) lookupClient(ctx context.Context, id string) (*Client, error) {
	if c := s.clients[id]; c != nil {
		return c, nil
	}
	if s.cfg.Registry == nil || id == "" {
		return nil, nil
	}
	return s.cfg.Registry.client(ctx, id)
}

// ClientKind reports the kind of a client (configured or registered): the
// voice service asks it whether an authenticated caller of
// POST /v1/calls/{CallSid}/subject-token is a host. "" when unknown.
func (s *Server) ClientKind(ctx context.Context, id string) (string, error) {
	c, err := s.lookupClient(ctx, id)
	if err != nil || c == nil {
		return "", err
	}
	return c.Kind, nil
}

// secretMatches compares in constant time against the current secret and,
// until it expires, the rotated-out one.
func (c *Client) secretMatches(sum [32]byte, now time.Time) bool {
	cur := c.SecretSHA256 != [32]byte{} && constantEq(sum[:], c.SecretSHA256[:])
	prev := c.PrevSecretSHA256 != [32]byte{} && constantEq(sum[:], c.PrevSecretSHA256[:])
	return cur || prev && now.Before(c.PrevSecretUntil)
}

func constantEq(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
