package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Pseudonym returns a stable, keyed stand-in for an identifier so logs can
// correlate events without holding the identifier: "kind:" followed by the
// hex of the first 8 bytes of HMAC-SHA256(key, kind+"|"+value). An unkeyed
// hash of a phone number or patient id would be reversible by brute force.
func Pseudonym(key []byte, kind, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(kind))
	m.Write([]byte{'|'})
	m.Write([]byte(value))
	return kind + ":" + hex.EncodeToString(m.Sum(nil)[:8])
}
