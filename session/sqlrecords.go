// Keyed records on either backend: AS sessions, claims, codes and other
// short-lived state, versioned and swept when expired.

package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

func (s *sqlStore) PutRecord(ctx context.Context, r *Record) error {
	if err := s.putRecord(ctx, s.be.writer(), r); err != nil {
		return err
	}
	r.Version = 1
	return nil
}

func (s *sqlStore) PutRecordAudit(ctx context.Context, r *Record, e *AuditEvent) error {
	if e == nil || e.Type == "" {
		return errors.New("session: audit event type is empty")
	}
	var out AuditEvent
	err := s.be.tx(ctx, func(x execer) error {
		if err := s.putRecord(ctx, x, r); err != nil {
			return err
		}
		var err error
		out, err = s.appendAudit(ctx, x, *e)
		if err != nil {
			return fmt.Errorf("session: append audit: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.Version, *e = 1, out
	return nil
}

const qPutRecord = `INSERT INTO records (kind, key, version, data_sealed, expires_at) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (kind, key) DO UPDATE SET version = 1, data_sealed = excluded.data_sealed, expires_at = excluded.expires_at
WHERE records.expires_at <> 0 AND records.expires_at <= ?`

func (s *sqlStore) putRecord(ctx context.Context, x execer, r *Record) error {
	if r == nil || r.Kind == "" || r.Key == "" {
		return errors.New("session: record kind and key are required")
	}
	sealed, err := s.sealer.Seal(r.Data, tblRecords, colData, recordRowID(r.Kind, r.Key))
	if err != nil {
		return err
	}
	_, nowUS := s.nowMicros()
	// An expired record reads as absent, so it may be replaced.
	n, err := x.exec(ctx, qPutRecord, r.Kind, r.Key, sealed, micros(r.ExpiresAt), nowUS)
	if err != nil {
		return fmt.Errorf("session: put record: %w", err)
	}
	if n == 0 {
		return ErrExists
	}
	return nil
}

func (s *sqlStore) GetRecord(ctx context.Context, kind, key string) (*Record, error) {
	_, nowUS := s.nowMicros()
	var (
		r       = Record{Kind: kind, Key: key}
		sealed  []byte
		expires int64
	)
	err := s.be.reader().queryRow(ctx,
		"SELECT version, data_sealed, expires_at FROM records WHERE kind = ? AND key = ? AND (expires_at = 0 OR expires_at > ?)",
		kind, key, nowUS).Scan(&r.Version, &sealed, &expires)
	if err != nil {
		return nil, wrapRead("get record", err)
	}
	if r.Data, err = s.sealer.Open(sealed, tblRecords, colData, recordRowID(kind, key)); err != nil {
		return nil, err
	}
	r.ExpiresAt = fromMicros(expires)
	return &r, nil
}

func (s *sqlStore) UpdateRecord(ctx context.Context, r *Record) error {
	if r == nil || r.Kind == "" || r.Key == "" {
		return errors.New("session: record kind and key are required")
	}
	sealed, err := s.sealer.Seal(r.Data, tblRecords, colData, recordRowID(r.Kind, r.Key))
	if err != nil {
		return err
	}
	_, nowUS := s.nowMicros()
	n, err := s.be.writer().exec(ctx,
		`UPDATE records SET data_sealed = ?, expires_at = ?, version = version + 1
WHERE kind = ? AND key = ? AND version = ? AND (expires_at = 0 OR expires_at > ?)`,
		sealed, micros(r.ExpiresAt), r.Kind, r.Key, r.Version, nowUS)
	if err != nil {
		return fmt.Errorf("session: update record: %w", err)
	}
	if n == 0 {
		return s.casMiss(ctx, "SELECT 1 FROM records WHERE kind = ? AND key = ? AND (expires_at = 0 OR expires_at > ?)", r.Kind, r.Key, nowUS)
	}
	r.Version++
	return nil
}

func (s *sqlStore) ListRecords(ctx context.Context, kind string) ([]Record, error) {
	_, nowUS := s.nowMicros()
	rows, err := s.be.reader().query(ctx,
		"SELECT key, version, data_sealed, expires_at FROM records WHERE kind = ? AND (expires_at = 0 OR expires_at > ?) ORDER BY key",
		kind, nowUS)
	if err != nil {
		return nil, fmt.Errorf("session: list records: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var (
			r       = Record{Kind: kind}
			sealed  []byte
			expires int64
		)
		if err := rows.Scan(&r.Key, &r.Version, &sealed, &expires); err != nil {
			return nil, fmt.Errorf("session: list records: %w", err)
		}
		if r.Data, err = s.sealer.Open(sealed, tblRecords, colData, recordRowID(kind, r.Key)); err != nil {
			return nil, err
		}
		r.ExpiresAt = fromMicros(expires)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session: list records: %w", err)
	}
	return out, nil
}

func (s *sqlStore) DeleteRecord(ctx context.Context, kind, key string) error {
	if _, err := s.be.writer().exec(ctx, "DELETE FROM records WHERE kind = ? AND key = ?", kind, key); err != nil {
		return fmt.Errorf("session: delete record: %w", err)
	}
	return nil
}

func (s *sqlStore) SweepRecords(ctx context.Context, now time.Time) (int, error) {
	n, err := s.be.writer().exec(ctx, "DELETE FROM records WHERE expires_at <> 0 AND expires_at <= ?", micros(now))
	if err != nil {
		return 0, fmt.Errorf("session: sweep records: %w", err)
	}
	j, err := s.sweepJTIs(ctx, now)
	return int(n) + j, err
}
