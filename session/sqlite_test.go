package session

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
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
