package challenge

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestDiscoverHappyPathAndCache(t *testing.T) {
	as := newFakeAS(t)
	mcp := newFakeMCP(t, as.Issuer)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := newTestClient(t, func(cfg *Config) { cfg.Now = func() time.Time { return now } })

	d, err := c.Discover(context.Background(), mcp.URL)
	if err != nil {
		t.Fatal(err)
	}
	if d.Resource != mcp.URL || d.AS.Issuer != as.Issuer || !slices.Equal(d.Scopes, []string{"appointments:read"}) {
		t.Fatalf("discovery = %+v", d)
	}
	// Scope falls back to scopes_supported when the 401 carries none.
	mcp.mu.Lock()
	mcp.Header = `Bearer resource_metadata="` + mcp.srv.URL + `/.well-known/oauth-protected-resource/mcp"`
	mcp.mu.Unlock()
	n := len(mcp.requests())
	if _, err := c.Discover(context.Background(), mcp.URL); err != nil {
		t.Fatal(err)
	}
	if got := len(mcp.requests()); got != n {
		t.Fatalf("cached discovery made %d MCP requests", got-n)
	}
	// No Cache-Control: the default TTL (10 min) applies.
	now = now.Add(11 * time.Minute)
	d, err = c.Discover(context.Background(), mcp.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Scopes, mcp.PRM.ScopesSupported) {
		t.Fatalf("scopes = %v, want PRM scopes_supported", d.Scopes)
	}
}

func TestDiscoverCacheControl(t *testing.T) {
	as := newFakeAS(t)
	var asHits atomic.Int32
	as.MetaHook = func(w http.ResponseWriter, r *http.Request) bool {
		asHits.Add(1)
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Content-Type", "application/json")
		return writeMeta(w, as)
	}
	mcp := newFakeMCP(t, as.Issuer)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := newTestClient(t, func(cfg *Config) { cfg.Now = func() time.Time { return now } })
	for i, step := range []struct {
		advance time.Duration
		hits    int32
	}{{0, 1}, {30 * time.Second, 1}, {31 * time.Second, 2}, {0, 2}} {
		now = now.Add(step.advance)
		if _, err := c.Discover(context.Background(), mcp.URL); err != nil {
			t.Fatal(err)
		}
		if got := asHits.Load(); got != step.hits {
			t.Fatalf("step %d: AS metadata fetched %d times, want %d", i, got, step.hits)
		}
	}
}

func TestDiscoverNoStoreIsNotCached(t *testing.T) {
	as := newFakeAS(t)
	var asHits atomic.Int32
	as.MetaHook = func(w http.ResponseWriter, r *http.Request) bool {
		asHits.Add(1)
		w.Header().Set("Cache-Control", "no-store")
		return writeMeta(w, as)
	}
	mcp := newFakeMCP(t, as.Issuer)
	c := newTestClient(t, nil)
	for range 3 {
		if _, err := c.Discover(context.Background(), mcp.URL); err != nil {
			t.Fatal(err)
		}
	}
	if asHits.Load() != 3 {
		t.Fatalf("no-store metadata fetched %d times for 3 discoveries", asHits.Load())
	}
}

func writeMeta(w http.ResponseWriter, as *fakeAS) bool {
	w.WriteHeader(200)
	b, _ := jsonMarshal(as.Meta)
	_, _ = w.Write(b)
	return true
}

