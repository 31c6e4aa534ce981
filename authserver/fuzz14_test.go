package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzSubjectTokenClaims signs arbitrary claims (and an arbitrary typ) with
// a trusted issuer's key and checks that whatever verify accepts meets every
// rule of issue 14: the issuer, an aud naming this AS, a jti, an exp within
// 24 h, an accepted typ, and a subject.
func FuzzSubjectTokenClaims(f *testing.F) {
	const self, iss = "https://as.example", "https://idp.example"
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key := jose.JSONWebKey{Key: pk, KeyID: "k1", Algorithm: "ES256"}
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	path := filepath.Join(f.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		f.Fatal(err)
	}
	ts := newTrustedSet(self, []TrustedIssuer{{Issuer: iss, JWKSFile: path}}, nil, func() time.Time { return now })
	exp := now.Add(5 * time.Minute).Unix()
	for _, seed := range []struct {
		claims map[string]any
		typ    string
	}{
		{map[string]any{"iss": iss, "sub": "pt-1", "aud": self, "jti": "j", "exp": exp}, "JWT"},
		{map[string]any{"iss": iss, "sub": "pt-1", "aud": []string{"x", self}, "jti": "j", "exp": exp, "acr": "urn:voiceauth:acr:kba-otp"}, "at+jwt"},
		{map[string]any{"iss": iss, "sub": "pt-1", "aud": "x", "jti": "j", "exp": exp}, "JWT"},
		{map[string]any{"iss": iss, "sub": "pt-1", "aud": self, "exp": exp}, "dpop+jwt"},
	} {
		c, _ := json.Marshal(seed.claims)
		f.Add(c, seed.typ)
	}
	f.Fuzz(func(t *testing.T, claims []byte, typ string) {
		opts := &jose.SignerOptions{}
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
		if err != nil {
			t.Skip()
		}
		obj, err := sig.Sign(claims)
		if err != nil {
			t.Skip()
		}
		raw, err := obj.CompactSerialize()
		if err != nil {
			t.Skip()
		}
		v, err := ts.verify(context.Background(), raw)
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(claims, &m) != nil {
			t.Fatalf("accepted claims that are not a JSON object: %q", claims)
		}
		if m["iss"] != iss || v.issuer != iss || v.subject == "" || v.jti == "" {
			t.Fatalf("accepted without issuer/subject/jti: %q", claims)
		}
		var auds []string
		switch a := m["aud"].(type) {
		case string:
			auds = []string{a}
		case []any:
			for _, x := range a {
				if s, ok := x.(string); ok {
					auds = append(auds, s)
				}
			}
		}
		if !slices.Contains(auds, self) {
			t.Fatalf("accepted with aud %v not naming this AS", m["aud"])
		}
		if v.exp.After(now.Add(subjectMaxLife)) || !v.exp.After(now.Add(-time.Minute)) {
			t.Fatalf("accepted with exp %v", v.exp)
		}
		if n := normType(typ); n != "jwt" && n != "at+jwt" {
			t.Fatalf("accepted typ %q", typ)
		}
	})
}

// FuzzClientAssertionClaims does the same for private_key_jwt assertions:
// accepted means iss = sub = the client, aud exactly the issuer as a JSON
// string, a jti and an exp at most 5 minutes ahead.
func FuzzClientAssertionClaims(f *testing.F) {
	e := newEnv(f, nil)
	iss := e.srv.cfg.Issuer
	exp := e.clk.Now().Add(time.Minute).Unix()
	for _, c := range []map[string]any{
		{"iss": "pkjwt-client", "sub": "pkjwt-client", "aud": iss, "jti": "a", "exp": exp},
		{"iss": "pkjwt-client", "sub": "pkjwt-client", "aud": []string{iss}, "jti": "b", "exp": exp},
		{"iss": "pkjwt-client", "sub": "pkjwt-client", "aud": iss + "/token", "jti": "c", "exp": exp},
	} {
		b, _ := json.Marshal(c)
		f.Add(b)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: e.pkKey}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, claims []byte) {
		obj, err := sig.Sign(claims)
		if err != nil {
			t.Skip()
		}
		raw, _ := obj.CompactSerialize()
		c, err := e.srv.verifyClientAssertion(context.Background(), raw)
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(claims, &m) != nil || c.ID != "pkjwt-client" {
			t.Fatalf("accepted %q", claims)
		}
		if m["iss"] != "pkjwt-client" || m["sub"] != "pkjwt-client" || m["aud"] != iss {
			t.Fatalf("accepted iss/sub/aud %v %v %v", m["iss"], m["sub"], m["aud"])
		}
		if j, _ := m["jti"].(string); j == "" {
			t.Fatalf("accepted without jti: %q", claims)
		}
		if x, _ := m["exp"].(float64); time.Unix(int64(x), 0).After(e.clk.Now().Add(clientAssertionMaxLife)) {
			t.Fatalf("accepted exp %v", m["exp"])
		}
	})
}
