package mcpidentity

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ErrRevoked: the presented key carries a revocation record signed by
// itself; no policy may accept it.
var ErrRevoked = errors.New("mcpidentity: server key is revoked by a revocation record it signed")

// Declared reports whether caps advertise the extension. A server declares
// it in capabilities.extensions on every revision; what differs is where the
// client reads it from (see Advertised).
func Declared(caps *mcp.ServerCapabilities) bool {
	if caps == nil {
		return false
	}
	_, ok := caps.Extensions[ExtensionID]
	return ok
}

// Advertised reports whether the server of cs declared the extension. The
// go-sdk client keeps the server's capabilities in InitializeResult on both
// revisions: from the initialize result on 2025-11-25 and earlier, and from
// the server/discover result on 2026-07-28 (which has no initialize), so one
// read serves both.
func Advertised(cs *mcp.ClientSession) bool {
	ir := cs.InitializeResult()
	return ir != nil && Declared(ir.Capabilities)
}

// AddClientMethods lets client send identity/get and identity/challenge.
func AddClientMethods(client *mcp.Client) error {
	if err := mcp.AddSendingCustomMethod[*GetParams, *Metadata](client, MethodGet); err != nil {
		return err
	}
	return mcp.AddSendingCustomMethod[*ChallengeParams, *ChallengeResult](client, MethodChallenge)
}

// Get calls identity/get. Its errors are the session's (transport or
// JSON-RPC); the answer is not checked yet (see VerifyMetadata).
func Get(ctx context.Context, cs *mcp.ClientSession) (*Metadata, error) {
	return mcp.CallCustomMethod[*GetParams, *Metadata](ctx, cs, MethodGet, &GetParams{})
}

// CallChallenge calls identity/challenge with p (see NewChallenge).
func CallChallenge(ctx context.Context, cs *mcp.ClientSession, p *ChallengeParams) (*ChallengeResult, error) {
	return mcp.CallCustomMethod[*ChallengeParams, *ChallengeResult](ctx, cs, MethodChallenge, p)
}

// Identity is a server identity whose identity/get answer checked out: an
// Ed25519 public key with a valid self attestation, not revoked by itself.
// Whether to trust the key (pin, publisher) is the caller's policy.
type Identity struct {
	Key        jose.JSONWebKey // the public key as parsed (alg as received)
	Thumbprint string          // RFC 7638 SHA-256, base64url
	Metadata   *Metadata
	pub        ed25519.PublicKey
}

// VerifyMetadata checks an untrusted identity/get result: the publicKey is
// an Ed25519 JWK (alg EdDSA, Ed25519 or absent), the REQUIRED self
// attestation verifies over the publicKey JSON exactly as received, and no
// revocation record signed by the key names it (ErrRevoked).
func VerifyMetadata(md *Metadata) (*Identity, error) {
	if md == nil {
		return nil, errors.New("mcpidentity: no identity metadata")
	}
	key, err := ParsePublicKey(md.PublicKey)
	if err != nil {
		return nil, err
	}
	pub := key.Key.(ed25519.PublicKey)
	if err := verifySelf(md, pub); err != nil {
		return nil, fmt.Errorf("self attestation: %w", err)
	}
	thumb, err := Thumbprint(key)
	if err != nil {
		return nil, err
	}
	if revokedItself(md, pub, key.KeyID, thumb) {
		return nil, fmt.Errorf("%w (kid %s)", ErrRevoked, key.KeyID)
	}
	return &Identity{Key: key, Thumbprint: thumb, Metadata: md, pub: pub}, nil
}

// VerifyPublisher accepts the identity when a publisher attestation signed
// by one of anchors, unexpired at now, is bound to this key's thumbprint.
func (id *Identity) VerifyPublisher(anchors []ed25519.PublicKey, now time.Time) error {
	return verifyPublisher(id.Metadata, id.Thumbprint, anchors, now)
}

// RotatedFrom reports whether the metadata carries a rotation record, signed
// by the pinned key, that names this key as the pinned key's replacement.
func (id *Identity) RotatedFrom(pinned jose.JSONWebKey) bool {
	pinnedTP, err := Thumbprint(pinned)
	if err != nil {
		return false
	}
	for _, raw := range id.Metadata.Attestations {
		if attestationType(raw) != "revocation" {
			continue
		}
		var r RotationRecord
		if json.Unmarshal(raw, &r) != nil || r.RevokedThumbprint != pinnedTP || r.ReplacementThumbprint != id.Thumbprint {
			continue
		}
		if VerifyRotation(r, pinned, id.Key) == nil {
			return true
		}
	}
	return false
}

// NewChallenge returns identity/challenge params with a fresh 32-byte nonce
// and now as the timestamp (RFC 3339 UTC).
func NewChallenge(now time.Time) (*ChallengeParams, error) {
	nonce, err := NewNonce()
	if err != nil {
		return nil, err
	}
	return &ChallengeParams{Challenge: nonce, Timestamp: now.UTC().Format(time.RFC3339)}, nil
}

// VerifyChallenge checks that res signs p's nonce and timestamp under this
// identity's key and names its kid: the server holds the key now, and an old
// recorded answer cannot be replayed.
func (id *Identity) VerifyChallenge(p *ChallengeParams, res *ChallengeResult) error {
	if p == nil || res == nil {
		return errBadSignature
	}
	if res.KeyID != id.Key.KeyID {
		return errors.New("mcpidentity: challenge kid mismatch")
	}
	raw, err := decodeB64(p.Challenge)
	if err != nil {
		return errBadSignature
	}
	return verifySig(id.pub, ChallengeMessage(raw, p.Timestamp), res.Signature)
}