func TestDiscoverFallbacks(t *testing.T) {
	t.Run("no header: path-inserted PRM", func(t *testing.T) {
		as := newFakeAS(t)
		mcp := newFakeMCP(t, as.Issuer)
		mcp.Header = ""
		d, err := newTestClient(t, nil).Discover(context.Background(), mcp.URL)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Scopes, mcp.PRM.ScopesSupported) {
			t.Fatalf("scopes %v", d.Scopes)
		}
	})
	t.Run("no header: root PRM after path-inserted 404", func(t *testing.T) {
		as := newFakeAS(t)
		mcp := newFakeMCP(t, as.Issuer)
		mcp.Header = ""
		var paths []string
		mcp.PRMHook = func(w http.ResponseWriter, r *http.Request) bool {
			http.NotFound(w, r)
			return true
		}
		// Root PRM: served by a wrapper route.
		root := newPRMRoot(t, mcp)
		_ = root
		d, err := newTestClient(t, nil).Discover(context.Background(), mcp.URL)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range mcp.requests() {
			paths = append(paths, r.Method+" "+r.Path)
		}
		want := []string{"POST /mcp", "GET /.well-known/oauth-protected-resource/mcp", "GET /.well-known/oauth-protected-resource"}
		if !slices.Equal(paths, want) || d.Resource != mcp.URL {
			t.Fatalf("paths %v, resource %s", paths, d.Resource)
		}
	})
	t.Run("issuer with path: OIDC variants in order", func(t *testing.T) {
		var seen []string
		srv := newMux(t, func(w http.ResponseWriter, r *http.Request, base string) {
			seen = append(seen, r.URL.Path)
			if r.URL.Path == "/tenant1/.well-known/openid-configuration" {
				writeJSON(w, 200, ASMetadata{Issuer: base + "/tenant1", AuthorizationChallengeEndpoint: base + "/c",
					TokenEndpoint: base + "/t", CodeChallengeMethodsSupported: []string{"S256"}})
				return
			}
			http.NotFound(w, r)
		})
		c := newTestClient(t, nil)
		as, _, err := c.fetchAS(context.Background(), srv+"/tenant1")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"/.well-known/oauth-authorization-server/tenant1", "/.well-known/openid-configuration/tenant1", "/tenant1/.well-known/openid-configuration"}
		if !slices.Equal(seen, want) || as.Issuer != srv+"/tenant1" {
			t.Fatalf("tried %v", seen)
		}
	})
}

func TestDiscoverHostile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(as *fakeAS, mcp *fakeMCP, cfg *Config)
		want  error
	}{
		{"wrong issuer", func(as *fakeAS, _ *fakeMCP, _ *Config) { as.Meta.Issuer = "https://honest.example" }, ErrIssuerMismatch},
		{"missing S256", func(as *fakeAS, _ *fakeMCP, _ *Config) { as.Meta.CodeChallengeMethodsSupported = []string{"plain"} }, ErrNoS256},
		{"no code_challenge_methods", func(as *fakeAS, _ *fakeMCP, _ *Config) { as.Meta.CodeChallengeMethodsSupported = nil }, ErrNoS256},
		{"missing challenge endpoint", func(as *fakeAS, _ *fakeMCP, _ *Config) { as.Meta.AuthorizationChallengeEndpoint = "" }, ErrNoChallengeEP},
		{"challenge endpoint over plain http off loopback", func(as *fakeAS, _ *fakeMCP, _ *Config) {
			as.Meta.AuthorizationChallengeEndpoint = "http://as.example.com/challenge"
		}, ErrInsecureURL},
		{"PRM for another resource", func(_ *fakeAS, mcp *fakeMCP, _ *Config) { mcp.PRM.Resource = "https://evil.example.com/mcp" }, ErrResourceMismatch},
		{"PRM for a sibling path", func(_ *fakeAS, mcp *fakeMCP, _ *Config) { mcp.PRM.Resource = mcp.URL + "/other" }, ErrResourceMismatch},
		{"PRM without authorization servers", func(_ *fakeAS, mcp *fakeMCP, _ *Config) { mcp.PRM.AuthorizationServers = nil }, ErrNotDiscovered},
		{"pinned issuer not listed", func(_ *fakeAS, _ *fakeMCP, cfg *Config) { cfg.Issuer = "http://127.0.0.1:1" }, ErrUntrustedIssuer},
		{"AS metadata 500", func(as *fakeAS, _ *fakeMCP, _ *Config) {
			as.MetaHook = func(w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(500); return true }
		}, ErrUnexpectedStatus},
		{"PRM 500", func(_ *fakeAS, mcp *fakeMCP, _ *Config) {
			mcp.PRMHook = func(w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(500); return true }
		}, ErrUnexpectedStatus},
		{"truncated AS JSON", func(as *fakeAS, _ *fakeMCP, _ *Config) {
			as.MetaHook = func(w http.ResponseWriter, _ *http.Request) bool {
				_, _ = w.Write([]byte(`{"issuer":"` + as.Issuer + `","token_endpoint":"x`))
				return true
			}
		}, ErrMalformedResponse},
		{"PRM not an object", func(_ *fakeAS, mcp *fakeMCP, _ *Config) {
			mcp.PRMHook = func(w http.ResponseWriter, _ *http.Request) bool { _, _ = w.Write([]byte(`["resource"]`)); return true }
		}, ErrMalformedResponse},
		{"PRM wrong types", func(_ *fakeAS, mcp *fakeMCP, _ *Config) {
			mcp.PRMHook = func(w http.ResponseWriter, _ *http.Request) bool {
				_, _ = w.Write([]byte(`{"resource":42}`))
				return true
			}
		}, ErrMalformedResponse},
		{"oversized AS JSON", func(as *fakeAS, _ *fakeMCP, cfg *Config) {
			cfg.MaxResponseBytes = 4096
			as.MetaHook = func(w http.ResponseWriter, _ *http.Request) bool {
				_, _ = w.Write([]byte(`{"issuer":"` + as.Issuer + `","x":"` + strings.Repeat("A", 1<<20) + `"}`))
				return true
			}
		}, ErrResponseTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t)
			mcp := newFakeMCP(t, as.Issuer)
			cfg := Config{ClientID: testClientID, ClientSecret: testClientSecret}
			tt.setup(as, mcp, &cfg)
			_, err := New(cfg).Discover(context.Background(), mcp.URL)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Op != "discover" {
				t.Fatalf("err %T %v is not a discover *Error", err, err)
			}
		})
	}
}

