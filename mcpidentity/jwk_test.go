package mcpidentity

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gowebpki/jcs"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// rfc8037X is the public key of RFC 8037 §A.1 (= RFC 8032 TEST 1).
const rfc8037X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"

// goJoseJWK is the public JWK go-jose writes for key with alg set to alg
// (go-jose writes any alg string it is given; "" leaves alg out).
func goJoseJWK(t testing.TB, key jose.JSONWebKey, alg string) string {
	t.Helper()
	pub := key.Public()
	pub.Algorithm = alg
	raw, err := pub.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestParsePublicKeyAlg: RFC 8037's "EdDSA", RFC 9864's "Ed25519" and an
// absent alg are the same Ed25519 key; every other alg names another
// signature scheme and is refused, however it is spelled in.
func TestParsePublicKeyAlg(t *testing.T) {
	key := rfc8032Key(t)
	x := `"kty":"OKP","crv":"Ed25519","x":"` + rfc8037X + `"`
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"go-jose EdDSA", goJoseJWK(t, key, "EdDSA"), true},
		{"go-jose Ed25519", goJoseJWK(t, key, "Ed25519"), true},
		{"go-jose no alg", goJoseJWK(t, key, ""), true},
		{"hand-written Ed25519", `{` + x + `,"alg":"Ed25519","kid":"k1","use":"sig"}`, true},
		{"hand-written EdDSA", `{"alg":"EdDSA",` + x + `}`, true},
		{"hand-written no alg", `{` + x + `}`, true},
		{"go-jose ES256", goJoseJWK(t, key, "ES256"), false},
		{"go-jose RS256", goJoseJWK(t, key, "RS256"), false},
		{"Ed448", `{` + x + `,"alg":"Ed448"}`, false},
		{"none", `{` + x + `,"alg":"none"}`, false},
		{"empty", `{` + x + `,"alg":""}`, false},
		{"null", `{` + x + `,"alg":null}`, false},
		{"number", `{` + x + `,"alg":5}`, false},
		{"array", `{` + x + `,"alg":["EdDSA"]}`, false},
		{"lower case", `{` + x + `,"alg":"eddsa"}`, false},
		{"padded", `{` + x + `,"alg":"Ed25519 "}`, false},
		{"case-folded duplicate hides RS256", `{` + x + `,"alg":"RS256","ALG":"EdDSA"}`, false},
		{"case-folded duplicate claims RS256", `{` + x + `,"alg":"EdDSA","ALG":"RS256"}`, false},
		{"Ed25519 but X25519 curve", `{"kty":"OKP","crv":"X25519","x":"` + rfc8037X + `","alg":"Ed25519"}`, false},
	}
	for _, tc := range tests {
		k, err := ParsePublicKey([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%s: %s: err=%v, want ok=%v", tc.name, tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if got, want := k.Key.(ed25519.PublicKey), key.Public().Key.(ed25519.PublicKey); !got.Equal(want) {
			t.Errorf("%s: parsed another key", tc.name)
		}
		// Same key, same thumbprint: alg is not a thumbprint member, so a
		// pin made under one spelling matches the other.
		if tp, _ := Thumbprint(k); tp != mustThumb(t, key) {
			t.Errorf("%s: thumbprint %s differs", tc.name, tp)
		}
	}
}

