package app

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Secrets is everything an instance needs that must never be in the
// repository or the logs. Every instance sharing one store must load the
// same file (VOICEAUTH_SECRETS_FILE); dev mode generates it on first start.
type Secrets struct {
	Version          int               `json:"version"`
	Pepper           []byte            `json:"pepper"`
	SealingKeys      map[uint32][]byte `json:"sealing_keys"`
	SealingCurrent   uint32            `json:"sealing_current"`
	CallRefKey       []byte            `json:"call_ref_key"`
	LogKey           []byte            `json:"log_key"`
	ASSigningKeys    []jose.JSONWebKey `json:"as_signing_keys"`
	MCPIdentityKey   jose.JSONWebKey   `json:"mcp_identity_key"`
	TwilioAuthToken  string            `json:"twilio_auth_token"`
	ClientSecret     string            `json:"client_secret"`
	HostClientSecret string            `json:"host_client_secret"`
	PartnerIssuerKey jose.JSONWebKey   `json:"partner_issuer_key"`
	// AuditKeys key the audit chain's HMAC by version (rotate with
	// `voiceauth secrets rotate --what audit`; old versions stay to verify
	// old records). AuditAnchorKey (Ed25519) signs `voiceauth audit anchor`
	// checkpoints; it is not rotated, so every checkpoint stays checkable.
	AuditKeys      map[uint32][]byte `json:"audit_keys"`
	AuditCurrent   uint32            `json:"audit_current"`
	AuditAnchorKey jose.JSONWebKey   `json:"audit_anchor_key"`
}

// LoadSecrets reads a secrets file; when it does not exist and generate is
// true it creates one (mode 0600) and reports created=true so the caller can
// print the dev credentials once.
func LoadSecrets(path string, generate bool) (s *Secrets, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if err := restrictFile(path); err != nil {
			return nil, false, err
		}
		s = new(Secrets)
		if err := json.Unmarshal(b, s); err != nil {
			return nil, false, fmt.Errorf("secrets file %s: %w", path, err)
		}
		// Audit keys made up for one run would key records that no later
		// run could verify: they are added to the file, or not at all.
		if !generate && (len(s.AuditKeys) == 0 || s.AuditAnchorKey.Key == nil) {
			return nil, false, fmt.Errorf("secrets file %s has no audit keys (written by an earlier version): run `voiceauth secrets init`, which adds missing keys to an existing file", path)
		}
		changed, err := s.fill()
		if err != nil {
			return nil, false, err
		}
		if changed && generate {
			if err := s.Save(path); err != nil {
				return nil, false, err
			}
		}
		return s, false, s.validate()
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if !generate {
		return nil, false, fmt.Errorf("secrets file %s does not exist (run `voiceauth secrets init`)", path)
	}
	s = &Secrets{Version: 1}
	if _, err := s.fill(); err != nil {
		return nil, false, err
	}
	if err := s.Save(path); err != nil {
		return nil, false, err
	}
	return s, true, nil
}

// Save writes the file atomically with owner-only permissions.
func (s *Secrets) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	// CreateTemp makes the file 0600 whatever the umask, and a new name each
	// time (a stale path+".tmp" with a looser mode would keep that mode).
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// restrictFile makes an existing file owner-only: the secrets file and the
// OTP outbox must never be readable by group or others. A file that cannot
// be tightened (a read-only mount) is refused with the command to fix it.
func restrictFile(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, fi.Mode().Perm()&0o700); err != nil {
		return fmt.Errorf("%s is readable by group or others (mode %04o) and cannot be restricted (%v): chmod 0600 it", path, fi.Mode().Perm(), err)
	}
	return nil
}

// fill generates whatever is missing, so older files gain new secrets.
func (s *Secrets) fill() (changed bool, err error) {
	rnd := func(dst *[]byte) {
		if len(*dst) == 0 {
			*dst = randomBytes(32)
			changed = true
		}
	}
	rnd(&s.Pepper)
	rnd(&s.CallRefKey)
	rnd(&s.LogKey)
	if len(s.SealingKeys) == 0 {
		s.SealingKeys = map[uint32][]byte{1: randomBytes(32)}
		s.SealingCurrent = 1
		changed = true
	}
	if len(s.ASSigningKeys) == 0 {
		k, err := NewES256Key()
		if err != nil {
			return false, err
		}
		s.ASSigningKeys = []jose.JSONWebKey{k}
		changed = true
	}
	if s.MCPIdentityKey.Key == nil {
		k, err := NewEd25519Key()
		if err != nil {
			return false, err
		}
		s.MCPIdentityKey = k
		changed = true
	}
	if len(s.AuditKeys) == 0 {
		s.AuditKeys = map[uint32][]byte{1: randomBytes(32)}
		s.AuditCurrent = 1
		changed = true
	}
	if s.AuditAnchorKey.Key == nil {
		k, err := NewEd25519Key()
		if err != nil {
			return false, err
		}
		s.AuditAnchorKey = k
		changed = true
	}
	if s.PartnerIssuerKey.Key == nil {
		k, err := NewES256Key()
		if err != nil {
			return false, err
		}
		s.PartnerIssuerKey = k
		changed = true
	}
	str := func(dst *string, n int) {
		if *dst == "" {
			*dst = hex.EncodeToString(randomBytes(n))
			changed = true
		}
	}
	str(&s.TwilioAuthToken, 16)
	str(&s.ClientSecret, 32)
	str(&s.HostClientSecret, 32)
	return changed, nil
}