func TestDiscoverRetriesOn503WithRetryAfter(t *testing.T) {
	as := newFakeAS(t)
	var hits atomic.Int32
	as.MetaHook = func(w http.ResponseWriter, _ *http.Request) bool {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(503)
			return true
		}
		return false
	}
	mcp := newFakeMCP(t, as.Issuer)
	if _, err := newTestClient(t, nil).Discover(context.Background(), mcp.URL); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 2 {
		t.Fatalf("AS metadata hits = %d, want 2", hits.Load())
	}
	// Without Retry-After a 503 is final.
	as2 := newFakeAS(t)
	as2.MetaHook = func(w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(503); return true }
	mcp2 := newFakeMCP(t, as2.Issuer)
	_, err := newTestClient(t, nil).Discover(context.Background(), mcp2.URL)
	if !errors.Is(err, ErrUnexpectedStatus) {
		t.Fatalf("err = %v", err)
	}
	n := 0
	for _, r := range as2.requests() {
		if r.Path == "/.well-known/oauth-authorization-server" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("503 without Retry-After was retried: %d requests", n)
	}
}

func TestCanonicalResourceCompare(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"http://127.0.0.1:8082/mcp", "http://127.0.0.1:8082/mcp", true},
		{"HTTPS://MCP.Example.com/mcp", "https://mcp.example.com/mcp", true},
		{"https://mcp.example.com:443/mcp", "https://mcp.example.com/mcp", true},
		{"https://mcp.example.com", "https://mcp.example.com/", true},
		{"https://mcp.example.com/MCP", "https://mcp.example.com/mcp", false},
		{"https://mcp.example.com/mcp/", "https://mcp.example.com/mcp", false},
		{"https://mcp.example.com/mcp#x", "https://mcp.example.com/mcp", false},
		{"http://mcp.example.com/mcp", "https://mcp.example.com/mcp", false},
		{"mcp.example.com/mcp", "https://mcp.example.com/mcp", false},
		{"https://evil.example.com/mcp", "https://mcp.example.com/mcp", false},
	}
	for _, tt := range tests {
		if got := sameResource(tt.a, tt.b); got != tt.same {
			t.Errorf("sameResource(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

// A Retry-After that does not fit the caller's budget is not waited for.
func TestDiscover503RetryAfterBeyondDeadline(t *testing.T) {
	as := newFakeAS(t)
	as.MetaHook = func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(503)
		return true
	}
	mcp := newFakeMCP(t, as.Issuer)
	c := newTestClient(t, nil)
	slept := false
	c.sleep = func(context.Context, time.Duration) error { slept = true; return nil }
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.Discover(ctx, mcp.URL); !errors.Is(err, ErrUnexpectedStatus) {
		t.Fatalf("err %v", err)
	}
	if slept {
		t.Fatal("waited past the caller's deadline")
	}
	// With room in the budget it waits (through the injectable sleep) and retries twice at most.
	slept = false
	if _, err := c.Discover(context.Background(), mcp.URL); !errors.Is(err, ErrUnexpectedStatus) || !slept {
		t.Fatalf("err %v slept %v", err, slept)
	}
	n := 0
	for _, r := range as.requests() {
		if r.Path == "/.well-known/oauth-authorization-server" {
			n++
		}
	}
	if n != 1+3 {
		t.Fatalf("metadata GETs %d, want 1 + 3", n)
	}
}
