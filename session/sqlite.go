package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// sqliteBackend keeps one single-connection writer pool and a reader pool on
// the same WAL file. Writes are serialized in-process by the writer pool, so
// they never meet SQLITE_BUSY from each other; busy_timeout covers other
// processes. synchronous=NORMAL in WAL mode survives a process crash
// (SIGKILL) without losing a committed write; only an OS crash can lose the
// last transactions.
type sqliteBackend struct {
	path   string
	w      *sql.DB
	r      *sql.DB
	wStmts *stmtCache
	rStmts *stmtCache

	cp             *sql.DB // background checkpoints
	stopCP, cpDone chan struct{}
	restartFrames  atomic.Int64 // walRestartFrames; tests lower it
	closeOnce      sync.Once

	gc groupCommit // writers (groupcommit.go)
}

func openSQLite(ctx context.Context, path string) (*sqliteBackend, error) {
	if path == "" {
		return nil, errors.New("session: empty SQLite path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("session: create store directory: %w", err)
		}
	}
	if err := restrictFiles(path); err != nil {
		return nil, err
	}
	params := url.Values{}
	params.Set("_journal_mode", "WAL")
	params.Set("_busy_timeout", "5000")
	params.Set("_synchronous", "NORMAL")
	params.Set("_foreign_keys", "on")
	params.Set("_txlock", "immediate")
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	w, err := sql.Open("sqlite3", base+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("session: open SQLite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Touch the writer first so the file and its WAL exist before readers open.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("session: open SQLite: %w", err)
	}
	// Checkpoints (which fsync) run in the background, not inside whichever
	// commit happens to cross the WAL threshold: that commit's caller would
	// stall for milliseconds while every other writer queues behind it.
	if _, err := w.ExecContext(ctx, "PRAGMA wal_autocheckpoint=0"); err != nil {
		w.Close()
		return nil, fmt.Errorf("session: open SQLite: %w", err)
	}
	params.Set("_txlock", "deferred")
	params.Set("_query_only", "true")
	r, err := sql.Open("sqlite3", base+"?"+params.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("session: open SQLite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)
	params.Del("_query_only")
	params.Set("_busy_timeout", "20") // the checkpointer waits 20 ms at most (see checkpointer)
	cp, err := sql.Open("sqlite3", base+"?"+params.Encode())
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("session: open SQLite: %w", err)
	}
	cp.SetMaxOpenConns(1)
	b := &sqliteBackend{path: path, w: w, r: r, wStmts: newStmtCache(w), rStmts: newStmtCache(r),
		cp: cp, stopCP: make(chan struct{}), cpDone: make(chan struct{})}
	b.restartFrames.Store(walRestartFrames)
	go b.checkpointer()
	return b, nil
}

// restrictFiles makes the database file owner-only before SQLite opens it:
// SQLite creates the -wal and -shm files with the database file's mode, so
// creating it 0600 ourselves (rather than chmod after SQLite made it 0644)
// leaves no moment in which any of the three is readable by others. Files
// left by older versions are tightened too. The directory is created 0700
// when it does not exist; an existing one is left alone (it may be shared).
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("session: create SQLite file: %w", err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil && fi.Mode().Perm()&0o077 != 0 {
			err = os.Chmod(p, fi.Mode().Perm()&0o700)
		}
		if err != nil {
			return fmt.Errorf("session: restrict SQLite file: %w", err)
		}
	}
	return nil
}

// checkpointer copies the WAL back into the database file every 250 ms
// (PASSIVE: it never blocks writers or readers), so the WAL stays small
// without any commit paying for it.
//
// A WAL only starts over from its beginning when a writer finds it fully
// copied and no reader still reading from it. Under steady load some reader
// always is, and with PASSIVE alone the WAL grew without bound (≈ 50 MB/s
// at 1,500 verifications/s). So once the WAL is longer than
// restartFrames, a RESTART checkpoint follows the pass: it copies what was
// written meanwhile, syncs, and waits (busy_timeout, 20 ms at most) for the
// readers still in the WAL to finish, so the next writer starts over.
// Writers wait while it runs (7–36 ms here), which is why it runs only past
// 256 MB: every 5–6 s under a sustained 1,500 verifications/s, never at
// ordinary load, where writers start the WAL over by themselves. The file
// keeps its size (no journal_size_limit): cutting 200 MB off it stalled the
// writer for longer than the RESTART itself.
func (b *sqliteBackend) checkpointer() {
	defer close(b.cpDone)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.stopCP:
			return
		case <-t.C:
			var busy, frames, copied int
			err := b.cp.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
			if err == nil && int64(frames) > b.restartFrames.Load() {
				b.cp.Exec("PRAGMA wal_checkpoint(RESTART)")
			}
		}
	}
}

// walRestartFrames is the WAL length in pages (256 MB of 4 KiB pages) past
// which the checkpointer forces the WAL to start over.
const walRestartFrames = 65536

func (b *sqliteBackend) name() string    { return "sqlite" }
func (b *sqliteBackend) reader() execer  { return sqlExec{b.r, b.rStmts} }
func (b *sqliteBackend) writer() execer  { return groupWriter{b} }
func (b *sqliteBackend) lockRow() string { return "" }

// tx runs fn as one job of the group commit (groupcommit.go).
func (b *sqliteBackend) tx(ctx context.Context, fn func(execer) error) error {
	return b.submit(ctx, "", fn)
}

