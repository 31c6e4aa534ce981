package healthmcp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestJWKSRefetch: keys are cached; an unknown kid refetches (the AS rotated),
// but not more often than minRefetch.
func TestJWKSRefetch(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var mu sync.Mutex
	keys := []jose.JSONWebKey{{Key: k1.Public(), KeyID: "as-1", Algorithm: "ES256", Use: "sig"}}
	fetches := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
	}))
	defer srv.Close()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	j := &jwks{url: srv.URL, client: srv.Client(), now: func() time.Time { return now }}
	ctx := t.Context()

	steps := []struct {
		name        string
		kid         string
		advance     time.Duration
		rotate      bool
		wantErr     bool
		wantFetches int
	}{
		{"first use fetches", "as-1", 0, false, false, 1},
		{"cached", "as-1", time.Second, false, false, 1},
		{"unknown kid within window: no refetch", "as-2", time.Second, true, true, 1},
		{"unknown kid after window: refetch finds rotated key", "as-2", minRefetch, false, false, 2},
		{"still unknown kid: rate limited", "as-9", time.Second, false, true, 2},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		if st.rotate {
			mu.Lock()
			keys = append(keys, jose.JSONWebKey{Key: k2.Public(), KeyID: "as-2", Algorithm: "ES256", Use: "sig"})
			mu.Unlock()
		}
		_, err := j.key(ctx, st.kid)
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: err %v", st.name, err)
		}
		if err != nil && !errors.Is(err, errInvalidToken) {
			t.Fatalf("%s: err %v is not errInvalidToken", st.name, err)
		}
		mu.Lock()
		got := fetches
		mu.Unlock()
		if got != st.wantFetches {
			t.Fatalf("%s: %d fetches, want %d", st.name, got, st.wantFetches)
		}
	}
}
