package mcpidentity

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzRevokedItself: a server's attestations are outside input. Parsing
// them never panics, and no mutation of a genuine revocation that changes
// what it says (type, named key) is taken as revoking the key unless its
// signature still covers it.
func FuzzRevokedItself(f *testing.F) {
	key, err := GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	tp, _ := Thumbprint(key)
	pub, _ := publicKey(key)
	r, err := SignRevocation(key, "key-compromise", time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	if err != nil {
		f.Fatal(err)
	}
	genuine, _ := json.Marshal(r)
	f.Add(genuine)
	f.Add([]byte(`{"type":"revocation","revokedThumbprint":"` + tp + `","signature":"AAAA"}`))
	f.Add([]byte(`{"type":"revocation","revokedKid":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, att []byte) {
		md := &Metadata{Attestations: []json.RawMessage{att}}
		if !revokedItself(md, pub, key.KeyID, tp) {
			return
		}
		// Accepted: it must say what the genuine record says.
		var got, want map[string]any
		if json.Unmarshal(att, &got) != nil {
			t.Fatalf("revoked by unparsable %q", att)
		}
		_ = json.Unmarshal(genuine, &want)
		for _, k := range []string{"type", "revokedThumbprint", "revokedKid", "reason", "signedAt"} {
			if got[k] != want[k] {
				t.Fatalf("revoked by %q, whose %s differs from the signed record", att, k)
			}
		}
	})
}
