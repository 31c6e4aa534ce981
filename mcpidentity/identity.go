package mcpidentity

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gowebpki/jcs"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Wire names of the server-identity extension (ext-auth PR #17, ex-SEP-2267).
const (
	ExtensionID      = "io.modelcontextprotocol/server-identity"
	ExtensionVersion = "1.0.0"
	MethodGet        = "identity/get"
	MethodChallenge  = "identity/challenge"

	// JSON-RPC error codes of identity/challenge, as the draft assigns them.
	CodeStaleTimestamp = -32001
	CodeReplayedNonce  = -32002
	CodeInvalidParams  = -32602

	// MinNonceBytes is the shortest challenge nonce a server accepts.
	MinNonceBytes = 32
	// DefaultMaxSkew is how far a challenge timestamp may be from the verifier's clock.
	DefaultMaxSkew = 5 * time.Minute
)

// ErrNoSignature: a listed tool carries no _meta[ExtensionID] signature
// (a policy may allow that; a signature that fails is never allowed).
var ErrNoSignature = errors.New("mcpidentity: tool carries no server-identity signature")

// Errors of the identity helpers; a client wraps them in its own vocabulary.
var (
	errBadKey       = errors.New("mcpidentity: not an Ed25519 public key")
	errBadAlg       = errors.New("mcpidentity: JWK alg is neither EdDSA nor Ed25519")
	errBadSignature = errors.New("mcpidentity: signature does not verify")
	errStale        = errors.New("mcpidentity: timestamp outside the accepted window")
	errKeyMismatch  = errors.New("mcpidentity: key id does not match the server key")
)

// b64 is the encoding the draft uses everywhere: base64url without padding.
var b64 = base64.RawURLEncoding

// decodeB64 accepts padded and unpadded base64url (the draft only says
// "no padding" for the DNS fingerprint; we emit unpadded and accept both).
func decodeB64(s string) ([]byte, error) {
	return b64.DecodeString(strings.TrimRight(s, "="))
}

// canonical returns the RFC 8785 (JCS) form of v.
func canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// GenerateKey returns a fresh Ed25519 private JWK whose kid is its
// RFC 7638 thumbprint (base64url SHA-256), so the kid names the key.
func GenerateKey() (jose.JSONWebKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	return keyFrom(priv)
}

