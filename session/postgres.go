package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgBackend runs the shared queries on a pgxpool. Statements use the
// default READ COMMITTED isolation: every compare-and-swap is a single
// UPDATE … WHERE version = ?, which PostgreSQL re-checks after waiting on a
// concurrent writer, and the audit chain head is locked with FOR UPDATE.
type pgBackend struct {
	pool *pgxpool.Pool
}

func openPostgres(ctx context.Context, dsn string) (*pgBackend, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password: do not echo it.
		return nil, errors.New("session: invalid PostgreSQL DSN")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("session: connect PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("session: connect PostgreSQL: %w", err)
	}
	return &pgBackend{pool: pool}, nil
}

func (b *pgBackend) name() string    { return "postgres" }
func (b *pgBackend) reader() execer  { return pgExec{b.pool} }
func (b *pgBackend) writer() execer  { return pgExec{b.pool} }
func (b *pgBackend) lockRow() string { return " FOR UPDATE" }

func (b *pgBackend) tx(ctx context.Context, fn func(execer) error) error {
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return fn(pgExec{tx}) })
}

func (b *pgBackend) snapshot(ctx context.Context, fn func(execer) error) error {
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("session: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	return fn(pgExec{tx})
}

func (b *pgBackend) ping(ctx context.Context) error { return b.pool.Ping(ctx) }
func (b *pgBackend) close() error                   { b.pool.Close(); return nil }

// migrationLockID is an arbitrary constant: instances starting together
// serialize their migrations on this advisory lock.
const migrationLockID = 0x766f696365617574

func (b *pgBackend) migrate(ctx context.Context) error {
	return runMigrations(ctx, b, "SELECT pg_advisory_xact_lock("+strconv.FormatInt(migrationLockID, 10)+")")
}

// pgHandle is what *pgxpool.Pool and pgx.Tx have in common.
type pgHandle interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgExec struct{ db pgHandle }

func (e pgExec) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := e.db.Exec(ctx, rebind(q), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (e pgExec) query(ctx context.Context, q string, args ...any) (rowIter, error) {
	rows, err := e.db.Query(ctx, rebind(q), args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

func (e pgExec) queryRow(ctx context.Context, q string, args ...any) rowScanner {
	return pgRow{e.db.QueryRow(ctx, rebind(q), args...)}
}

type pgRows struct{ pgx.Rows }

type pgRow struct{ row pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

var rebindCache sync.Map // query with ? → query with $n

// rebind rewrites "?" placeholders to PostgreSQL's "$1", "$2", …. The shared
// queries never contain a literal "?".
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	if v, ok := rebindCache.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	out := b.String()
	if len(q) < 4096 {
		rebindCache.Store(q, out)
	}
	return out
}
