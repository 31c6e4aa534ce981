package healthmcp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/voiceauth/voiceauth/mcpidentity"
)

// FuzzVerifyToken: arbitrary bearer strings are never accepted and never panic.
func FuzzVerifyToken(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k", Algorithm: "ES256", Use: "sig"}}})
	}))
	defer jwks.Close()
	id, _ := mcpidentity.GenerateKey()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s, err := New(Config{Resource: "http://127.0.0.1:8082/mcp", Issuer: "http://127.0.0.1:8081", JWKSURL: jwks.URL,
		IdentityKey: id, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sg, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: other}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k"))
	forged, _ := jwt.Signed(sg).Claims(map[string]any{"iss": "http://127.0.0.1:8081", "aud": "http://127.0.0.1:8082/mcp",
		"sub": "pt-0001", "exp": now.Add(time.Hour).Unix()}).Serialize()
	f.Add(forged)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		if g, err := s.verifyToken(context.Background(), tok); err == nil {
			t.Fatalf("accepted %q as %+v", tok, g)
		}
	})
}