// keyFrom wraps an Ed25519 private key as a JWK with a thumbprint kid.
func keyFrom(priv ed25519.PrivateKey) (jose.JSONWebKey, error) {
	k := jose.JSONWebKey{Key: priv, Use: "sig", Algorithm: string(jose.EdDSA)}
	pub := k.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k.KeyID = b64.EncodeToString(tp)
	return k, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of k's public part, base64url.
func Thumbprint(k jose.JSONWebKey) (string, error) {
	pub := k.Public()
	if !pub.Valid() {
		return "", errBadKey
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return b64.EncodeToString(tp), nil
}

// PublicJWK returns the JSON of k's public part exactly as the server sends it
// in identity/get: {"kty","crv","x","kid","use"} (no "alg", no "d").
func PublicJWK(k jose.JSONWebKey) ([]byte, error) {
	pub := k.Public()
	if !pub.Valid() {
		return nil, errBadKey
	}
	pub.Algorithm = ""
	return pub.MarshalJSON()
}

// Algorithm names a JWK may carry in "alg" for an Ed25519 key: RFC 8037's
// polymorphic "EdDSA" and RFC 9864's fully specified "Ed25519". Both mean
// the same raw Ed25519 signature; an absent "alg" is accepted too.
const (
	AlgEdDSA   = "EdDSA"
	AlgEd25519 = "Ed25519"
)

// ParsePublicKey parses an untrusted JWK: it must be OKP/Ed25519, public, 32
// bytes, and its "alg", if any, EdDSA or Ed25519 (any other alg names a
// different signature scheme and is refused). go-jose's own checks are not
// enough for untrusted input (its docs say so), and go-jose knows no
// "Ed25519" algorithm, so the members are checked here before go-jose
// decodes the key; the returned key keeps the alg as received.
func ParsePublicKey(raw []byte) (jose.JSONWebKey, error) {
	var probe struct {
		Kty string          `json:"kty"`
		Crv string          `json:"crv"`
		D   string          `json:"d"`
		Alg json.RawMessage `json:"alg"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("%w: %v", errBadKey, err)
	}
	if probe.Kty != "OKP" || probe.Crv != "Ed25519" || probe.D != "" {
		return jose.JSONWebKey{}, errBadKey
	}
	if probe.Alg != nil { // present: a string naming Ed25519 (null is not a name)
		var alg string
		if json.Unmarshal(probe.Alg, &alg) != nil || (alg != AlgEdDSA && alg != AlgEd25519) {
			return jose.JSONWebKey{}, fmt.Errorf("%w: alg %.40s", errBadAlg, probe.Alg)
		}
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("%w: %v", errBadKey, err)
	}
	pub, ok := k.Key.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize || !k.IsPublic() {
		return jose.JSONWebKey{}, errBadKey
	}
	// go-jose matches member names exactly, encoding/json (the probe) does
	// not: check the alg go-jose kept too, so {"alg":"RS256","ALG":"EdDSA"}
	// cannot slip through.
	if k.Algorithm != "" && k.Algorithm != AlgEdDSA && k.Algorithm != AlgEd25519 {
		return jose.JSONWebKey{}, fmt.Errorf("%w: alg %q", errBadAlg, k.Algorithm)
	}
	return k, nil
}

func privateKey(k jose.JSONWebKey) (ed25519.PrivateKey, error) {
	priv, ok := k.Key.(ed25519.PrivateKey)
	if !ok || len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("mcpidentity: not an Ed25519 private key")
	}
	return priv, nil
}

func publicKey(k jose.JSONWebKey) (ed25519.PublicKey, error) {
	switch key := k.Key.(type) {
	case ed25519.PublicKey:
		if len(key) == ed25519.PublicKeySize {
			return key, nil
		}
	case ed25519.PrivateKey:
		if len(key) == ed25519.PrivateKeySize {
			return key.Public().(ed25519.PublicKey), nil
		}
	}
	return nil, errBadKey
}

// verifySig checks a base64url raw Ed25519 signature over msg.
func verifySig(pub ed25519.PublicKey, msg []byte, sigB64 string) error {
	sig, err := decodeB64(sigB64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errBadSignature
	}
	if !ed25519.Verify(pub, msg, sig) {
		return errBadSignature
	}
	return nil
}

// ---------------------------------------------------------------------------
// Tool signatures.

// ToolSignature is the value of a tool's _meta[ExtensionID].
type ToolSignature struct {
	Signature    string `json:"signature"`              // draft: over JCS{name, description, inputSchema[, outputSchema]}
	KeyID        string `json:"kid"`                    // the server key's kid
	SignedAt     string `json:"signedAt"`               // RFC 3339 UTC
	ExtSignature string `json:"extSignature,omitempty"` // ours: also covers title, annotations, signedAt, kid
}

// toolFields returns the tool's members as they appear on the wire, so that
// server (typed schemas) and client (map schemas) canonicalize the same JSON.
func toolFields(t *mcp.Tool) (map[string]json.RawMessage, error) {
	c := *t
	c.Meta = nil
	raw, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// ToolPayloads returns the exact JCS bytes behind "signature" (draft) and
// "extSignature" (ours). An absent description is signed as "" in both (the
// draft leaves this open); absent title is "", absent schemas and annotations
// are null in the extended payload.
func ToolPayloads(t *mcp.Tool, kid, signedAt string) (draft, ext []byte, err error) {
	m, err := toolFields(t)
	if err != nil {
		return nil, nil, err
	}
	str := func(name string) json.RawMessage {
		if v, ok := m[name]; ok {
			return v
		}
		return json.RawMessage(`""`)
	}
	obj := func(name string) json.RawMessage {
		if v, ok := m[name]; ok {
			return v
		}
		return json.RawMessage(`null`)
	}
	d := map[string]json.RawMessage{
		"name":        str("name"),
		"description": str("description"),
		"inputSchema": obj("inputSchema"),
	}
	if v, ok := m["outputSchema"]; ok && !bytes.Equal(v, []byte("null")) {
		d["outputSchema"] = v
	}
	if draft, err = canonical(d); err != nil {
		return nil, nil, err
	}
	kidJSON, _ := json.Marshal(kid)
	atJSON, _ := json.Marshal(signedAt)
	e := map[string]json.RawMessage{
		"name":         str("name"),
		"title":        str("title"),
		"description":  str("description"),
		"inputSchema":  obj("inputSchema"),
		"outputSchema": obj("outputSchema"),
		"annotations":  obj("annotations"),
		"signedAt":     atJSON,
		"kid":          kidJSON,
	}
	if ext, err = canonical(e); err != nil {
		return nil, nil, err
	}
	return draft, ext, nil
}

// SignTool signs t with the server's private identity key and stores both
// signatures in t.Meta[ExtensionID]. Call it after the schemas are final.
func SignTool(t *mcp.Tool, key jose.JSONWebKey, signedAt time.Time) error {
	priv, err := privateKey(key)
	if err != nil {
		return err
	}
	at := signedAt.UTC().Format(time.RFC3339)
	draft, ext, err := ToolPayloads(t, key.KeyID, at)
	if err != nil {
		return err
	}
	if t.Meta == nil {
		t.Meta = mcp.Meta{}
	}
	t.Meta[ExtensionID] = map[string]any{
		"signature":    b64.EncodeToString(ed25519.Sign(priv, draft)),
		"kid":          key.KeyID,
		"signedAt":     at,
		"extSignature": b64.EncodeToString(ed25519.Sign(priv, ext)),
	}
	return nil
}

// ParseToolSignature extracts _meta[ExtensionID] from a listed tool; a tool
// without one (or with an empty signature) gives ErrNoSignature.
func ParseToolSignature(t *mcp.Tool) (*ToolSignature, error) {
	v, ok := t.Meta[ExtensionID]
	if !ok || v == nil {
		return nil, ErrNoSignature
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var s ToolSignature
	if err := json.Unmarshal(raw, &s); err != nil || s.Signature == "" {
		return nil, ErrNoSignature
	}
	return &s, nil
}

// VerifyTool checks a listed tool against the server's public key: the draft
// signature always, extSignature whenever present, kid equal to the key's, and
// signedAt not in the future (beyond DefaultMaxSkew) nor older than maxAge
// (maxAge 0 = no age limit). It remembers nothing; see ToolCache.
func VerifyTool(t *mcp.Tool, pub jose.JSONWebKey, now time.Time, maxAge time.Duration) error {
	return (*ToolCache)(nil).VerifyTool(t, pub, now, maxAge)
}

// ToolCache remembers (key, signed bytes, signatures) tuples that verified,
// so a client reconnecting to the same server for every phone call does not
// repeat the Ed25519 work. The freshness checks (kid, signedAt, maxAge) run
// on every call; only the signature arithmetic is skipped. Bounded: dropped
// whole when full. The zero value is ready; a nil *ToolCache caches nothing.
// It must not be copied after first use.
type ToolCache struct {
	mu    sync.Mutex
	m     map[[32]byte]struct{}
	stats CacheStats
}

// CacheStats counts a ToolCache's work since it was made.
type CacheStats struct {
	Verified int64 // signature sets checked with Ed25519 (a miss)
	Hits     int64 // signature sets found already verified
}

const toolCacheMax = 4096

// Stats returns the counters so far.
func (c *ToolCache) Stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

func (c *ToolCache) has(k [32]byte) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[k]
	if ok {
		c.stats.Hits++
	}
	return ok
}

func (c *ToolCache) add(k [32]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= toolCacheMax {
		c.m = map[[32]byte]struct{}{}
	}
	c.m[k] = struct{}{}
}

func (c *ToolCache) counted() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.stats.Verified++
	c.mu.Unlock()
}

// VerifyTool is the package's VerifyTool, skipping the signature check for
// a tool whose exact signed bytes and signatures this cache has verified
// under the same key.
func (c *ToolCache) VerifyTool(t *mcp.Tool, pub jose.JSONWebKey, now time.Time, maxAge time.Duration) error {
	s, err := ParseToolSignature(t)
	if err != nil {
		return err
	}
	key, err := publicKey(pub)
	if err != nil {
		return err
	}
	if s.KeyID != pub.KeyID {
		return errKeyMismatch
	}
	at, err := time.Parse(time.RFC3339, s.SignedAt)
	if err != nil {
		return fmt.Errorf("%w: signedAt", errStale)
	}
	if at.After(now.Add(DefaultMaxSkew)) || (maxAge > 0 && now.Sub(at) > maxAge) {
		return errStale
	}
	draft, ext, err := ToolPayloads(t, s.KeyID, s.SignedAt)
	if err != nil {
		return err
	}
	var ck [32]byte
	if c != nil {
		h := sha256.New()
		for _, part := range [][]byte{key, draft, ext, []byte(s.Signature), []byte(s.ExtSignature)} {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(part)))
			h.Write(n[:])
			h.Write(part)
		}
		h.Sum(ck[:0])
		if c.has(ck) {
			return nil
		}
	}
	c.counted()
	if err := verifySig(key, draft, s.Signature); err != nil {
		return err
	}
	if s.ExtSignature != "" {
		if err := verifySig(key, ext, s.ExtSignature); err != nil {
			return err
		}
	}
	c.add(ck)
	return nil
}

// ---------------------------------------------------------------------------
// Identity metadata and attestations.

// Metadata is the result of identity/get. PublicKey and each
// attestation are kept as received, because the self-attestation is verified
// over the publicKey JSON exactly as sent (re-serializing can reorder members).
type Metadata struct {
	mcp.ResultBase
	PublicKey    json.RawMessage   `json:"publicKey"`
	Attestations []json.RawMessage `json:"attestations"`
}

// GetParams are the (empty) params of identity/get.
type GetParams struct {
	mcp.ParamsBase
}

// ChallengeParams are the params of identity/challenge.
type ChallengeParams struct {
	mcp.ParamsBase
	Challenge string `json:"challenge"` // base64url, ≥ 32 random bytes, chosen by the client
	Timestamp string `json:"timestamp"` // RFC 3339 UTC
}

// ChallengeResult is the result of identity/challenge.
type ChallengeResult struct {
	mcp.ResultBase
	Signature string `json:"signature"` // Ed25519 over decoded challenge ‖ timestamp UTF-8 bytes
	KeyID     string `json:"kid"`
}

// attestationType reads just the "type" member.
func attestationType(raw json.RawMessage) string {
	var a struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(raw, &a)
	return a.Type
}

// SelfAttestation signs {"type":"self","publicKey":<jwk as sent>,"signedAt"}.
func SelfAttestation(key jose.JSONWebKey, publicJWK []byte, at time.Time) (json.RawMessage, error) {
	priv, err := privateKey(key)
	if err != nil {
		return nil, err
	}
	s := at.UTC().Format(time.RFC3339)
	msg, err := selfPayload(publicJWK, s)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"type": "self", "signedAt": s, "signature": b64.EncodeToString(ed25519.Sign(priv, msg))})
}

func selfPayload(publicJWK []byte, signedAt string) ([]byte, error) {
	return canonical(map[string]any{"type": "self", "publicKey": json.RawMessage(publicJWK), "signedAt": signedAt})
}

// verifySelf finds and verifies the REQUIRED self attestation.
func verifySelf(md *Metadata, pub ed25519.PublicKey) error {
	for _, raw := range md.Attestations {
		if attestationType(raw) != "self" {
			continue
		}
		var a struct{ SignedAt, Signature string }
		if err := json.Unmarshal(raw, &a); err != nil {
			return err
		}
		msg, err := selfPayload(md.PublicKey, a.SignedAt)
		if err != nil {
			return err
		}
		return verifySig(pub, msg, a.Signature)
	}
	return errors.New("mcpidentity: no self attestation")
}

// PublisherAttestation is the draft's publisher attestation plus Subject,
// which binds it to one server key (the draft's version binds to nothing and
// could be replayed onto any server).
type PublisherAttestation struct {
	Type      string          `json:"type"` // "publisher"
	Issuer    PublisherIssuer `json:"issuer"`
	Subject   *KeyBinding     `json:"subject"` // REQUIRED by this client
	SignedAt  string          `json:"signedAt"`
	ExpiresAt string          `json:"expiresAt"`
	Signature string          `json:"signature,omitempty"`
}

// PublisherIssuer names the publisher and its key.
type PublisherIssuer struct {
	Name      string          `json:"name"`
	PublicKey json.RawMessage `json:"publicKey"`
	URL       string          `json:"url,omitempty"`
}

// KeyBinding names one server key by kid and RFC 7638 thumbprint.
type KeyBinding struct {
	KeyID      string `json:"kid"`
	Thumbprint string `json:"thumbprint"`
}

// SignPublisherAttestation lets a publisher vouch for a server key.
func SignPublisherAttestation(publisher jose.JSONWebKey, name, url string, server jose.JSONWebKey, at, expires time.Time) (json.RawMessage, error) {
	priv, err := privateKey(publisher)
	if err != nil {
		return nil, err
	}
	pubJWK, err := PublicJWK(publisher)
	if err != nil {
		return nil, err
	}
	tp, err := Thumbprint(server)
	if err != nil {
		return nil, err
	}
	a := PublisherAttestation{Type: "publisher", Issuer: PublisherIssuer{Name: name, PublicKey: pubJWK, URL: url},
		Subject:  &KeyBinding{KeyID: server.KeyID, Thumbprint: tp},
		SignedAt: at.UTC().Format(time.RFC3339), ExpiresAt: expires.UTC().Format(time.RFC3339)}
	msg, err := canonical(a)
	if err != nil {
		return nil, err
	}
	a.Signature = b64.EncodeToString(ed25519.Sign(priv, msg))
	return json.Marshal(a)
}

// verifyPublisher accepts the first publisher attestation signed by one of
// anchors, unexpired and bound to the server key's thumbprint.
func verifyPublisher(md *Metadata, serverThumb string, anchors []ed25519.PublicKey, now time.Time) error {
	for _, raw := range md.Attestations {
		if attestationType(raw) != "publisher" {
			continue
		}
		var a PublisherAttestation
		if err := json.Unmarshal(raw, &a); err != nil {
			continue
		}
		if a.Subject == nil || a.Subject.Thumbprint != serverThumb {
			continue
		}
		exp, err := time.Parse(time.RFC3339, a.ExpiresAt)
		if err != nil || !now.Before(exp) {
			continue
		}
		ik, err := ParsePublicKey(a.Issuer.PublicKey)
		if err != nil {
			continue
		}
		ipub := ik.Key.(ed25519.PublicKey)
		trusted := false
		for _, anchor := range anchors {
			if anchor.Equal(ipub) {
				trusted = true
			}
		}
		if !trusted {
			continue
		}
		sig := a.Signature
		// Verify over the attestation as received minus "signature", so
		// members this client does not know are still covered.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			continue
		}
		delete(m, "signature")
		msg, err := canonical(m)
		if err != nil {
			continue
		}
		if verifySig(ipub, msg, sig) == nil {
			return nil
		}
	}
	return errors.New("mcpidentity: no valid publisher attestation for this key")
}

// RotationRecord is the draft's revocation attestation, signed by the OLD
// key, extended with the thumbprints of both keys so that it names exactly
// which pinned key hands over to which new one.
type RotationRecord struct {
	Type                  string `json:"type"` // "revocation"
	RevokedKeyID          string `json:"revokedKid"`
	RevokedThumbprint     string `json:"revokedThumbprint"`
	ReplacementKeyID      string `json:"replacementKid"`
	ReplacementThumbprint string `json:"replacementThumbprint"`
	Reason                string `json:"reason"` // "rotation"
	SignedAt              string `json:"signedAt"`
	Signature             string `json:"signature,omitempty"`
}

// SignRotation records, under the old key, that next replaces old.
func SignRotation(old, next jose.JSONWebKey, at time.Time) (RotationRecord, error) {
	priv, err := privateKey(old)
	if err != nil {
		return RotationRecord{}, err
	}
	oldTP, err := Thumbprint(old)
	if err != nil {
		return RotationRecord{}, err
	}
	newTP, err := Thumbprint(next)
	if err != nil {
		return RotationRecord{}, err
	}
	r := RotationRecord{Type: "revocation", RevokedKeyID: old.KeyID, RevokedThumbprint: oldTP,
		ReplacementKeyID: next.KeyID, ReplacementThumbprint: newTP, Reason: "rotation",
		SignedAt: at.UTC().Format(time.RFC3339)}
	msg, err := canonical(r)
	if err != nil {
		return RotationRecord{}, err
	}
	r.Signature = b64.EncodeToString(ed25519.Sign(priv, msg))
	return r, nil
}

// SignRevocation records, under key, that key is revoked (reason e.g.
// "key-compromise") with no replacement: a client that sees it refuses the
// key, pinned or not, until an operator clears the pin.
func SignRevocation(key jose.JSONWebKey, reason string, at time.Time) (RotationRecord, error) {
	priv, err := privateKey(key)
	if err != nil {
		return RotationRecord{}, err
	}
	tp, err := Thumbprint(key)
	if err != nil {
		return RotationRecord{}, err
	}
	r := RotationRecord{Type: "revocation", RevokedKeyID: key.KeyID, RevokedThumbprint: tp, Reason: reason,
		SignedAt: at.UTC().Format(time.RFC3339)}
	msg, err := canonical(r)
	if err != nil {
		return RotationRecord{}, err
	}
	r.Signature = b64.EncodeToString(ed25519.Sign(priv, msg))
	return r, nil
}

// revokedItself reports whether md carries a revocation attestation that
// names the presented key (by thumbprint, or by kid when the record has no
// thumbprint, as the draft's records do) and is signed by that key: the
// key's holder has declared it revoked, whether for a rotation or a
// compromise, so no policy may accept it any more. The signature is checked
// over the attestation as received minus "signature", so records written
// by other implementations (other members, no thumbprints) count too. A
// record with a bad signature is ignored: anyone could write one.
func revokedItself(md *Metadata, pub ed25519.PublicKey, kid, thumb string) bool {
	str := func(m map[string]json.RawMessage, k string) string {
		var v string
		if raw, ok := m[k]; ok && json.Unmarshal(raw, &v) != nil {
			return ""
		}
		return v
	}
	for _, raw := range md.Attestations {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || str(m, "type") != "revocation" {
			continue
		}
		tp, rk := str(m, "revokedThumbprint"), str(m, "revokedKid")
		if !(tp == thumb || (tp == "" && rk != "" && rk == kid)) {
			continue
		}
		sig := str(m, "signature")
		delete(m, "signature")
		msg, err := canonical(m)
		if err != nil {
			continue
		}
		if verifySig(pub, msg, sig) == nil {
			return true
		}
	}
	return false
}

// VerifyRotation checks that r hands over from the pinned key to next.
func VerifyRotation(r RotationRecord, pinned, next jose.JSONWebKey) error {
	oldPub, err := publicKey(pinned)
	if err != nil {
		return err
	}
	oldTP, err := Thumbprint(pinned)
	if err != nil {
		return err
	}
	newTP, err := Thumbprint(next)
	if err != nil {
		return err
	}
	if r.Type != "revocation" || r.RevokedThumbprint != oldTP || r.ReplacementThumbprint != newTP {
		return errors.New("mcpidentity: rotation record names other keys")
	}
	sig := r.Signature
	r.Signature = ""
	msg, err := canonical(r)
	if err != nil {
		return err
	}
	return verifySig(oldPub, msg, sig)
}

// ---------------------------------------------------------------------------
// Challenge-response.

// ChallengeMessage is what identity/challenge signs: decoded nonce ‖ timestamp.
func ChallengeMessage(nonce []byte, timestamp string) []byte {
	return append(append([]byte{}, nonce...), timestamp...)
}

// NewNonce returns a fresh base64url 32-byte challenge.
func NewNonce() (string, error) {
	b := make([]byte, MinNonceBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return b64.EncodeToString(b), nil
}
