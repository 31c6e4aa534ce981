package session

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// gcStore is a SQLite store and its backend, for driving the group commit.
func gcStore(t *testing.T) (*sqlStore, *sqliteBackend) {
	t.Helper()
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "gc.db"), Options{Sealer: testSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := internals(t, st)
	return s, s.be.(*sqliteBackend)
}

// holdWriter starts a write that blocks until release is called, and
// returns once it runs: writes submitted meanwhile queue up behind it.
func holdWriter(t *testing.T, b *sqliteBackend) (release func() error) {
	t.Helper()
	running, hold, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- b.submit(context.Background(), "", func(x execer) error {
			close(running)
			<-hold
			_, err := x.exec(context.Background(), "INSERT INTO events (key, at) VALUES ('held', 1)")
			return err
		})
	}()
	<-running
	return func() error { close(hold); return <-done }
}

// waitQueued waits until n jobs wait behind the held writer.
func waitQueued(t *testing.T, b *sqliteBackend, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b.gc.mu.Lock()
		q := len(b.gc.queue)
		b.gc.mu.Unlock()
		if q >= n {
			return
		}
	}
	t.Fatalf("fewer than %d writes queued", n)
}

func (b *sqliteBackend) gcStats() (batches, jobs int64) {
	b.gc.mu.Lock()
	defer b.gc.mu.Unlock()
	return b.gc.batches, b.gc.jobs
}

