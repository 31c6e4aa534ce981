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

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// sqliteBackend keeps one single-connection writer pool and a reader pool on
// the same WAL file. Writes are serialized in-process by the writer pool, so
// they never meet SQLITE_BUSY from each other; busy_timeout covers other
// processes. synchronous=NORMAL in WAL mode survives a process crash
// (SIGKILL) without losing a committed write; only an OS crash can lose the
// last transactions.
type sqliteBackend struct {
	path string
	w    *sql.DB
	r    *sql.DB
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
	if err := os.Chmod(path, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.Close()
		return nil, fmt.Errorf("session: restrict SQLite file: %w", err)
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
	return &sqliteBackend{path: path, w: w, r: r}, nil
}

func (b *sqliteBackend) name() string    { return "sqlite" }
func (b *sqliteBackend) reader() execer  { return sqlExec{b.r} }
func (b *sqliteBackend) writer() execer  { return sqlExec{b.w} }
func (b *sqliteBackend) lockRow() string { return "" }

func (b *sqliteBackend) tx(ctx context.Context, fn func(execer) error) error {
	tx, err := b.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return fmt.Errorf("session: begin: %w", err)
	}
	if err := fn(sqlExec{tx}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("session: commit: %w", err)
	}
	return nil
}

func (b *sqliteBackend) ping(ctx context.Context) error {
	if err := b.w.PingContext(ctx); err != nil {
		return err
	}
	return b.r.PingContext(ctx)
}

func (b *sqliteBackend) close() error {
	return errors.Join(b.r.Close(), b.w.Close())
}

func (b *sqliteBackend) migrate(ctx context.Context) error {
	return runMigrations(ctx, b, "")
}

// sqlDB is what *sql.DB and *sql.Tx have in common.
type sqlDB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type sqlExec struct{ db sqlDB }

func (e sqlExec) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := e.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (e sqlExec) query(ctx context.Context, q string, args ...any) (rowIter, error) {
	rows, err := e.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (e sqlExec) queryRow(ctx context.Context, q string, args ...any) rowScanner {
	return sqlRow{e.db.QueryRowContext(ctx, q, args...)}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

type sqlRow struct{ row *sql.Row }

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
