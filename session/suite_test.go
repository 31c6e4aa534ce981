package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is the injectable clock the suite drives expiry with.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testSealer(t testing.TB) *Sealer {
	t.Helper()
	s, err := NewSealer(map[uint32][]byte{1: testKey(0x11)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// internals gives the suite the raw database behind a Store, to look at
// rows the way an attacker with a copy of the database would.
func internals(t *testing.T, st Store) *sqlStore {
	t.Helper()
	s, ok := st.(*sqlStore)
	if !ok {
		t.Fatalf("store is %T, not *sqlStore", st)
	}
	return s
}

// runStoreSuite is the one behavioural contract both backends must meet.
// open returns a fresh, empty store (closed by the test's cleanup).
func runStoreSuite(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	withClock := func(t *testing.T) (Store, *fakeClock) {
		st := open(t)
		clk := newFakeClock()
		internals(t, st).now = clk.Now
		return st, clk
	}

	t.Run("Calls", func(t *testing.T) {
		st, clk := withClock(t)
		if _, err := st.GetCall(ctx, "CA404"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetCall(missing) err = %v, want ErrNotFound", err)
		}
		c := &Call{ID: "CA1", State: []byte(`{"step":"name"}`)}
		if err := st.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		if c.Version != 1 || !c.CreatedAt.Equal(clk.Now()) {
			t.Fatalf("after create: version %d created %v", c.Version, c.CreatedAt)
		}
		if err := st.CreateCall(ctx, &Call{ID: "CA1"}); !errors.Is(err, ErrExists) {
			t.Fatalf("CreateCall(dup) err = %v, want ErrExists", err)
		}
		got, err := st.GetCall(ctx, "CA1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 1 || string(got.State) != `{"step":"name"}` || got.Ended {
			t.Fatalf("GetCall = %+v", got)
		}
		clk.Advance(time.Second)
		got.State, got.Ended = []byte(`{"step":"dob"}`), true
		if err := st.UpdateCall(ctx, got); err != nil {
			t.Fatal(err)
		}
		if got.Version != 2 || !got.UpdatedAt.Equal(clk.Now()) {
			t.Fatalf("after update: %+v", got)
		}
		stale := *got
		stale.Version = 1
		if err := st.UpdateCall(ctx, &stale); !errors.Is(err, ErrConflict) {
			t.Fatalf("UpdateCall(stale) err = %v, want ErrConflict", err)
		}
		if stale.Version != 1 {
			t.Fatal("a failed update changed the caller's version")
		}
		if err := st.UpdateCall(ctx, &Call{ID: "CA404", Version: 1}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UpdateCall(missing) err = %v, want ErrNotFound", err)
		}
		again, _ := st.GetCall(ctx, "CA1")
		if again.Version != 2 || string(again.State) != `{"step":"dob"}` || !again.Ended || !again.CreatedAt.Equal(c.CreatedAt) {
			t.Fatalf("stored call = %+v", again)
		}
	})

	t.Run("UpdateCallRace", func(t *testing.T) {
		st := open(t)
		for round := range 20 {
			id := fmt.Sprintf("CA-race-%d", round)
			if err := st.CreateCall(ctx, &Call{ID: id, State: []byte("0")}); err != nil {
				t.Fatal(err)
			}
			var wins, conflicts atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for g := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := &Call{ID: id, Version: 1, State: []byte(fmt.Sprint(g))}
					<-start
					switch err := st.UpdateCall(ctx, c); {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, ErrConflict):
						conflicts.Add(1)
					default:
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if wins.Load() != 1 || conflicts.Load() != 1 {
				t.Fatalf("round %d: %d wins, %d conflicts; want exactly one of each", round, wins.Load(), conflicts.Load())
			}
			c, _ := st.GetCall(ctx, id)
			if c.Version != 2 {
				t.Fatalf("version after race = %d", c.Version)
			}
		}
	})

	t.Run("SweepCalls", func(t *testing.T) {
		st, clk := withClock(t)
		for _, id := range []string{"CA-old", "CA-old2"} {
			if err := st.CreateCall(ctx, &Call{ID: id}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.PutTokens(ctx, "CA-old", TokenSet{AccessToken: "a"}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutTokens(ctx, "CA-orphan", TokenSet{AccessToken: "b"}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Minute)
		if err := st.CreateCall(ctx, &Call{ID: "CA-new"}); err != nil {
			t.Fatal(err)
		}
		old, _ := st.GetCall(ctx, "CA-old2")
		if err := st.UpdateCall(ctx, old); err != nil { // touching keeps it alive
			t.Fatal(err)
		}
		n, err := st.SweepCalls(ctx, clk.Now().Add(-time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("SweepCalls = %d, %v; want 1", n, err)
		}
		for id, want := range map[string]error{"CA-old": ErrNotFound, "CA-old2": nil, "CA-new": nil} {
			if _, err := st.GetCall(ctx, id); !errors.Is(err, want) && !(want == nil && err == nil) {
				t.Errorf("GetCall(%s) err = %v, want %v", id, err, want)
			}
		}
		for _, id := range []string{"CA-old", "CA-orphan"} {
			if _, err := st.GetTokens(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("tokens of swept call %s: err = %v", id, err)
			}
		}
	})

	t.Run("Tokens", func(t *testing.T) {
		st := open(t)
		if _, err := st.GetTokens(ctx, "CA1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetTokens(missing) err = %v", err)
		}
		exp := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
		ts := TokenSet{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer", Scope: "appointments:read",
			Issuer: "http://127.0.0.1:8081", Resource: "http://127.0.0.1:8082/mcp", Expiry: exp}
		if err := st.PutTokens(ctx, "CA1", ts); err != nil {
			t.Fatal(err)
		}
		got, err := st.GetTokens(ctx, "CA1")
		if err != nil || !sameTokens(got, ts) {
			t.Fatalf("GetTokens = %+v, %v", got, err)
		}
		ts.AccessToken, ts.Scope = "at2", "appointments:read medications:read"
		if err := st.PutTokens(ctx, "CA1", ts); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.GetTokens(ctx, "CA1"); got.AccessToken != "at2" || got.Scope != ts.Scope {
			t.Fatalf("after replace: %+v", got)
		}
		if err := st.DeleteTokens(ctx, "CA1"); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteTokens(ctx, "CA1"); err != nil {
			t.Fatalf("DeleteTokens(absent) = %v", err)
		}
		if _, err := st.GetTokens(ctx, "CA1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after delete err = %v", err)
		}
	})

	t.Run("Records", func(t *testing.T) {
		st, clk := withClock(t)
		r := &Record{Kind: "auth_session", Key: "h1", Data: []byte("d1"), ExpiresAt: clk.Now().Add(5 * time.Minute)}
		if err := st.PutRecord(ctx, r); err != nil || r.Version != 1 {
			t.Fatalf("PutRecord = %v (version %d)", err, r.Version)
		}
		if err := st.PutRecord(ctx, &Record{Kind: "auth_session", Key: "h1", Data: []byte("x")}); !errors.Is(err, ErrExists) {
			t.Fatalf("PutRecord(dup) = %v, want ErrExists", err)
		}
		if err := st.PutRecord(ctx, &Record{Kind: "code", Key: "h1", Data: []byte("other kind")}); err != nil {
			t.Fatalf("same key, other kind: %v", err)
		}
		got, err := st.GetRecord(ctx, "auth_session", "h1")
		if err != nil || string(got.Data) != "d1" || got.Version != 1 || !got.ExpiresAt.Equal(r.ExpiresAt) {
			t.Fatalf("GetRecord = %+v, %v", got, err)
		}
		got.Data = []byte("d2")
		if err := st.UpdateRecord(ctx, got); err != nil || got.Version != 2 {
			t.Fatalf("UpdateRecord = %v (version %d)", err, got.Version)
		}
		stale := &Record{Kind: "auth_session", Key: "h1", Version: 1, Data: []byte("lost")}
		if err := st.UpdateRecord(ctx, stale); !errors.Is(err, ErrConflict) {
			t.Fatalf("UpdateRecord(stale) = %v, want ErrConflict", err)
		}
		if err := st.UpdateRecord(ctx, &Record{Kind: "auth_session", Key: "nope", Version: 1}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UpdateRecord(missing) = %v, want ErrNotFound", err)
		}
		// Expiry: reads as absent at the instant it expires; may be re-put.
		clk.Advance(5 * time.Minute)
		if _, err := st.GetRecord(ctx, "auth_session", "h1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired GetRecord = %v, want ErrNotFound", err)
		}
		if err := st.UpdateRecord(ctx, got); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired UpdateRecord = %v, want ErrNotFound", err)
		}
		if _, err := st.GetRecord(ctx, "code", "h1"); err != nil {
			t.Fatalf("never-expiring record: %v", err)
		}
		if rs, err := st.(RecordLister).ListRecords(ctx, "code"); err != nil || len(rs) != 1 || rs[0].Key != "h1" || string(rs[0].Data) != "other kind" {
			t.Fatalf("ListRecords(code) = %+v, %v", rs, err)
		}
		if rs, err := st.(RecordLister).ListRecords(ctx, "auth_session"); err != nil || len(rs) != 0 {
			t.Fatalf("ListRecords(expired kind) = %+v, %v", rs, err)
		}
		n, err := st.SweepRecords(ctx, clk.Now())
		if err != nil || n != 1 {
			t.Fatalf("SweepRecords = %d, %v; want 1", n, err)
		}
		if err := st.PutRecord(ctx, &Record{Kind: "auth_session", Key: "h2", Data: []byte("a"), ExpiresAt: clk.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Minute)
		fresh := &Record{Kind: "auth_session", Key: "h2", Data: []byte("b")}
		if err := st.PutRecord(ctx, fresh); err != nil {
			t.Fatalf("PutRecord over expired = %v", err)
		}
		if g, _ := st.GetRecord(ctx, "auth_session", "h2"); g == nil || string(g.Data) != "b" || g.Version != 1 || !g.ExpiresAt.IsZero() {
			t.Fatalf("replaced record = %+v", g)
		}
		if err := st.DeleteRecord(ctx, "auth_session", "h2"); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteRecord(ctx, "auth_session", "h2"); err != nil {
			t.Fatalf("DeleteRecord(absent) = %v", err)
		}
		if _, err := st.GetRecord(ctx, "auth_session", "h2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})

	t.Run("RevokedTokens", func(t *testing.T) {
		st, clk := withClock(t)
		if r, err := st.TokenRevoked(ctx, "jti-1"); err != nil || r {
			t.Fatalf("TokenRevoked(never revoked) = %v, %v", r, err)
		}
		exp := clk.Now().Add(10 * time.Minute)
		if err := st.RevokeToken(ctx, "jti-1", exp); err != nil {
			t.Fatal(err)
		}
		// Idempotent, and an earlier expiry never shortens the record.
		if err := st.RevokeToken(ctx, "jti-1", clk.Now().Add(time.Minute)); err != nil {
			t.Fatalf("second RevokeToken = %v", err)
		}
		if err := st.RevokeToken(ctx, "jti-2", clk.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []struct {
			jti string
			exp time.Time
		}{{"", exp}, {"jti-3", time.Time{}}} {
			if err := st.RevokeToken(ctx, bad.jti, bad.exp); err == nil {
				t.Fatalf("RevokeToken(%q, %v) accepted", bad.jti, bad.exp)
			}
		}
		for _, j := range []string{"jti-1", "jti-2"} {
			if r, err := st.TokenRevoked(ctx, j); err != nil || !r {
				t.Fatalf("TokenRevoked(%s) = %v, %v", j, r, err)
			}
		}
		if r, _ := st.TokenRevoked(ctx, "JTI-1"); r {
			t.Fatal("jti lookup is not exact")
		}
		// Past its expiry a row still reads as revoked until purged.
		clk.Advance(5 * time.Minute)
		if r, _ := st.TokenRevoked(ctx, "jti-2"); !r {
			t.Fatal("expired revocation read as not revoked before the purge")
		}
		n, err := st.SweepRevoked(ctx, clk.Now())
		if err != nil || n != 1 {
			t.Fatalf("SweepRevoked = %d, %v; want 1 (jti-2 only)", n, err)
		}
		if r, _ := st.TokenRevoked(ctx, "jti-2"); r {
			t.Fatal("purged revocation still reads as revoked")
		}
		if r, _ := st.TokenRevoked(ctx, "jti-1"); !r {
			t.Fatal("jti-1 purged before its token expired (the later expiry was lost)")
		}
	})

	t.Run("UpdateRecordRace", func(t *testing.T) {
		st := open(t)
		if err := st.PutRecord(ctx, &Record{Kind: "lock", Key: "k", Data: []byte("0")}); err != nil {
			t.Fatal(err)
		}
		// 8 goroutines each add 10 increments with read-modify-CAS loops;
		// the final value must be exactly 80.
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					for {
						r, err := st.GetRecord(ctx, "lock", "k")
						if err != nil {
							t.Error(err)
							return
						}
						var n int
						fmt.Sscan(string(r.Data), &n)
						r.Data = []byte(fmt.Sprint(n + 1))
						err = st.UpdateRecord(ctx, r)
						if err == nil {
							break
						}
						if !errors.Is(err, ErrConflict) {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		r, _ := st.GetRecord(ctx, "lock", "k")
		if string(r.Data) != "80" || r.Version != 81 {
			t.Fatalf("after 80 CAS increments: data %s version %d", r.Data, r.Version)
		}
	})

	t.Run("Events", func(t *testing.T) {
		st, clk := withClock(t)
		t0 := clk.Now()
		add := func(key string, at time.Time) {
			t.Helper()
			if err := st.AddEvent(ctx, key, at); err != nil {
				t.Fatal(err)
			}
		}
		add("fail:id:A", t0.Add(-20*time.Minute))
		add("fail:id:A", t0.Add(-5*time.Minute))
		add("fail:id:A", t0)
		add("fail:id:B", t0.Add(-time.Minute))
		add("fail:id:b", t0.Add(-time.Minute)) // case matters
		add("fail:id%x", t0.Add(-time.Minute)) // LIKE wildcards are literal
		add("fail:idZ_", t0.Add(-time.Minute))
		add("fail:number:1", t0.Add(-time.Minute))
		tests := []struct {
			name string
			got  func() (int, error)
			want int
		}{
			{"count in window", func() (int, error) { return st.CountEvents(ctx, "fail:id:A", t0.Add(-15*time.Minute)) }, 2},
			{"count all", func() (int, error) { return st.CountEvents(ctx, "fail:id:A", time.Time{}) }, 3},
			{"count other key", func() (int, error) { return st.CountEvents(ctx, "fail:id:a", time.Time{}) }, 0},
			{"distinct prefix", func() (int, error) { return st.CountDistinct(ctx, "fail:id:", t0.Add(-15*time.Minute)) }, 3},
			{"distinct prefix, old events out", func() (int, error) { return st.CountDistinct(ctx, "fail:id:A", t0.Add(-time.Second)) }, 1},
			{"distinct wildcard is literal", func() (int, error) { return st.CountDistinct(ctx, "fail:id%", time.Time{}) }, 1},
			{"distinct underscore is literal", func() (int, error) { return st.CountDistinct(ctx, "fail:id_", time.Time{}) }, 0},
			{"distinct all", func() (int, error) { return st.CountDistinct(ctx, "", time.Time{}) }, 6},
		}
		for _, tt := range tests {
			if n, err := tt.got(); err != nil || n != tt.want {
				t.Errorf("%s = %d, %v; want %d", tt.name, n, err, tt.want)
			}
		}
		n, err := st.SweepEvents(ctx, t0.Add(-10*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("SweepEvents = %d, %v; want 1", n, err)
		}
		if n, _ := st.CountEvents(ctx, "fail:id:A", time.Time{}); n != 2 {
			t.Fatalf("after sweep: %d", n)
		}
	})

	t.Run("Patients", func(t *testing.T) {
		st := open(t)
		ps := []Patient{
			{ID: "pt-0001", Name: "Maria Garcia", NameKeys: []string{"nk:maria garcia", "nk:garcia"}, DOBHash: []byte{1}, SSN4Hash: []byte{2}, Phone: "+15555550101", LineType: "mobile"},
			{ID: "pt-0002", Name: "Mario Garcia", NameKeys: []string{"nk:mario garcia", "nk:garcia"}, DOBHash: []byte{3}, SSN4Hash: []byte{4}, Phone: "+15555550102", LineType: "landline"},
			{ID: "pt-0003", Name: "Robert Brown", NameKeys: []string{"nk:robert brown", "nk:bob brown", "nk:bob brown"}, DOBHash: []byte{5}, SSN4Hash: []byte{6}, Phone: "+15555550103", LineType: "voip"},
		}
		if err := st.UpsertPatients(ctx, ps); err != nil {
			t.Fatal(err)
		}
		ids := func(ps []Patient) string {
			var s []string
			for _, p := range ps {
				s = append(s, p.ID)
			}
			return strings.Join(s, ",")
		}
		tests := []struct {
			keys []string
			want string
		}{
			{[]string{"nk:maria garcia"}, "pt-0001"},
			{[]string{"nk:garcia"}, "pt-0001,pt-0002"},
			{[]string{"nk:nobody", "nk:bob brown"}, "pt-0003"},
			{[]string{"nk:maria garcia", "nk:garcia", "nk:garcia"}, "pt-0001,pt-0002"},
			{[]string{"nk:nobody"}, ""},
			{nil, ""},
		}
		for _, tt := range tests {
			got, err := st.FindPatients(ctx, tt.keys)
			if err != nil || ids(got) != tt.want {
				t.Errorf("FindPatients(%v) = %s, %v; want %s", tt.keys, ids(got), err, tt.want)
			}
		}
		p, err := st.GetPatient(ctx, "pt-0003")
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != "Robert Brown" || p.Phone != "+15555550103" || p.LineType != "voip" ||
			!bytes.Equal(p.DOBHash, []byte{5}) || !bytes.Equal(p.SSN4Hash, []byte{6}) ||
			strings.Join(p.NameKeys, "|") != "nk:bob brown|nk:robert brown" {
			t.Fatalf("GetPatient = %+v", p)
		}
		if _, err := st.GetPatient(ctx, "pt-9999"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetPatient(missing) = %v", err)
		}
		// Upsert replaces a patient's name keys and fields.
		ps[1].NameKeys, ps[1].Phone = []string{"nk:mario g"}, "+15555550199"
		dup := ps[1]
		dup.Phone = "+15555550000" // an earlier duplicate in the same batch loses
		if err := st.UpsertPatients(ctx, []Patient{dup, ps[1]}); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.FindPatients(ctx, []string{"nk:garcia"}); ids(got) != "pt-0001" {
			t.Fatalf("stale name key still matches: %s", ids(got))
		}
		if got, _ := st.FindPatients(ctx, []string{"nk:mario g"}); len(got) != 1 || got[0].Phone != "+15555550199" {
			t.Fatalf("after upsert: %+v", got)
		}
		var many []Patient
		for i := range 1000 {
			id := fmt.Sprintf("pt-g%06d", i)
			many = append(many, Patient{ID: id, Name: "G " + id, NameKeys: []string{"nk:" + id, "nk:gen"}, DOBHash: []byte{1}, SSN4Hash: []byte{2}})
		}
		if err := st.UpsertPatients(ctx, many); err != nil {
			t.Fatal(err)
		}
		if n, err := st.CountPatients(ctx); err != nil || n != 1003 {
			t.Fatalf("CountPatients = %d, %v", n, err)
		}
		if got, _ := st.FindPatients(ctx, []string{"nk:pt-g000777"}); ids(got) != "pt-g000777" {
			t.Fatalf("generated lookup = %s", ids(got))
		}
	})

	t.Run("AddEvents", func(t *testing.T) {
		st, clk := withClock(t)
		t0 := clk.Now()
		must(t, st.AddEvent(ctx, "fail:A", t0.Add(-2*time.Hour)))
		must(t, st.AddEvent(ctx, "fail:A", t0.Add(-time.Minute)))
		counts, err := st.AddEvents(ctx, t0, []EventWindow{
			{Key: "fail:A", Since: t0.Add(-time.Hour)}, // the new one and the one a minute ago
			{Key: "fail:B", Since: t0.Add(-time.Hour)}, // only the new one
			{Key: "fail:A", Since: time.Time{}},        // a key twice: both events added, all three older counted
		})
		if err != nil || len(counts) != 3 || counts[0] != 2 || counts[1] != 1 || counts[2] != 4 {
			t.Fatalf("AddEvents = %v, %v; want [2 1 4]", counts, err)
		}
		if _, err := st.AddEvents(ctx, t0, []EventWindow{{Key: "fail:C"}, {Key: ""}}); err == nil {
			t.Fatal("AddEvents with an empty key succeeded")
		}
		if n, _ := st.CountEvents(ctx, "fail:C", time.Time{}); n != 0 {
			t.Fatalf("a refused AddEvents wrote %d events", n)
		}
		if counts, err := st.AddEvents(ctx, t0, nil); err != nil || len(counts) != 0 {
			t.Fatalf("AddEvents(none) = %v, %v", counts, err)
		}
	})

	t.Run("PutRecordAudit", func(t *testing.T) {
		st := open(t)
		r := &Record{Kind: "code", Key: "c1", Data: []byte("code data")}
		e := &AuditEvent{Type: "code.issued", Actor: "ivr", Outcome: "code_issued"}
		must(t, st.PutRecordAudit(ctx, r, e))
		if r.Version != 1 || e.Seq != 1 || len(e.Hash) != auditMACLen {
			t.Fatalf("record version %d, audit seq %d hash %x", r.Version, e.Seq, e.Hash)
		}
		if got, err := st.GetRecord(ctx, "code", "c1"); err != nil || string(got.Data) != "code data" {
			t.Fatalf("GetRecord = %+v, %v", got, err)
		}
		// Both or neither: a taken key writes no audit record either.
		dup := &Record{Kind: "code", Key: "c1", Data: []byte("other")}
		if err := st.PutRecordAudit(ctx, dup, &AuditEvent{Type: "code.issued"}); !errors.Is(err, ErrExists) {
			t.Fatalf("PutRecordAudit(taken key) = %v, want ErrExists", err)
		}
		if err := st.PutRecordAudit(ctx, &Record{Kind: "code", Key: "c2"}, &AuditEvent{}); err == nil {
			t.Fatal("PutRecordAudit without an event type succeeded")
		}
		if _, err := st.GetRecord(ctx, "code", "c2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("record of a refused event: %v", err)
		}
		rep, err := st.VerifyAudit(ctx)
		if err != nil || rep.Problem != "" || rep.Records != 1 {
			t.Fatalf("VerifyAudit = %+v, %v", rep, err)
		}
	})

	t.Run("Pins", func(t *testing.T) {
		st, clk := withClock(t)
		const srv = "http://127.0.0.1:8082/mcp"
		if _, err := st.GetPin(ctx, srv); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetPin(missing) = %v", err)
		}
		p := &Pin{Server: srv, KeyID: "k1", Thumbprint: "tp1", Key: []byte(`{"kty":"OKP"}`)}
		if err := st.PutPin(ctx, p); err != nil {
			t.Fatal(err)
		}
		first := clk.Now()
		clk.Advance(time.Hour)
		got, err := st.GetPin(ctx, srv)
		if err != nil || got.KeyID != "k1" || got.Thumbprint != "tp1" || string(got.Key) != `{"kty":"OKP"}` || !got.PinnedAt.Equal(first) {
			t.Fatalf("GetPin = %+v, %v", got, err)
		}
		got.KeyID, got.Thumbprint = "k2", "tp2"
		if err := st.PutPin(ctx, got); err != nil {
			t.Fatal(err)
		}
		again, _ := st.GetPin(ctx, srv)
		if again.KeyID != "k2" || !again.PinnedAt.Equal(first) || !again.UpdatedAt.Equal(clk.Now()) {
			t.Fatalf("replaced pin = %+v", again)
		}
	})

	t.Run("SealedAtRest", func(t *testing.T) {
		st := open(t)
		s := internals(t, st)
		const canary = "CANARY7Q4Z"
		must(t, st.CreateCall(ctx, &Call{ID: "CA1", State: []byte(`{"dob":"` + canary + `"}`)}))
		must(t, st.PutTokens(ctx, "CA1", TokenSet{AccessToken: canary + "-at", RefreshToken: canary + "-rt"}))
		must(t, st.PutRecord(ctx, &Record{Kind: "otp", Key: "h", Data: []byte("code=" + canary)}))
		must(t, st.UpsertPatients(ctx, []Patient{{ID: "pt-1", Name: canary + " Name", Phone: "+1" + canary, NameKeys: []string{"nk"}}}))
		for _, table := range userTables(t, s) {
			dump := dumpTable(t, s, table)
			if bytes.Contains(dump, []byte(canary)) {
				t.Errorf("table %s holds the plaintext canary", table)
			}
		}
		// The sealed values still read back.
		if c, err := st.GetCall(ctx, "CA1"); err != nil || !strings.Contains(string(c.State), canary) {
			t.Fatalf("GetCall after seal: %v", err)
		}
	})

	t.Run("SchemaHasNoPlaintextSecretColumns", func(t *testing.T) {
		st := open(t)
		s := internals(t, st)
		sensitive := regexp.MustCompile(`(?i)token|birth|dob|ssn|otp|code|secret|phone|state|data|profile|password`)
		allowed := regexp.MustCompile(`_(sealed|hmac)$`)
		cols := columns(t, s)
		if len(cols) < 20 {
			t.Fatalf("schema introspection found only %d columns", len(cols))
		}
		for _, c := range cols {
			if sensitive.MatchString(c.name) && !allowed.MatchString(c.name) {
				t.Errorf("column %s.%s looks like a plaintext secret", c.table, c.name)
			}
			if allowed.MatchString(c.name) && !c.binary {
				t.Errorf("column %s.%s is %s, not binary", c.table, c.name, c.typ)
			}
		}
		for _, want := range []string{"calls.state_sealed", "call_tokens.tokens_sealed", "records.data_sealed", "patients.profile_sealed", "patients.dob_hmac", "patients.ssn4_hmac"} {
			found := false
			for _, c := range cols {
				found = found || c.table+"."+c.name == want
			}
			if !found {
				t.Errorf("column %s missing", want)
			}
		}
	})

	t.Run("WrongAADFails", func(t *testing.T) {
		st := open(t)
		s := internals(t, st)
		must(t, st.CreateCall(ctx, &Call{ID: "CA-a", State: []byte("secret-a")}))
		must(t, st.CreateCall(ctx, &Call{ID: "CA-b", State: []byte("secret-b")}))
		must(t, st.PutRecord(ctx, &Record{Kind: "k", Key: "x", Data: []byte("rec")}))
		// An attacker with write access swaps ciphertexts between rows and columns.
		_, err := s.be.writer().exec(ctx, "UPDATE calls SET state_sealed = (SELECT state_sealed FROM calls WHERE id = ?) WHERE id = ?", "CA-a", "CA-b")
		must(t, err)
		_, err = s.be.writer().exec(ctx, "UPDATE records SET data_sealed = (SELECT state_sealed FROM calls WHERE id = ?)", "CA-a")
		must(t, err)
		if _, err := st.GetCall(ctx, "CA-b"); !errors.Is(err, ErrUnsealable) {
			t.Fatalf("row-swapped state: err = %v, want ErrUnsealable", err)
		}
		if _, err := st.GetRecord(ctx, "k", "x"); !errors.Is(err, ErrUnsealable) {
			t.Fatalf("column-swapped data: err = %v, want ErrUnsealable", err)
		}
		if c, err := st.GetCall(ctx, "CA-a"); err != nil || string(c.State) != "secret-a" {
			t.Fatalf("untouched row: %v", err)
		}
	})

	t.Run("Rewrap", func(t *testing.T) {
		st := open(t)
		s := internals(t, st)
		old := s.sealer
		must(t, st.CreateCall(ctx, &Call{ID: "CA1", State: []byte("state")}))
		must(t, st.PutTokens(ctx, "CA1", TokenSet{AccessToken: "at"}))
		must(t, st.PutRecord(ctx, &Record{Kind: "k", Key: "x", Data: []byte("rec")}))
		must(t, st.(ClientStore).CreateClient(ctx, &Client{ID: "cl1", Kind: "host", Data: []byte("client data")}))
		var ps []Patient
		for i := range rewrapPage + 7 { // more than one page
			ps = append(ps, Patient{ID: fmt.Sprintf("p%04d", i), Name: "n"})
		}
		must(t, st.UpsertPatients(ctx, ps))
		rotated, err := NewSealer(map[uint32][]byte{1: testKey(0x11), 2: testKey(0x22)}, 2)
		must(t, err)
		s.sealer = rotated
		n, err := st.(Rewrapper).Rewrap(ctx)
		if err != nil || n != 4+len(ps) {
			t.Fatalf("Rewrap = %d, %v; want %d", n, err, 4+len(ps))
		}
		if n, err := st.(Rewrapper).Rewrap(ctx); err != nil || n != 0 {
			t.Fatalf("second Rewrap = %d, %v; want 0", n, err)
		}
		// Only the new key remains: everything must still open.
		onlyNew, _ := NewSealer(map[uint32][]byte{2: testKey(0x22)}, 2)
		s.sealer = onlyNew
		if c, err := st.GetCall(ctx, "CA1"); err != nil || string(c.State) != "state" {
			t.Fatalf("GetCall after rewrap: %v", err)
		}
		if ts, err := st.GetTokens(ctx, "CA1"); err != nil || ts.AccessToken != "at" {
			t.Fatalf("GetTokens after rewrap: %v", err)
		}
		if r, err := st.GetRecord(ctx, "k", "x"); err != nil || string(r.Data) != "rec" {
			t.Fatalf("GetRecord after rewrap: %v", err)
		}
		if p, err := st.GetPatient(ctx, fmt.Sprintf("p%04d", rewrapPage+6)); err != nil || p.Name != "n" {
			t.Fatalf("GetPatient after rewrap: %v", err)
		}
		if c, err := st.(ClientStore).GetClient(ctx, "cl1"); err != nil || string(c.Data) != "client data" {
			t.Fatalf("GetClient after rewrap: %v", err)
		}
		s.sealer = old
		if _, err := st.GetCall(ctx, "CA1"); !errors.Is(err, ErrUnsealable) {
			t.Fatalf("old key still opens rewrapped state: %v", err)
		}
	})

	t.Run("Clients", func(t *testing.T) {
		st, clk := withClock(t)
		cs := st.(ClientStore)
		if _, err := cs.GetClient(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetClient(missing) = %v, want ErrNotFound", err)
		}
		if err := cs.DeleteClient(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteClient(missing) = %v, want ErrNotFound", err)
		}
		if err := cs.CreateClient(ctx, &Client{ID: "", Kind: "host"}); err == nil {
			t.Fatal("CreateClient without id succeeded")
		}
		b := &Client{ID: "b-host", Kind: "host", Data: []byte("secret-hash-b")}
		must(t, cs.CreateClient(ctx, b))
		if b.Version != 1 || !b.CreatedAt.Equal(clk.Now()) {
			t.Fatalf("after create: %+v", b)
		}
		must(t, cs.CreateClient(ctx, &Client{ID: "a-voice", Kind: "voice", Data: []byte("secret-hash-a")}))
		if err := cs.CreateClient(ctx, &Client{ID: "b-host", Kind: "exchange", Data: []byte("other")}); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate CreateClient = %v, want ErrExists", err)
		}
		got, err := cs.GetClient(ctx, "b-host")
		if err != nil || got.Kind != "host" || string(got.Data) != "secret-hash-b" || got.Version != 1 {
			t.Fatalf("GetClient = %+v, %v", got, err)
		}
		clk.Advance(time.Minute)
		stale := *got
		got.Data = []byte("rotated")
		must(t, cs.UpdateClient(ctx, got))
		if got.Version != 2 || !got.UpdatedAt.Equal(clk.Now()) {
			t.Fatalf("after update: %+v", got)
		}
		stale.Data = []byte("lost update")
		if err := cs.UpdateClient(ctx, &stale); !errors.Is(err, ErrConflict) {
			t.Fatalf("stale UpdateClient = %v, want ErrConflict", err)
		}
		if err := cs.UpdateClient(ctx, &Client{ID: "ghost", Kind: "host", Version: 1}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UpdateClient(missing) = %v, want ErrNotFound", err)
		}
		list, err := cs.ListClients(ctx)
		if err != nil || len(list) != 2 || list[0].ID != "a-voice" || list[1].ID != "b-host" || string(list[1].Data) != "rotated" || !list[1].CreatedAt.Before(list[1].UpdatedAt) {
			t.Fatalf("ListClients = %+v, %v", list, err)
		}
		// Sealed at rest: the data never appears in the database file's rows.
		var raw []byte
		must(t, internals(t, st).be.reader().queryRow(ctx, "SELECT data_sealed FROM clients WHERE id = ?", "b-host").Scan(&raw))
		if bytes.Contains(raw, []byte("rotated")) {
			t.Fatal("client data stored in plaintext")
		}
		must(t, cs.DeleteClient(ctx, "b-host"))
		if _, err := cs.GetClient(ctx, "b-host"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetClient after delete = %v", err)
		}
		if list, _ := cs.ListClients(ctx); len(list) != 1 {
			t.Fatalf("ListClients after delete = %+v", list)
		}
	})

	t.Run("AuditChain", func(t *testing.T) {
		st, clk := withClock(t)
		for i := range 5 {
			clk.Advance(time.Minute)
			e := &AuditEvent{Type: "kba.failed", Actor: "voiceauth-ivr", Subject: "patient:aa", Number: "number:bb",
				CallRef: fmt.Sprintf("call:%d", i), Outcome: "fail", Detail: map[string]string{"attempt": fmt.Sprint(i)}}
			must(t, st.AppendAudit(ctx, e))
			if e.Seq != int64(i+1) || len(e.Hash) != auditMACLen || (i == 0) != (len(e.PrevHash) == 0) {
				t.Fatalf("appended %+v", e)
			}
		}
		rep, err := st.VerifyAudit(ctx)
		if err != nil || rep.Problem != "" || rep.Records != 5 || rep.FirstBad != 0 {
			t.Fatalf("VerifyAudit = %+v, %v", rep, err)
		}
		all, err := st.ListAudit(ctx, AuditFilter{})
		if err != nil || len(all) != 5 {
			t.Fatalf("ListAudit = %d, %v", len(all), err)
		}
		for i := 1; i < len(all); i++ {
			if !bytes.Equal(all[i].PrevHash, all[i-1].Hash) {
				t.Fatalf("record %d does not chain", all[i].Seq)
			}
		}
		if all[2].Detail["attempt"] != "2" || all[2].CallRef != "call:2" {
			t.Fatalf("round trip: %+v", all[2])
		}
		// The append-only trigger refuses an UPDATE through the database.
		if _, err := internals(t, st).be.writer().exec(ctx, "UPDATE audit_log SET outcome = 'ok' WHERE seq = 1"); err == nil {
			t.Fatal("audit_log accepted an UPDATE")
		}
	})

	t.Run("AuditFilter", func(t *testing.T) {
		st, clk := withClock(t)
		t0 := clk.Now()
		for i, typ := range []string{"kba.failed", "token.issued", "kba.failed", "kba.locked"} {
			subj := "patient:a"
			if i%2 == 1 {
				subj = "patient:b"
			}
			must(t, st.AppendAudit(ctx, &AuditEvent{Type: typ, Subject: subj}))
			clk.Advance(time.Minute)
		}
		tests := []struct {
			f    AuditFilter
			want []int64
		}{
			{AuditFilter{}, []int64{1, 2, 3, 4}},
			{AuditFilter{Subject: "patient:a"}, []int64{1, 3}},
			{AuditFilter{Type: "kba.failed"}, []int64{1, 3}},
			{AuditFilter{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}, []int64{2, 3}},
			{AuditFilter{Limit: 2}, []int64{1, 2}},
			{AuditFilter{Subject: "patient:b", Type: "kba.locked"}, []int64{4}},
		}
		for _, tt := range tests {
			got, err := st.ListAudit(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tt.want) {
				t.Errorf("ListAudit(%+v) = %v, want %v", tt.f, seqs, tt.want)
			}
		}
	})

	t.Run("AuditTamper", func(t *testing.T) {
		tests := []struct {
			name      string
			tamper    []string // statements run by "an attacker"; %s is the trigger drop
			wantBad   int64
			wantWords string
		}{
			{"modified outcome", []string{"UPDATE audit_log SET outcome = 'success' WHERE seq = 3"}, 3, "modified"},
			{"modified detail", []string{`UPDATE audit_log SET detail = '{"attempt":"9"}' WHERE seq = 4`}, 4, "modified"},
			{"modified time", []string{"UPDATE audit_log SET at = at + 1 WHERE seq = 2"}, 2, "modified"},
			{"deleted middle", []string{"DELETE FROM audit_log WHERE seq = 3"}, 3, "missing"},
			{"deleted first", []string{"DELETE FROM audit_log WHERE seq = 1"}, 2, "no checkpoint"},
			{"deleted prefix", []string{"DELETE FROM audit_log WHERE seq <= 2"}, 3, "no checkpoint"},
			{"deleted tail", []string{"DELETE FROM audit_log WHERE seq = 6"}, 6, "end are missing"},
			{"deleted all", []string{"DELETE FROM audit_log"}, 1, "missing"},
			{"rehashed record", []string{"UPDATE audit_log SET outcome = 'x', hash = prev_hash WHERE seq = 5"}, 5, "modified"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st, clk := withClock(t)
				s := internals(t, st)
				for i := range 6 {
					clk.Advance(time.Minute)
					must(t, st.AppendAudit(ctx, &AuditEvent{Type: "kba.failed", Outcome: "fail", Detail: map[string]string{"attempt": fmt.Sprint(i)}}))
				}
				dropAuditTrigger(t, s)
				for _, q := range tt.tamper {
					if _, err := s.be.writer().exec(ctx, q); err != nil {
						t.Fatal(err)
					}
				}
				rep, err := st.VerifyAudit(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if rep.FirstBad != tt.wantBad || !strings.Contains(rep.Problem, tt.wantWords) {
					t.Fatalf("VerifyAudit = %+v; want FirstBad %d and %q", rep, tt.wantBad, tt.wantWords)
				}
			})
		}
	})

	t.Run("AuditPurge", func(t *testing.T) {
		st, clk := withClock(t)
		t0 := clk.Now()
		for range 10 {
			must(t, st.AppendAudit(ctx, &AuditEvent{Type: "token.issued"}))
			clk.Advance(24 * time.Hour)
		}
		if n, err := st.PurgeAudit(ctx, t0); err != nil || n != 0 {
			t.Fatalf("PurgeAudit(nothing old) = %d, %v", n, err)
		}
		n, err := st.PurgeAudit(ctx, t0.Add(4*24*time.Hour)) // records 1..4 are older
		if err != nil || n != 4 {
			t.Fatalf("PurgeAudit = %d, %v; want 4", n, err)
		}
		rep, err := st.VerifyAudit(ctx)
		if err != nil || rep.Problem != "" || rep.Checkpoints != 1 || rep.Records != 7 {
			t.Fatalf("after purge VerifyAudit = %+v, %v", rep, err)
		}
		cps, _ := st.ListAudit(ctx, AuditFilter{Type: AuditCheckpoint})
		if len(cps) != 1 || cps[0].Seq != 11 || cps[0].Detail["purged_through_seq"] != "4" {
			t.Fatalf("checkpoint = %+v", cps)
		}
		// The chain continues after a checkpoint, and purges compose.
		must(t, st.AppendAudit(ctx, &AuditEvent{Type: "token.revoked"}))
		clk.Advance(time.Hour)
		n, err = st.PurgeAudit(ctx, clk.Now()) // everything, including the first checkpoint
		if err != nil || n != 8 {
			t.Fatalf("second PurgeAudit = %d, %v; want 8", n, err)
		}
		rep, err = st.VerifyAudit(ctx)
		if err != nil || rep.Problem != "" || rep.Records != 1 || rep.Checkpoints != 1 {
			t.Fatalf("after second purge VerifyAudit = %+v, %v", rep, err)
		}
		// Deleting the records a checkpoint does not cover is still caught.
		must(t, st.AppendAudit(ctx, &AuditEvent{Type: "token.issued"}))
		must(t, st.AppendAudit(ctx, &AuditEvent{Type: "token.issued"}))
		s := internals(t, st)
		_, err = s.be.writer().exec(ctx, "DELETE FROM audit_log WHERE seq = (SELECT MIN(seq) FROM audit_log)")
		must(t, err)
		rep, _ = st.VerifyAudit(ctx)
		if rep.Problem == "" {
			t.Fatal("deleting the checkpoint went unnoticed")
		}
	})

	t.Run("AuditConcurrentAppends", func(t *testing.T) {
		st := open(t)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					if err := st.AppendAudit(ctx, &AuditEvent{Type: "mcp.tool_call", Actor: fmt.Sprintf("g%d", g), CallRef: fmt.Sprint(i)}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		// Verifying while others append must never mistake the moving head
		// for a deleted tail.
		stop := make(chan struct{})
		verified := make(chan error, 1)
		go func() {
			for {
				select {
				case <-stop:
					verified <- nil
					return
				default:
				}
				rep, err := st.VerifyAudit(ctx)
				if err == nil && rep.Problem != "" {
					err = fmt.Errorf("mid-append VerifyAudit = %+v", rep)
				}
				if err != nil {
					verified <- err
					return
				}
			}
		}()
		wg.Wait()
		close(stop)
		must(t, <-verified)
		rep, err := st.VerifyAudit(ctx)
		if err != nil || rep.Problem != "" || rep.Records != 200 {
			t.Fatalf("VerifyAudit after concurrent appends = %+v, %v", rep, err)
		}
	})

	auditKeySuite(t, open)

	t.Run("MixedConcurrency", func(t *testing.T) {
		st := open(t)
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("CA-mix-%d", g)
				c := &Call{ID: id, State: []byte("s")}
				if err := st.CreateCall(ctx, c); err != nil {
					t.Error(err)
					return
				}
				for i := range 30 {
					got, err := st.GetCall(ctx, id)
					if err != nil {
						t.Error(err)
						return
					}
					got.State = []byte(fmt.Sprint(i))
					if err := st.UpdateCall(ctx, got); err != nil {
						t.Error(err)
						return
					}
					if err := st.AddEvent(ctx, "k:"+id, time.Now()); err != nil {
						t.Error(err)
						return
					}
					if _, err := st.CountDistinct(ctx, "k:", time.Time{}); err != nil {
						t.Error(err)
						return
					}
					if i%10 == 0 {
						if err := st.AppendAudit(ctx, &AuditEvent{Type: "x"}); err != nil {
							t.Error(err)
							return
						}
					}
				}
				final, err := st.GetCall(ctx, id)
				if err != nil || string(final.State) != "29" || final.Version != 31 {
					t.Errorf("final %s: %+v %v", id, final, err)
				}
			}()
		}
		wg.Wait()
		if err := st.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})

	runKeyedDirectorySuite(t, open)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type columnInfo struct {
	table, name, typ string
	binary           bool
}

func userTables(t *testing.T, s *sqlStore) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, c := range columns(t, s) {
		if !seen[c.table] {
			seen[c.table] = true
			out = append(out, c.table)
		}
	}
	return out
}

// columns reads the real schema from the database's catalog.
func columns(t *testing.T, s *sqlStore) []columnInfo {
	t.Helper()
	ctx := context.Background()
	var q string
	switch s.be.name() {
	case "sqlite":
		q = `SELECT m.name, p.name, p.type FROM sqlite_schema m JOIN pragma_table_info(m.name) p
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid`
	case "postgres":
		q = `SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`
	}
	rows, err := s.be.reader().query(ctx, q)
	must(t, err)
	defer rows.Close()
	var out []columnInfo
	for rows.Next() {
		var c columnInfo
		must(t, rows.Scan(&c.table, &c.name, &c.typ))
		c.binary = strings.EqualFold(c.typ, "BLOB") || strings.EqualFold(c.typ, "bytea")
		out = append(out, c)
	}
	must(t, rows.Err())
	return out
}

// dumpTable returns every cell of a table, as text, concatenated.
func dumpTable(t *testing.T, s *sqlStore, table string) []byte {
	t.Helper()
	var cols []string
	for _, c := range columns(t, s) {
		if c.table == table {
			if c.binary {
				cols = append(cols, "COALESCE("+c.name+", '')")
			} else {
				cols = append(cols, "COALESCE(CAST("+c.name+" AS TEXT), '')")
			}
		}
	}
	rows, err := s.be.reader().query(context.Background(), "SELECT "+strings.Join(cols, ", ")+" FROM "+table)
	must(t, err)
	defer rows.Close()
	var buf bytes.Buffer
	for rows.Next() {
		cells := make([][]byte, len(cols))
		dest := make([]any, len(cols))
		for i := range cells {
			dest[i] = &cells[i]
		}
		must(t, rows.Scan(dest...))
		for _, c := range cells {
			buf.Write(c)
			buf.WriteByte('\n')
		}
	}
	must(t, rows.Err())
	return buf.Bytes()
}

func dropAuditTrigger(t *testing.T, s *sqlStore) {
	t.Helper()
	q := "DROP TRIGGER audit_log_append_only"
	if s.be.name() == "postgres" {
		q += " ON audit_log"
	}
	_, err := s.be.writer().exec(context.Background(), q)
	must(t, err)
}

func sameTokens(a, b TokenSet) bool {
	return a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken && a.TokenType == b.TokenType &&
		a.Scope == b.Scope && a.Issuer == b.Issuer && a.Resource == b.Resource && a.Expiry.Equal(b.Expiry)
}

// checkDirectorySharedCache: b caches directory lookups, a (another
// process, in effect) changes the directory; b's next lookup must see it.
func checkDirectorySharedCache(t *testing.T, a, b Store) {
	t.Helper()
	ctx := context.Background()
	p := Patient{ID: "pt-c1", Name: "Ada Lovelace", NameKeys: []string{"nk:ada lovelace"}, DOBHash: []byte{1}, SSN4Hash: []byte{2}, Phone: "+15555550111", LineType: "mobile"}
	must(t, a.UpsertPatients(ctx, []Patient{p}))
	for range 2 { // the second lookup is served from b's cache
		got, err := b.FindPatients(ctx, []string{"nk:ada lovelace"})
		if err != nil || len(got) != 1 || got[0].Phone != "+15555550111" {
			t.Fatalf("FindPatients = %+v, %v", got, err)
		}
		got[0].DOBHash[0], got[0].Phone = 9, "changed by the caller" // must not reach the cache
	}
	if got, _ := b.FindPatients(ctx, []string{"nk:grace hopper"}); len(got) != 0 {
		t.Fatalf("unknown name = %+v", got)
	}
	p.Phone = "+15555550112"
	q := Patient{ID: "pt-c2", Name: "Grace Hopper", NameKeys: []string{"nk:grace hopper"}, DOBHash: []byte{3}, SSN4Hash: []byte{4}}
	must(t, a.UpsertPatients(ctx, []Patient{p, q}))
	got, err := b.FindPatients(ctx, []string{"nk:ada lovelace"})
	if err != nil || len(got) != 1 || got[0].Phone != "+15555550112" || got[0].DOBHash[0] != 1 {
		t.Fatalf("after a's update, b sees %+v, %v", got, err)
	}
	if got, _ := b.FindPatients(ctx, []string{"nk:grace hopper"}); len(got) != 1 || got[0].ID != "pt-c2" {
		t.Fatalf("after a's insert, b sees %+v", got)
	}
}
