package session

import (
	"context"
	"time"
)

// The SQLite and PostgreSQL stores share every query (sqlstore.go); a
// backend only supplies connections. Queries use "?" placeholders; the
// PostgreSQL backend rewrites them to $n.

// execer runs statements either on a pool or inside a transaction.
type execer interface {
	exec(ctx context.Context, q string, args ...any) (int64, error) // rows affected
	query(ctx context.Context, q string, args ...any) (rowIter, error)
	queryRow(ctx context.Context, q string, args ...any) rowScanner
}

type rowIter interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// rowScanner.Scan returns ErrNotFound when there is no row.
type rowScanner interface {
	Scan(dest ...any) error
}

type backend interface {
	name() string // "sqlite" or "postgres"
	reader() execer
	writer() execer
	// tx runs fn in one write transaction; lockRow is appended to a SELECT
	// that must lock the row it reads (" FOR UPDATE" on PostgreSQL; SQLite's
	// write transactions are already exclusive).
	tx(ctx context.Context, fn func(execer) error) error
	// snapshot runs fn in a read-only transaction that sees one consistent
	// state of the database and blocks no writer.
	snapshot(ctx context.Context, fn func(execer) error) error
	lockRow() string
	ping(ctx context.Context) error
	close() error
	migrate(ctx context.Context) error
}

// micros stores times as Unix microseconds; 0 stands for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
