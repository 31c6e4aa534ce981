package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Options configures a Store.
type Options struct {
	// Sealer encrypts call state, tokens, record data and patient profiles
	// at rest. Required: there is no unsealed mode.
	Sealer *Sealer
	// AuditKeys key the audit chain (HMAC-SHA256) by version; new records
	// use AuditKeyCurrent, and older versions stay to verify older records.
	// nil derives the keyring from the Sealer's keys (tests, embedders);
	// voiceauth passes the audit keys of its secrets file.
	AuditKeys       map[uint32][]byte
	AuditKeyCurrent uint32
	// Now is the clock for timestamps and expiry; nil means time.Now.
	Now func() time.Time
	// Logger receives operational messages (never PHI, tokens or state);
	// nil discards them.
	Logger *slog.Logger
}

// Rewrapper is implemented by every Store returned by Open: Rewrap re-seals
// every value not sealed under the Sealer's current key (key rotation) and
// reports how many it re-sealed. It is safe to run while the store is in
// use: a value changed concurrently is left to its writer, who seals it
// under the current key anyway.
type Rewrapper interface {
	Rewrap(ctx context.Context) (int, error)
}

// RecordLister is implemented by every Store returned by Open: ListRecords
// returns the unexpired records of one kind ordered by key (for operator
// tools such as "lockouts list").
type RecordLister interface {
	ListRecords(ctx context.Context, kind string) ([]Record, error)
}

// Open opens (creating and migrating if needed) the store named by dsn: a
// PostgreSQL URL ("postgres://…" or "postgresql://…") or a SQLite file
// path, optionally written "sqlite:path".
func Open(ctx context.Context, dsn string, opts Options) (Store, error) {
	if opts.Sealer == nil {
		return nil, errors.New("session: Options.Sealer is required")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	keys, cur := opts.AuditKeys, opts.AuditKeyCurrent
	if keys == nil {
		r := opts.Sealer.ring.Load()
		keys, cur = r.auditKeys, r.current
	}
	audit, err := newAuditKeyring(keys, cur)
	if err != nil {
		return nil, err
	}
	var be backend
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		be, err = openPostgres(ctx, dsn)
	} else {
		be, err = openSQLite(ctx, sqlitePath(dsn))
	}
	if err != nil {
		return nil, err
	}
	if err := be.migrate(ctx); err != nil {
		be.close()
		return nil, err
	}
	st := &sqlStore{be: be, sealer: opts.Sealer, audit: audit, now: now, log: log}
	if err := st.startKeyedChain(ctx); err != nil {
		be.close()
		return nil, fmt.Errorf("session: start the keyed audit chain: %w", err)
	}
	log.Debug("session store open", "backend", be.name())
	return st, nil
}

// runMigrations applies the embedded migrations newer than the database's
// schema_version in one transaction. lock, if set, runs first (PostgreSQL
// takes an advisory lock so instances starting together do not race).
func runMigrations(ctx context.Context, be backend, lock string) error {
	ms, err := migrations(be.name())
	if err != nil {
		return err
	}
	return be.tx(ctx, func(x execer) error {
		if lock != "" {
			if _, err := x.exec(ctx, lock); err != nil {
				return fmt.Errorf("session: migration lock: %w", err)
			}
		}
		if _, err := x.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	version    INTEGER NOT NULL PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`); err != nil {
			return fmt.Errorf("session: schema_version: %w", err)
		}
		var cur int64
		if err := x.queryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&cur); err != nil {
			return fmt.Errorf("session: schema_version: %w", err)
		}
		if cur > int64(len(ms)) {
			return fmt.Errorf("session: database schema version %d is newer than this program (%d)", cur, len(ms))
		}
		for _, m := range ms[cur:] {
			if _, err := x.exec(ctx, m.sql); err != nil {
				return fmt.Errorf("session: migration %d: %w", m.version, err)
			}
			if _, err := x.exec(ctx, "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", m.version, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("session: migration %d: %w", m.version, err)
			}
		}
		return nil
	})
}