func mustThumb(t testing.TB, k jose.JSONWebKey) string {
	t.Helper()
	tp, err := Thumbprint(k)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// metadataWith is a server's identity/get answer whose publicKey is jwk as
// written, self-attested by key over those exact bytes.
func metadataWith(t testing.TB, key jose.JSONWebKey, jwk string) *Metadata {
	t.Helper()
	self, err := SelfAttestation(key, []byte(jwk), time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return &Metadata{PublicKey: json.RawMessage(jwk), Attestations: []json.RawMessage{self}}
}

// TestVerifyMetadataAlg: a server that publishes its key with alg
// "Ed25519" (RFC 9864) or "EdDSA" is verified like one that leaves alg
// out; one whose key claims another alg is refused even though its self
// attestation is genuine.
func TestVerifyMetadataAlg(t *testing.T) {
	key := rfc8032Key(t)
	for _, tc := range []struct {
		alg string
		ok  bool
	}{{"Ed25519", true}, {"EdDSA", true}, {"", true}, {"ES256", false}, {"HS256", false}} {
		jwk := goJoseJWK(t, key, tc.alg)
		id, err := VerifyMetadata(metadataWith(t, key, jwk))
		if (err == nil) != tc.ok {
			t.Errorf("alg %q: err=%v, want ok=%v", tc.alg, err, tc.ok)
			continue
		}
		if tc.ok && id.Thumbprint != mustThumb(t, key) {
			t.Errorf("alg %q: thumbprint %s", tc.alg, id.Thumbprint)
		}
		if !tc.ok && !errors.Is(err, errBadAlg) {
			t.Errorf("alg %q: %v, want the alg refusal", tc.alg, err)
		}
	}
	// The self attestation covers the alg member as sent: changing it
	// after signing (even to the other accepted spelling) breaks it.
	md := metadataWith(t, key, goJoseJWK(t, key, "EdDSA"))
	md.PublicKey = json.RawMessage(strings.Replace(string(md.PublicKey), `"EdDSA"`, `"Ed25519"`, 1))
	if _, err := VerifyMetadata(md); err == nil {
		t.Fatal("alg rewritten after the self attestation was accepted")
	}
}

// FuzzVerifyMetadata feeds arbitrary identity/get results (outside input):
// no panic, and whatever is accepted has an Ed25519 key with an accepted
// alg whose holder signed the self attestation over the key as received.
func FuzzVerifyMetadata(f *testing.F) {
	key := rfc8032Key(f)
	for _, alg := range []string{"", "EdDSA", "Ed25519", "RS256"} {
		raw, _ := json.Marshal(metadataWith(f, key, goJoseJWK(f, key, alg)))
		f.Add(raw)
	}
	rev, _ := SignRevocation(key, "key-compromise", time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	md := metadataWith(f, key, goJoseJWK(f, key, ""))
	md.Attestations = append(md.Attestations, mustJSON(rev))
	f.Add(mustJSON(md))
	f.Add([]byte(`{"publicKey":{"kty":"OKP","crv":"Ed25519","x":"` + rfc8037X + `"},"attestations":[{"type":"self"}]}`))
	f.Add([]byte(`{"publicKey":null,"attestations":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var md Metadata
		if json.Unmarshal(raw, &md) != nil {
			return
		}
		id, err := VerifyMetadata(&md)
		if err != nil {
			return
		}
		pub, ok := id.Key.Key.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			t.Fatalf("accepted a non-Ed25519 key %T", id.Key.Key)
		}
		if a := id.Key.Algorithm; a != "" && a != AlgEdDSA && a != AlgEd25519 {
			t.Fatalf("accepted alg %q", a)
		}
		// Independently: some self attestation verifies under pub over
		// JCS{type, publicKey as received, signedAt}.
		for _, att := range md.Attestations {
			var a struct{ Type, SignedAt, Signature string }
			if json.Unmarshal(att, &a) != nil || a.Type != "self" {
				continue
			}
			sig, err := decodeB64(a.Signature)
			if err != nil {
				continue
			}
			obj, _ := json.Marshal(map[string]any{"type": "self", "publicKey": md.PublicKey, "signedAt": a.SignedAt})
			msg, err := jcs.Transform(obj)
			if err == nil && ed25519.Verify(pub, msg, sig) {
				return
			}
		}
		t.Fatalf("accepted metadata without a valid self attestation: %s", raw)
	})
}

// TestToolCache: a cache hit skips only the Ed25519 work. The freshness
// rules still apply to a cached definition, a changed definition or another
// key is checked afresh, and a nil cache verifies every time.
func TestToolCache(t *testing.T) {
	key := rfc8032Key(t)
	tool := signedTool(t, key) // signed 2026-11-25T12:00:00Z
	now := time.Date(2026, 11, 25, 12, 1, 0, 0, time.UTC)
	var c ToolCache
	check := func(name string, tl *mcp.Tool, pub jose.JSONWebKey, now time.Time, maxAge time.Duration, wantErr bool, verified, hits int64) {
		t.Helper()
		err := c.VerifyTool(tl, pub, now, maxAge)
		if (err != nil) != wantErr {
			t.Fatalf("%s: err=%v, wantErr=%v", name, err, wantErr)
		}
		if got := c.Stats(); got.Verified != verified || got.Hits != hits {
			t.Fatalf("%s: stats %+v, want %d verified, %d hits", name, got, verified, hits)
		}
	}
	pub := key.Public()
	check("first", tool, pub, now, 0, false, 1, 0)
	check("again", tool, pub, now, 0, false, 1, 1)
	check("too old though cached", tool, pub, now.Add(2*time.Hour), time.Hour, true, 1, 1)
	check("future though cached", tool, pub, now.Add(-time.Hour), 0, true, 1, 1)
	tampered := *tool
	tampered.Description = "changed"
	check("tampered", &tampered, pub, now, 0, true, 2, 1)
	check("tampered again", &tampered, pub, now, 0, true, 3, 1) // failures are not cached
	other, _ := GenerateKey()
	otherPub := other.Public()
	otherPub.KeyID = key.KeyID // same kid, other key
	check("other key", tool, otherPub, now, 0, true, 4, 1)
	if err := (*ToolCache)(nil).VerifyTool(tool, pub, now, 0); err != nil {
		t.Fatalf("nil cache: %v", err)
	}
	if got := (*ToolCache)(nil).Stats(); got != (CacheStats{}) {
		t.Fatalf("nil cache stats %+v", got)
	}
}
