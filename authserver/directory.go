package authserver

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/voiceauth/voiceauth/session"
)

// dirKeyPrefix marks a keyed directory key. Keys written before issue 14
// were the plaintext normalized names ("n:…", "p:…").
const dirKeyPrefix = "k1:"

// directory computes the keys the patient directory is looked up by:
// HMAC-SHA256 under a key derived from the pepper (never the pepper itself,
// and never the DOB/SSN-4 form), so a copy of the database holds no
// normalized name and no phone number in the clear, while the same spoken
// name still finds the same rows (the normalized and phonetic keys are
// HMACed before storage and before lookup alike).
type directory struct{ mac *session.MAC }

func newDirectory(pepper []byte) directory {
	return directory{mac: session.NewMAC(session.NewMAC(pepper).Sum("voiceauth", "directory-keys", "v1"))}
}

func (d directory) key(kind, value string) string {
	return dirKeyPrefix + hex.EncodeToString(d.mac.Sum(kind, value)[:16])
}

// nameKeys are the keyed NameKeys of a spoken or registered name.
func (d directory) nameKeys(name string) []string {
	plain := NameKeys(name)
	out := make([]string, len(plain))
	for i, k := range plain {
		out[i] = d.key("name", k)
	}
	return out
}

// phoneKey finds the patients whose number on file is phone.
func (d directory) phoneKey(phone string) string { return d.key("phone", phone) }

// keys is every directory key of one patient.
func (d directory) keys(name, phone string) []string {
	ks := d.nameKeys(name)
	if phone != "" {
		ks = append(ks, d.phoneKey(phone))
	}
	return ks
}

// MigrateDirectory rewrites directory rows still keyed by plaintext names
// into keyed form (with the phone key added), computing the keys from each
// patient's sealed profile. Seed runs it first; it is idempotent and cheap
// when nothing is left to do.
func MigrateDirectory(ctx context.Context, st Store, pepper []byte) (int, error) {
	d := newDirectory(pepper)
	n, err := st.RekeyPatients(ctx, dirKeyPrefix, func(p session.Patient) []string { return d.keys(p.Name, p.Phone) })
	if err != nil {
		return n, fmt.Errorf("authserver: migrate directory keys: %w", err)
	}
	return n, nil
}
