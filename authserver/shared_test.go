package authserver

import (
	"context"
	"crypto/rand"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/session"
)

// TestTwoInstancesShareLimits: two AS instances with their own store
// handles on one database file enforce one set of limits and sessions —
// nothing that matters lives in memory.
func TestTwoInstancesShareLimits(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	dbPath := filepath.Join(t.TempDir(), "shared.db")
	key := make([]byte, 32)
	rand.Read(key)
	sk, _ := GenerateSigningKey()
	var urls []string
	for range 2 {
		sealer, _ := session.NewSealer(map[uint32][]byte{1: key}, 1)
		st, err := session.Open(context.Background(), dbPath, session.Options{Sealer: sealer, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := Seed(context.Background(), st, testPepper, DemoPatients()); err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewUnstartedServer(nil)
		srv, err := New(Config{Issuer: "http://as.test", Store: st, Pepper: testPepper, SigningKeys: []jose.JSONWebKey{sk},
			Clients: []Client{{ID: ivrID, Secret: ivrSecret, FirstParty: true}}, Resources: []string{testResource},
			Policy: Policy{NumberFailures: 1000}, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		ts.Config.Handler = srv.Handler()
		ts.Start()
		t.Cleanup(ts.Close)
		urls = append(urls, ts.URL)
	}
	e := &env{t: t, clk: clk}
	on := func(i int, f url.Values) reply {
		e.base = urls[i]
		return e.post("/challenge", f)
	}
	m := demo("pt-0001")
	// A session started on instance 0 continues on instance 1.
	_, c := pkce()
	r := on(0, kba(c, m.Name, "", "", m.Phone, stirA, ""))
	if r = on(1, follow(r.err.AuthSession, "kba_birthdate", m.Birthdate, "kba_ssn_last4", m.SSNLast4)); r.status != 200 {
		t.Fatalf("cross-instance session: %d %s", r.status, r.body)
	}
	// Failures alternate between instances; the third locks everywhere.
	for i := range 3 {
		_, c := pkce()
		on(i%2, kba(c, m.Name, "1999-09-09", m.SSNLast4, m.Phone, stirA, ""))
	}
	for i := range 2 {
		_, c := pkce()
		if r := on(i, kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "")); r.status == 200 || !r.err.KBARetry {
			t.Fatalf("instance %d ignored the shared lock: %s", i, r.body)
		}
	}
}

// TestConcurrentCodeRedemption: of many racing redemptions of one code,
// exactly one gets tokens.
func TestConcurrentCodeRedemption(t *testing.T) {
	e := newEnv(t, nil)
	code, v := e.codeFor("")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.redeem(code, v)
			if r.status == 200 {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if r.err.Error != challenge.ErrInvalidGrant {
				t.Errorf("loser got %s", r.body)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d redemptions succeeded", wins)
	}
}
