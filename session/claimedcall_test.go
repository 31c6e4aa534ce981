package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// CreateCallClaimed writes the claim and the call together or not at all.
func TestCreateCallClaimed(t *testing.T) {
	ctx := context.Background()
	st := openSQLiteTest(t)
	claim := func(key, v string) *Record {
		return &Record{Kind: "claim", Key: key, Data: []byte(v), ExpiresAt: time.Now().Add(time.Hour)}
	}

	c := &Call{ID: "CA1", State: []byte(`{"turn":0}`)}
	must(t, st.CreateCallClaimed(ctx, claim("k1", "call"), c))
	if c.Version != 1 {
		t.Fatalf("version = %d, want 1", c.Version)
	}
	got, err := st.GetCall(ctx, "CA1")
	must(t, err)
	if string(got.State) != `{"turn":0}` {
		t.Fatalf("state = %q", got.State)
	}
	// On SQLite the call row is the claim: no claim record is written.
	if _, err := st.GetRecord(ctx, "claim", "k1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim record on SQLite: %v, want none", err)
	}

	// The claim is taken (a host's registration): no call is written.
	must(t, st.PutRecord(ctx, claim("k2", "host-pending")))
	if err := st.CreateCallClaimed(ctx, claim("k2", "call"), &Call{ID: "CA2"}); !errors.Is(err, ErrExists) {
		t.Fatalf("taken claim: %v, want ErrExists", err)
	}
	if _, err := st.GetCall(ctx, "CA2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("call written under a taken claim: %v", err)
	}
	if r, _ := st.GetRecord(ctx, "claim", "k2"); string(r.Data) != "host-pending" {
		t.Fatalf("taken claim overwritten: %q", r.Data)
	}
	// An expired claim record reads as absent and does not block the call.
	must(t, st.PutRecord(ctx, &Record{Kind: "claim", Key: "k4", Data: []byte("host-pending"), ExpiresAt: time.Now().Add(-time.Minute)}))
	must(t, st.CreateCallClaimed(ctx, claim("k4", "call"), &Call{ID: "CA4", State: []byte("{}")}))
	// A claim of another kind with the same key does not block it either.
	must(t, st.PutRecord(ctx, &Record{Kind: "other", Key: "k5", Data: []byte("x")}))
	must(t, st.CreateCallClaimed(ctx, claim("k5", "call"), &Call{ID: "CA5", State: []byte("{}")}))

	// The call exists: the new claim is rolled back, the call is unchanged.
	if err := st.CreateCallClaimed(ctx, claim("k3", "call"), &Call{ID: "CA1", State: []byte("x")}); !errors.Is(err, ErrExists) {
		t.Fatalf("existing call: %v, want ErrExists", err)
	}
	if _, err := st.GetRecord(ctx, "claim", "k3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim kept for a call that already existed: %v", err)
	}
	if got, _ := st.GetCall(ctx, "CA1"); string(got.State) != `{"turn":0}` || got.Version != 1 {
		t.Fatalf("existing call changed: %q v%d", got.State, got.Version)
	}
}

// Concurrent incoming calls share commits (group commit); pairs racing for
// one claim or one call still end with exactly one winner each and no
// half-written pair.
func TestCreateCallClaimedConcurrent(t *testing.T) {
	ctx := context.Background()
	st := openSQLiteTest(t)
	const n = 40
	var wg sync.WaitGroup
	wins := make([]int, n)
	var mu sync.Mutex
	for i := range n {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := st.CreateCallClaimed(ctx,
					&Record{Kind: "claim", Key: fmt.Sprint("k", i), Data: []byte("call"), ExpiresAt: time.Now().Add(time.Hour)},
					&Call{ID: fmt.Sprint("CA", i), State: []byte("{}")})
				switch {
				case err == nil:
					mu.Lock()
					wins[i]++
					mu.Unlock()
				case !errors.Is(err, ErrExists):
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	for i := range n {
		if wins[i] != 1 {
			t.Errorf("call %d: %d winners, want 1", i, wins[i])
		}
		if _, err := st.GetCall(ctx, fmt.Sprint("CA", i)); err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
}

// On PostgreSQL the claim record is written with the call (two concurrent
// transactions could both pass a NOT EXISTS check), and a taken claim or an
// existing call still refuse the pair.
func TestCreateCallClaimedPostgres(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, pgTestDSN(t), Options{Sealer: testSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	claim := func(key, v string) *Record {
		return &Record{Kind: "claim", Key: key, Data: []byte(v), ExpiresAt: time.Now().Add(time.Hour)}
	}
	must(t, st.CreateCallClaimed(ctx, claim("k1", "call"), &Call{ID: "CA1", State: []byte("{}")}))
	if r, err := st.GetRecord(ctx, "claim", "k1"); err != nil || string(r.Data) != "call" {
		t.Fatalf("claim record on PostgreSQL: %v %v", r, err)
	}
	if err := st.CreateCallClaimed(ctx, claim("k1", "call"), &Call{ID: "CA2"}); !errors.Is(err, ErrExists) {
		t.Fatalf("taken claim: %v", err)
	}
	if err := st.CreateCallClaimed(ctx, claim("k3", "call"), &Call{ID: "CA1"}); !errors.Is(err, ErrExists) {
		t.Fatalf("existing call: %v", err)
	}
	if _, err := st.GetRecord(ctx, "claim", "k3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim kept for an existing call: %v", err)
	}
}
