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
	r, err := st.GetRecord(ctx, "claim", "k1")
	must(t, err)
	if string(r.Data) != "call" {
		t.Fatalf("claim = %q", r.Data)
	}

	// The claim is taken: no call is written.
	if err := st.CreateCallClaimed(ctx, claim("k1", "other"), &Call{ID: "CA2"}); !errors.Is(err, ErrExists) {
		t.Fatalf("taken claim: %v, want ErrExists", err)
	}
	if _, err := st.GetCall(ctx, "CA2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("call written under a taken claim: %v", err)
	}
	if r, _ := st.GetRecord(ctx, "claim", "k1"); string(r.Data) != "call" {
		t.Fatalf("taken claim overwritten: %q", r.Data)
	}

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
		if _, err := st.GetRecord(ctx, "claim", fmt.Sprint("k", i)); err != nil {
			t.Errorf("claim %d: %v", i, err)
		}
	}
}