func (b *sqliteBackend) snapshot(ctx context.Context, fn func(execer) error) error {
	ctx, err := detach(ctx)
	if err != nil {
		return err
	}
	tx, err := b.r.BeginTx(ctx, nil) // deferred: a WAL read snapshot from the first read
	if err != nil {
		return fmt.Errorf("session: begin: %w", err)
	}
	defer tx.Rollback()
	return fn(sqlExec{tx, nil})
}

func (b *sqliteBackend) ping(ctx context.Context) error {
	if err := b.w.PingContext(ctx); err != nil {
		return err
	}
	return b.r.PingContext(ctx)
}

func (b *sqliteBackend) close() error {
	b.closeOnce.Do(func() {
		b.closeWrites()
		close(b.stopCP)
		<-b.cpDone
	})
	// A final checkpoint leaves a small WAL behind for the next start.
	b.cp.Exec("PRAGMA busy_timeout=2000")
	b.cp.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return errors.Join(b.rStmts.close(), b.wStmts.close(), b.r.Close(), b.w.Close(), b.cp.Close())
}

func (b *sqliteBackend) migrate(ctx context.Context) error {
	if err := runMigrations(ctx, b, ""); err != nil {
		return err
	}
	// Prepare the statements that run inside write transactions, where
	// nothing can be prepared (the writer's one connection is taken).
	for _, q := range append([]string{qAuditHead, qAuditInsert, qAuditHeadUpdate, qPutRecord, qAddEvent, qCountEvents, qCreateCall}, controlStmts...) {
		b.wStmts.get(ctx, q)
	}
	return nil
}

// sqlDB is what *sql.DB and *sql.Tx have in common.
type sqlDB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqlExec runs queries on a pool (with a statement cache: preparing costs
// as much as running a small statement) or inside a transaction.
type sqlExec struct {
	db    sqlDB
	cache *stmtCache // statements prepared on the pool behind db
}

// detach checks ctx and returns it without its cancellation. mattn's
// driver runs every statement whose context can be canceled on a goroutine
// of its own (so it can interrupt it): a goroutine and two switches per
// statement, for statements that take microseconds, and an interrupt can
// roll back a whole group-commit batch. The store checks the context before
// each statement instead; a statement that has started runs to its end.
func detach(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

func (e sqlExec) exec(ctx context.Context, q string, args ...any) (int64, error) {
	ctx, err := detach(ctx)
	if err != nil {
		return 0, err
	}
	var res sql.Result
	if st := e.stmt(ctx, q); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = e.db.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (e sqlExec) query(ctx context.Context, q string, args ...any) (rowIter, error) {
	ctx, err := detach(ctx)
	if err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if st := e.stmt(ctx, q); st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = e.db.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (e sqlExec) queryRow(ctx context.Context, q string, args ...any) rowScanner {
	ctx, err := detach(ctx)
	if err != nil {
		return errRow{err}
	}
	if st := e.stmt(ctx, q); st != nil {
		return sqlRow{st.QueryRowContext(ctx, args...)}
	}
	return sqlRow{e.db.QueryRowContext(ctx, q, args...)}
}

// stmtCache keeps prepared statements for the fixed queries of the store.
// Queries built with a variable number of placeholders are not cached.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

const stmtCacheMax = 64

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}}
}

// txDB marks a transaction so cached statements are rebound to it.
type txDB struct{ *sql.Tx }

// stmt returns the cached statement for q, bound to the transaction when e
// runs inside one, or nil to run q unprepared.
func (e sqlExec) stmt(ctx context.Context, q string) *sql.Stmt {
	if _, inJob := e.db.(jobDB); inJob {
		return e.cache.peek(q) // groupcommit.go: never prepare a job's query (see jobDB)
	}
	tx, inTx := e.db.(txDB)
	if !inTx {
		return e.cache.get(ctx, q)
	}
	// Inside a transaction the writer's only connection is taken: never
	// prepare on the pool here (it would wait forever); use what is cached.
	st := e.cache.peek(q)
	if st == nil {
		return nil
	}
	return tx.StmtContext(ctx, st) // reuses the handle prepared on that connection
}

// get returns a prepared statement for q, or nil to run q unprepared.
func (c *stmtCache) get(ctx context.Context, q string) *sql.Stmt {
	if c == nil || strings.Count(q, "?") > 12 {
		return nil
	}
	c.mu.Lock()
	if st, ok := c.stmts[q]; ok {
		c.mu.Unlock()
		return st
	}
	full := len(c.stmts) >= stmtCacheMax
	c.mu.Unlock()
	if full {
		return nil
	}
	// Prepare without holding mu: preparing waits for the writer's only
	// connection, and a transaction holding that connection may itself be
	// waiting for mu (peek) — holding both would deadlock.
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil // the unprepared path reports the error
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.stmts[q]; ok {
		st.Close()
		return prev
	}
	c.stmts[q] = st
	return st
}

func (c *stmtCache) peek(q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[q]
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.stmts {
		errs = append(errs, st.Close())
		delete(c.stmts, q)
	}
	return errors.Join(errs...)
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

type sqlRow struct{ row *sql.Row }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (r sqlRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// sqlitePath turns a dsn ("sqlite:path", "sqlite://path", "file:path" or a
// bare path) into a file path.
func sqlitePath(dsn string) string {
	for _, p := range []string{"sqlite://", "sqlite:", "file:"} {
		if strings.HasPrefix(dsn, p) {
			dsn = strings.TrimPrefix(dsn, p)
			break
		}
	}
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn = dsn[:i]
	}
	return dsn
}
