package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

func openSQLiteTest(t *testing.T) Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "voiceauth.db")
	st, err := Open(context.Background(), path, Options{Sealer: testSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestSQLiteStore(t *testing.T) {
	runStoreSuite(t, openSQLiteTest)
}

func TestSQLiteOpenSettings(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub dir", "store#1.db")
	for _, dsn := range []string{path, "sqlite:" + path} { // second open: migrations are idempotent
		st, err := Open(ctx, dsn, Options{Sealer: testSealer(t)})
		if err != nil {
			t.Fatalf("Open(%q): %v", dsn, err)
		}
		s := internals(t, st)
		ms, err := migrations("sqlite")
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			pragma string
			want   string
		}{
			{"PRAGMA journal_mode", "wal"},
			{"PRAGMA synchronous", "1"}, // NORMAL
			{"PRAGMA foreign_keys", "1"},
			{"PRAGMA busy_timeout", "5000"},
			{"SELECT COUNT(*) FROM schema_version", strconv.Itoa(len(ms))},
		}
		for _, c := range checks {
			var got string
			if err := s.be.writer().queryRow(ctx, c.pragma).Scan(&got); err != nil || got != c.want {
				t.Errorf("%s = %q, %v; want %q", c.pragma, got, err, c.want)
			}
		}
		st.Close()
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("store file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := Open(ctx, path, Options{}); err == nil {
		t.Error("Open without a Sealer succeeded")
	}
}

func TestSQLiteSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := Open(ctx, path, Options{Sealer: testSealer(t)})
	must(t, err)
	must(t, st.CreateCall(ctx, &Call{ID: "CA1", State: []byte("answer")}))
	must(t, st.AppendAudit(ctx, &AuditEvent{Type: "kba.failed"}))
	must(t, st.Close())
	st, err = Open(ctx, path, Options{Sealer: testSealer(t)})
	must(t, err)
	defer st.Close()
	c, err := st.GetCall(ctx, "CA1")
	if err != nil || string(c.State) != "answer" {
		t.Fatalf("after reopen: %v", err)
	}
	must(t, st.AppendAudit(ctx, &AuditEvent{Type: "kba.failed"}))
	if rep, err := st.VerifyAudit(ctx); err != nil || rep.Problem != "" || rep.Records != 2 {
		t.Fatalf("VerifyAudit after reopen = %+v, %v", rep, err)
	}
}

func TestSQLitePath(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"data/voiceauth.db", "data/voiceauth.db"},
		{"sqlite:data/v.db", "data/v.db"},
		{"sqlite:///abs/v.db", "/abs/v.db"},
		{"file:/abs/v.db?mode=rwc", "/abs/v.db"},
	}
	for _, tt := range tests {
		if got := sqlitePath(tt.dsn); got != tt.want {
			t.Errorf("sqlitePath(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}

// Two stores on one SQLite file (two processes, in effect) share the
// patient directory: a cached lookup in one sees the other's change.
func TestSQLiteTwoHandlesShareDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "voiceauth.db")
	var sts [2]Store
	for i := range sts {
		st, err := Open(context.Background(), path, Options{Sealer: testSealer(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		sts[i] = st
	}
	checkDirectorySharedCache(t, sts[0], sts[1])
}

// Under steady reads the WAL must still start over now and then: a WAL is
// only reset when no reader is reading from it, which with PASSIVE
// checkpoints alone never happened under load, and the WAL grew without
// bound. Here read transactions overlap without pause while a writer fills
// the WAL past the restart length: the WAL must start over (its header's
// checkpoint sequence number changes) before it grows 24 times that long.
func TestSQLiteWALRestartsUnderSteadyReads(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds")
	}
	path := filepath.Join(t.TempDir(), "wal.db")
	st, err := Open(context.Background(), path, Options{Sealer: testSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	be := internals(t, st).be
	const restartAt = 1024 // pages; 256 MB would make a slow test
	be.(*sqliteBackend).restartFrames.Store(restartAt)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	must(t, st.PutRecord(ctx, &Record{Kind: "k", Key: "read-me", Data: []byte("x")}))
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(r) * 300 * time.Microsecond) // staggered: one is always inside
			for ctx.Err() == nil {
				be.snapshot(ctx, func(x execer) error {
					var n int
					x.queryRow(ctx, "SELECT COUNT(*) FROM records").Scan(&n)
					time.Sleep(time.Millisecond)
					return nil
				})
			}
		}()
	}
	defer wg.Wait()
	defer stop()
	// The WAL header's checkpoint sequence number (bytes 12–15) changes
	// each time the WAL starts over; reading the file takes no lock that
	// could get in the checkpointer's way.
	walSeq := func() (seq uint32, pages int64) {
		f, err := os.Open(path + "-wal")
		if err != nil {
			return 0, 0
		}
		defer f.Close()
		var hdr [32]byte
		if _, err := io.ReadFull(f, hdr[:]); err != nil {
			return 0, 0
		}
		fi, err := f.Stat()
		if err != nil {
			return 0, 0
		}
		return binary.BigEndian.Uint32(hdr[12:16]), (fi.Size() - 32) / (24 + 4096)
	}
	seq0, _ := walSeq()
	blob := bytes.Repeat([]byte("p"), 3000) // a page or more per record
	for i := 0; ; i++ {
		must(t, st.PutRecord(ctx, &Record{Kind: "k", Key: fmt.Sprint("w", i), Data: blob}))
		if i%50 != 0 {
			continue
		}
		seq, pages := walSeq()
		if pages < restartAt {
			seq0 = seq // writers may still start over by themselves this early
			continue
		}
		if seq != seq0 {
			return // started over
		}
		if pages > 24*restartAt { // a dozen checkpointer rounds or more
			t.Fatalf("the WAL grew to %d pages under steady reads and never started over", pages)
		}
	}
}