// Writes that queue behind a commit share the next one, and a failing job
// (a duplicate key, a panic, a canceled context) fails alone.
func TestGroupCommitBatchIsolatesFailures(t *testing.T) {
	s, b := gcStore(t)
	ctx := context.Background()
	put := func(ctx context.Context, key, data string) error {
		return s.PutRecord(ctx, &Record{Kind: "k", Key: key, Data: []byte(data)})
	}
	must(t, put(ctx, "taken", "first"))
	release := holdWriter(t, b)
	batches0, jobs0 := b.gcStats()

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	type result struct {
		name string
		err  error
	}
	jobs := []struct {
		name string
		run  func() error
	}{
		{"a", func() error { return put(ctx, "a", "A") }},
		{"dup", func() error { return put(ctx, "taken", "second") }},
		{"panic", func() error {
			return b.submit(ctx, "", func(x execer) error {
				x.exec(ctx, "INSERT INTO events (key, at) VALUES ('from-panic', 1)")
				panic("boom")
			})
		}},
		{"canceled", func() error { return put(canceled, "never", "X") }},
		{"audit", func() error { return s.AppendAudit(ctx, &AuditEvent{Type: "t"}) }},
		{"b", func() error { return put(ctx, "b", "B") }},
	}
	results := make(chan result, len(jobs))
	for i, j := range jobs {
		go func() { results <- result{j.name, j.run()} }()
		waitQueued(t, b, i+1) // keep the queue in this order
	}
	must(t, release())
	got := map[string]error{}
	for range jobs {
		r := <-results
		got[r.name] = r.err
	}
	batches, n := b.gcStats()
	if batches-batches0 != 1 || n-jobs0 != int64(len(jobs)) {
		t.Errorf("queued writes ran in %d batches (%d jobs); want 1 batch of %d", batches-batches0, n-jobs0, len(jobs))
	}
	for _, name := range []string{"a", "audit", "b"} {
		if got[name] != nil {
			t.Errorf("%s: %v", name, got[name])
		}
	}
	if !errors.Is(got["dup"], ErrExists) {
		t.Errorf("dup: %v, want ErrExists", got["dup"])
	}
	if got["panic"] == nil {
		t.Error("panicking write reported success")
	}
	if !errors.Is(got["canceled"], context.Canceled) {
		t.Errorf("canceled: %v", got["canceled"])
	}
	for key, want := range map[string]string{"a": "A", "b": "B", "taken": "first"} {
		r, err := s.GetRecord(ctx, "k", key)
		if err != nil || string(r.Data) != want {
			t.Errorf("record %s = %v, %v; want %q", key, r, err, want)
		}
	}
	if _, err := s.GetRecord(ctx, "k", "never"); !errors.Is(err, ErrNotFound) {
		t.Errorf("canceled write landed: %v", err)
	}
	if n, _ := s.CountEvents(ctx, "from-panic", time.Time{}); n != 0 {
		t.Error("the panicking write's statement was committed")
	}
	if rep, err := s.VerifyAudit(ctx); err != nil || rep.Problem != "" || rep.Records != 1 {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
}

// A job that loses the whole transaction (here it rolls it back itself, as
// an interrupted statement can) must not take the others with it: the
// batch is rerun one job at a time.
func TestGroupCommitLostTransactionRerunsAlone(t *testing.T) {
	s, b := gcStore(t)
	ctx := context.Background()
	release := holdWriter(t, b)
	errs := make(chan error, 3)
	go func() { errs <- s.PutRecord(ctx, &Record{Kind: "k", Key: "before", Data: []byte("1")}) }()
	waitQueued(t, b, 1)
	var lost error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		lost = b.submit(ctx, "", func(x execer) error {
			_, err := x.exec(ctx, "ROLLBACK")
			if err != nil {
				return err
			}
			return errors.New("rolled back")
		})
	}()
	waitQueued(t, b, 2)
	go func() { errs <- s.PutRecord(ctx, &Record{Kind: "k", Key: "after", Data: []byte("2")}) }()
	waitQueued(t, b, 3)
	must(t, release())
	wg.Wait()
	if lost == nil {
		t.Error("the job that lost its transaction reported success")
	}
	for range 2 {
		must(t, <-errs)
	}
	for _, key := range []string{"before", "after"} {
		if _, err := s.GetRecord(ctx, "k", key); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	if n, _ := s.CountEvents(ctx, "held", time.Time{}); n != 1 {
		t.Errorf("the held write: %d rows", n)
	}
}

// Many writers at once: every write lands exactly once, the audit chain
// stays whole, and writes are shared between commits.
func TestGroupCommitConcurrentWriters(t *testing.T) {
	s, b := gcStore(t)
	ctx := context.Background()
	const writers, each = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("w%d-%d", w, i)
				if err := s.PutRecord(ctx, &Record{Kind: "k", Key: key, Data: []byte(key)}); err != nil {
					errs <- err
					return
				}
				if err := s.AppendAudit(ctx, &AuditEvent{Type: "t", Actor: key}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rep, err := s.VerifyAudit(ctx)
	if err != nil || rep.Problem != "" || rep.Records != writers*each {
		t.Fatalf("VerifyAudit = %+v, %v", rep, err)
	}
	for w := range writers {
		key := fmt.Sprintf("w%d-%d", w, each-1)
		if r, err := s.GetRecord(ctx, "k", key); err != nil || string(r.Data) != key {
			t.Fatalf("%s = %v, %v", key, r, err)
		}
	}
	batches, jobs := b.gcStats()
	t.Logf("%d writes in %d commits", jobs, batches)
}

// Close lets queued writes finish and refuses later ones.
func TestGroupCommitClose(t *testing.T) {
	s, b := gcStore(t)
	ctx := context.Background()
	release := holdWriter(t, b)
	queued := make(chan error, 1)
	go func() { queued <- s.PutRecord(ctx, &Record{Kind: "k", Key: "queued", Data: []byte("q")}) }()
	waitQueued(t, b, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b.gc.mu.Lock()
		c := b.gc.closed
		b.gc.mu.Unlock()
		if c {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close did not start")
		}
	}
	if err := s.PutRecord(ctx, &Record{Kind: "k", Key: "late", Data: []byte("l")}); !errors.Is(err, errStoreClosed) {
		t.Errorf("write after Close: %v", err)
	}
	must(t, release())
	must(t, <-queued)
	must(t, <-closed)
}

// A COMMIT that fails (here a deferred foreign key, which SQLite checks at
// COMMIT and which leaves the transaction open) fails its job and leaves no
// transaction behind on the writer: the next writes commit and are
// readable, alone or sharing a batch with the failing job.
func TestGroupCommitFailedCommitLeavesNoTransaction(t *testing.T) {
	s, b := gcStore(t)
	ctx := context.Background()
	must(t, b.submit(ctx, "", func(x execer) error {
		if _, err := x.exec(ctx, "CREATE TABLE fk_parent (id INTEGER PRIMARY KEY)"); err != nil {
			return err
		}
		_, err := x.exec(ctx, "CREATE TABLE fk_child (p INTEGER REFERENCES fk_parent (id) DEFERRABLE INITIALLY DEFERRED)")
		return err
	}))
	orphan := func() error {
		return b.submit(ctx, "", func(x execer) error {
			_, err := x.exec(ctx, "INSERT INTO fk_child (p) VALUES (42)")
			return err
		})
	}
	if err := orphan(); err == nil {
		t.Fatal("a commit that violates a deferred foreign key succeeded")
	}
	must(t, s.PutRecord(ctx, &Record{Kind: "k", Key: "alone", Data: []byte("1")}))
	if _, err := s.GetRecord(ctx, "k", "alone"); err != nil {
		t.Fatalf("a write after the failed commit: %v", err)
	}

	release := holdWriter(t, b)
	errs := make(chan error, 2)
	go func() { errs <- orphan() }()
	waitQueued(t, b, 1)
	go func() { errs <- s.PutRecord(ctx, &Record{Kind: "k", Key: "batched", Data: []byte("2")}) }()
	waitQueued(t, b, 2)
	must(t, release())
	failed := 0
	for range 2 {
		if <-errs != nil {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d of the orphan insert and the record failed, want 1", failed)
	}
	must(t, s.PutRecord(ctx, &Record{Kind: "k", Key: "after", Data: []byte("3")}))
	for _, key := range []string{"batched", "after"} {
		if _, err := s.GetRecord(ctx, "k", key); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	var n int
	must(t, s.be.reader().queryRow(ctx, "SELECT count(*) FROM fk_child").Scan(&n))
	if n != 0 {
		t.Errorf("%d orphan rows committed", n)
	}
}
