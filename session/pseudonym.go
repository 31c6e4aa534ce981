package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"slices"
	"sync"
)

// Pseudonym returns a stable, keyed stand-in for an identifier so logs can
// correlate events without holding the identifier: "kind:" followed by the
// hex of the first 8 bytes of HMAC-SHA256(key, kind+"|"+value). An unkeyed
// hash of a phone number or patient id would be reversible by brute force.
func Pseudonym(key []byte, kind, value string) string {
	return (&macState{h: hmac.New(sha256.New, key)}).pseudonym(kind, value)
}

// MAC computes HMAC-SHA256 under one key for hot paths: hmac.New allocates
// two SHA-256 states and pads the key on every call, and a verification
// hashes two fields per same-name candidate; MAC reuses the keyed states.
type MAC struct{ pool sync.Pool }

type macState struct {
	h   hash.Hash
	buf []byte
}

// NewMAC returns a MAC under a copy of key.
func NewMAC(key []byte) *MAC {
	k := slices.Clone(key)
	m := &MAC{}
	m.pool.New = func() any { return &macState{h: hmac.New(sha256.New, k)} }
	return m
}

// Sum is HMAC-SHA256(key, parts joined with "|").
func (m *MAC) Sum(parts ...string) []byte {
	st := m.pool.Get().(*macState)
	defer m.pool.Put(st)
	return st.sum(make([]byte, 0, sha256.Size), parts...)
}

// Pseudonym is the package Pseudonym under m's key.
func (m *MAC) Pseudonym(kind, value string) string {
	st := m.pool.Get().(*macState)
	defer m.pool.Put(st)
	return st.pseudonym(kind, value)
}

// sum appends HMAC(parts joined with "|") to dst.
func (st *macState) sum(dst []byte, parts ...string) []byte {
	st.h.Reset()
	st.buf = st.buf[:0]
	for i, p := range parts {
		if i > 0 {
			st.buf = append(st.buf, '|')
		}
		st.buf = append(st.buf, p...)
	}
	st.h.Write(st.buf)
	return st.h.Sum(dst)
}

func (st *macState) pseudonym(kind, value string) string {
	var sum [sha256.Size]byte
	return kind + ":" + hex.EncodeToString(st.sum(sum[:0], kind, value)[:8])
}
