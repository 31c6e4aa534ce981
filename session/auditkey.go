package session

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// AuditKeyed is the Type of the record that starts the keyed chain on a
// store whose chain began under the unkeyed SHA-256 of earlier versions. It
// is itself keyed and names the last unkeyed record (legacy_through_seq,
// legacy_head): VerifyAudit accepts unkeyed records only up to there, so a
// chain rebuilt with plain hashes (by someone without the key) fails.
const AuditKeyed = "audit.keyed"

// A record's chain value (AuditEvent.Hash) is either
//
//	keyed:  version (4 bytes, big endian) ‖ HMAC-SHA256(key_version, version ‖ prev ‖ JCS(record))
//	legacy: SHA-256(prev ‖ JCS(record))  (32 bytes; written before the chain was keyed)
//
// The version prefix names the audit key, as sealed values name their
// sealing key, so rotation needs no rewrite: old records verify under the
// old key, which stays in the keyring.
const auditMACLen = 4 + sha256.Size

// auditKeyring holds the audit chain's HMAC keys by version. A rotation
// while serving (UpdateAuditKeys) adds versions and moves current; versions
// once loaded stay, so older records keep verifying.
type auditKeyring struct {
	mu      sync.RWMutex
	current uint32
	keys    map[uint32][]byte
}

// sumCurrent is sum under the current key version.
func (k *auditKeyring) sumCurrent(prev []byte, e *AuditEvent) []byte {
	k.mu.RLock()
	v := k.current
	k.mu.RUnlock()
	h, _ := k.sum(v, prev, e)
	return h
}

// update loads keys (current among them) beside the versions already held.
func (k *auditKeyring) update(keys map[uint32][]byte, current uint32) error {
	next, err := newAuditKeyring(keys, current)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for v, key := range next.keys {
		k.keys[v] = key
	}
	k.current = current
	return nil
}

// AuditKeyUpdater is implemented by every Store returned by Open: the audit
// keys of a rotated secrets file, taken while serving.
type AuditKeyUpdater interface {
	UpdateAuditKeys(keys map[uint32][]byte, current uint32) error
}

// UpdateAuditKeys implements AuditKeyUpdater.
func (s *sqlStore) UpdateAuditKeys(keys map[uint32][]byte, current uint32) error {
	return s.audit.update(keys, current)
}

var _ AuditKeyUpdater = (*sqlStore)(nil)

func newAuditKeyring(keys map[uint32][]byte, current uint32) (*auditKeyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: audit keyring is empty")
	}
	k := &auditKeyring{current: current, keys: make(map[uint32][]byte, len(keys))}
	for v, key := range keys {
		if len(key) < 32 {
			return nil, fmt.Errorf("session: audit key version %d is %d bytes, want at least 32", v, len(key))
		}
		k.keys[v] = append([]byte(nil), key...)
	}
	if _, ok := k.keys[current]; !ok {
		return nil, fmt.Errorf("session: current audit key version %d is not in the keyring", current)
	}
	return k, nil
}

// sum returns e's keyed chain value under key version v (false if the
// keyring does not hold v).
func (k *auditKeyring) sum(v uint32, prev []byte, e *AuditEvent) ([]byte, bool) {
	k.mu.RLock()
	key, ok := k.keys[v]
	k.mu.RUnlock()
	if !ok {
		return nil, false
	}
	var ver [4]byte
	binary.BigEndian.PutUint32(ver[:], v)
	m := hmac.New(sha256.New, key)
	m.Write(ver[:])
	m.Write(prev)
	m.Write(appendAuditJCS(make([]byte, 0, 512), e))
	return m.Sum(ver[:]), true
}

// auditValueVersion reports the key version of a keyed chain value; legacy
// is true for an unkeyed (32-byte SHA-256) value.
func auditValueVersion(h []byte) (v uint32, legacy, ok bool) {
	switch len(h) {
	case sha256.Size:
		return 0, true, true
	case auditMACLen:
		return binary.BigEndian.Uint32(h), false, true
	}
	return 0, false, false
}

// AuditAnchor names one record of the chain by its sequence number and
// chain value. An operator keeps a signed copy elsewhere (`voiceauth audit
// anchor`); VerifyAuditAnchor then tells whether the chain still holds that
// record, which no rebuild of the chain (even with the key) or truncation
// can fake.
type AuditAnchor struct {
	Seq  int64
	Hash []byte
}

// AuditAnchorer is implemented by every Store returned by Open.
type AuditAnchorer interface {
	// AuditHead returns the chain's head (Seq 0 when the chain is empty).
	AuditHead(ctx context.Context) (AuditAnchor, error)
	// VerifyAuditAnchor is VerifyAudit plus a check, in the same snapshot,
	// that the chain still holds the anchored record unchanged.
	VerifyAuditAnchor(ctx context.Context, a AuditAnchor) (AuditReport, error)
}

var _ AuditAnchorer = (*sqlStore)(nil)

func (s *sqlStore) AuditHead(ctx context.Context) (AuditAnchor, error) {
	var a AuditAnchor
	if err := s.be.reader().queryRow(ctx, qAuditHead).Scan(&a.Seq, &a.Hash); err != nil {
		return a, fmt.Errorf("session: audit head: %w", err)
	}
	return a, nil
}

func (s *sqlStore) VerifyAuditAnchor(ctx context.Context, a AuditAnchor) (AuditReport, error) {
	if a.Seq <= 0 || len(a.Hash) == 0 {
		return AuditReport{}, errors.New("session: verify audit: the anchor names no record")
	}
	return s.verifyAudit(ctx, &a)
}

// startKeyedChain appends the AuditKeyed record if the chain's head is an
// unkeyed record (a store written by an earlier version), so the keyed
// chain starts at once and not with the next event.
func (s *sqlStore) startKeyedChain(ctx context.Context) error {
	return s.be.tx(ctx, func(x execer) error {
		_, _, err := s.keyedHead(ctx, x)
		return err
	})
}
