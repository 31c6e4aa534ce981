package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
)

// ErrUnsealable is returned when a sealed value cannot be opened: wrong key,
// unknown key version, tampered bytes or a value moved to another row/column.
// It never carries any part of the plaintext.
var ErrUnsealable = errors.New("session: sealed value cannot be opened")

const (
	sealHeaderLen = 4 + 12 // key version (big endian) + GCM nonce
	sealKeyLen    = 32
)

// Sealer encrypts values with AES-256-GCM under a keyring. Every sealed value
// starts with the 4-byte version of the key that sealed it, so old values stay
// readable after rotation until Rewrap re-seals them under the current key.
// The additional data binds a ciphertext to its table, column, row and key
// version, so ciphertexts cannot be swapped between rows.
//
// The keyring can be replaced while in use (Update, for key rotation while
// serving); a version once loaded stays readable until the process ends.
type Sealer struct {
	ring atomic.Pointer[keyring]
}

type keyring struct {
	current uint32
	aeads   map[uint32]cipher.AEAD
	// auditKeys are derived from the sealing keys, for a store opened
	// without audit keys of its own (Options.AuditKeys).
	auditKeys map[uint32][]byte
}

// NewSealer builds a Sealer from key version → 32-byte key; current names
// the key used for new seals and must be present.
func NewSealer(keys map[uint32][]byte, current uint32) (*Sealer, error) {
	r, err := newKeyring(keys, current)
	if err != nil {
		return nil, err
	}
	s := &Sealer{}
	s.ring.Store(r)
	return s, nil
}

// Update loads a new keyring: current seals from now on, every version in
// keys opens, and versions loaded before that keys no longer lists stay
// readable (a value sealed under them may still be in the store).
func (s *Sealer) Update(keys map[uint32][]byte, current uint32) error {
	r, err := newKeyring(keys, current)
	if err != nil {
		return err
	}
	for v, a := range s.ring.Load().aeads {
		if _, ok := r.aeads[v]; !ok {
			r.aeads[v] = a
		}
	}
	s.ring.Store(r)
	return nil
}

// Versions lists the key versions that can be opened.
func (s *Sealer) Versions() []uint32 {
	r := s.ring.Load()
	out := make([]uint32, 0, len(r.aeads))
	for v := range r.aeads {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

func newKeyring(keys map[uint32][]byte, current uint32) (*keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: sealer needs at least one key")
	}
	s := &keyring{current: current, aeads: make(map[uint32]cipher.AEAD, len(keys)), auditKeys: make(map[uint32][]byte, len(keys))}
	for v, k := range keys {
		if len(k) != sealKeyLen {
			return nil, fmt.Errorf("session: sealing key version %d is %d bytes, want %d", v, len(k), sealKeyLen)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("session: sealing key version %d: %w", v, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads[v] = aead
		m := hmac.New(sha256.New, k)
		m.Write([]byte("voiceauth session: audit chain key"))
		s.auditKeys[v] = m.Sum(nil)
	}
	if _, ok := s.aeads[current]; !ok {
		return nil, fmt.Errorf("session: current sealing key version %d is not in the keyring", current)
	}
	return s, nil
}

// CurrentVersion is the key version new seals use.
func (s *Sealer) CurrentVersion() uint32 { return s.ring.Load().current }

// Seal encrypts plaintext for the cell (table, column, row).
func (s *Sealer) Seal(plaintext []byte, table, column, row string) ([]byte, error) {
	r := s.ring.Load()
	out := make([]byte, sealHeaderLen, sealHeaderLen+len(plaintext)+16)
	binary.BigEndian.PutUint32(out, r.current)
	if _, err := rand.Read(out[4:sealHeaderLen]); err != nil {
		return nil, fmt.Errorf("session: nonce: %w", err)
	}
	aead := r.aeads[r.current]
	return aead.Seal(out, out[4:sealHeaderLen], plaintext, sealAAD(table, column, row, r.current)), nil
}

// Open decrypts a value sealed for the cell (table, column, row).
func (s *Sealer) Open(sealed []byte, table, column, row string) ([]byte, error) {
	v, ok := SealedVersion(sealed)
	if !ok {
		return nil, ErrUnsealable
	}
	aead, ok := s.ring.Load().aeads[v]
	if !ok {
		return nil, fmt.Errorf("%w: unknown key version %d", ErrUnsealable, v)
	}
	pt, err := aead.Open(nil, sealed[4:sealHeaderLen], sealed[sealHeaderLen:], sealAAD(table, column, row, v))
	if err != nil {
		return nil, ErrUnsealable
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// SealedVersion reports the key version a sealed value carries.
func SealedVersion(sealed []byte) (uint32, bool) {
	if len(sealed) < sealHeaderLen+16 {
		return 0, false
	}
	return binary.BigEndian.Uint32(sealed), true
}

// sealAAD is table|column|row|key version. Lengths prefix each part so that
// no two different cells can produce the same AAD.
func sealAAD(table, column, row string, version uint32) []byte {
	b := make([]byte, 0, len(table)+len(column)+len(row)+32)
	for _, p := range []string{table, column, row} {
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, ':')
		b = append(b, p...)
		b = append(b, '|')
	}
	return strconv.AppendUint(b, uint64(version), 10)
}