func (s *Secrets) validate() error {
	if len(s.Pepper) < 32 || len(s.CallRefKey) < 32 || len(s.LogKey) < 32 {
		return errors.New("secrets: pepper, call_ref_key and log_key must be at least 32 bytes")
	}
	if _, ok := s.SealingKeys[s.SealingCurrent]; !ok {
		return errors.New("secrets: sealing_current names no sealing key")
	}
	for v, k := range s.SealingKeys {
		if len(k) != 32 {
			return fmt.Errorf("secrets: sealing key %d must be 32 bytes", v)
		}
	}
	if _, ok := s.AuditKeys[s.AuditCurrent]; !ok {
		return errors.New("secrets: audit_current names no audit key")
	}
	for v, k := range s.AuditKeys {
		if len(k) < 32 {
			return fmt.Errorf("secrets: audit key %d must be at least 32 bytes", v)
		}
	}
	return nil
}

// RotateAuditKey adds a new current audit-chain key; old ones stay so the
// records they keyed still verify.
func (s *Secrets) RotateAuditKey() uint32 {
	s.AuditCurrent = addKeyVersion(s.AuditKeys, s.AuditCurrent)
	return s.AuditCurrent
}

// addKeyVersion stores a fresh 32-byte key under the first free version
// after current and returns that version.
func addKeyVersion(keys map[uint32][]byte, current uint32) uint32 {
	next := current + 1
	for {
		if _, ok := keys[next]; !ok {
			break
		}
		next++
	}
	keys[next] = randomBytes(32)
	return next
}

// RotateSealingKey adds a new current sealing key; old ones stay for reading.
func (s *Secrets) RotateSealingKey() uint32 {
	s.SealingCurrent = addKeyVersion(s.SealingKeys, s.SealingCurrent)
	return s.SealingCurrent
}

// RotateSigningKey puts a fresh ES256 key first; the previous one stays
// published in the JWKS until the next rotation.
func (s *Secrets) RotateSigningKey() error {
	k, err := NewES256Key()
	if err != nil {
		return err
	}
	keys := []jose.JSONWebKey{k}
	if len(s.ASSigningKeys) > 0 {
		keys = append(keys, s.ASSigningKeys[0])
	}
	s.ASSigningKeys = keys
	return nil
}

// NewES256Key makes a P-256 signing key with its RFC 7638 thumbprint as kid.
func NewES256Key() (jose.JSONWebKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k := jose.JSONWebKey{Key: priv, Algorithm: string(jose.ES256), Use: "sig"}
	return withThumbprintKID(k)
}

// NewEd25519Key makes an Ed25519 identity key with its thumbprint as kid.
func NewEd25519Key() (jose.JSONWebKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k := jose.JSONWebKey{Key: priv, Algorithm: string(jose.EdDSA), Use: "sig"}
	return withThumbprintKID(k)
}

func withThumbprintKID(k jose.JSONWebKey) (jose.JSONWebKey, error) {
	pub := k.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return k, err
	}
	k.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return k, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return b
}

// SplitTokens parses TWILIO_AUTH_TOKEN, which may list two tokens during rotation.
func SplitTokens(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// AddSealingKey adds a new sealing key version without making it current:
// the first step of a rotation while serving, so that every instance can
// open values sealed under it before any instance seals with it.
func (s *Secrets) AddSealingKey() uint32 {
	return addKeyVersion(s.SealingKeys, s.SealingCurrent)
}

// AddSigningKey publishes a fresh ES256 key without signing with it yet
// (first step of a signing-key rotation); it returns its kid.
func (s *Secrets) AddSigningKey() (string, error) {
	k, err := NewES256Key()
	if err != nil {
		return "", err
	}
	s.ASSigningKeys = append(s.ASSigningKeys, k)
	return k.KeyID, nil
}

// PromoteSigningKey makes kid the signing key; the previous signing key
// stays published (tokens it signed keep verifying), older ones are dropped.
func (s *Secrets) PromoteSigningKey(kid string) error {
	for i, k := range s.ASSigningKeys {
		if k.KeyID != kid {
			continue
		}
		keys := []jose.JSONWebKey{k}
		if i != 0 && len(s.ASSigningKeys) > 0 {
			keys = append(keys, s.ASSigningKeys[0])
		}
		s.ASSigningKeys = keys
		return nil
	}
	return fmt.Errorf("secrets: no signing key %q", kid)
}
