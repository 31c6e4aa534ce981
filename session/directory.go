package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RekeyPatients rewrites the directory keys (patient_name_keys) of every
// patient that still has a key not starting with keyedPrefix: all of that
// patient's keys are replaced by keys(p), computed from the unsealed
// profile. It is the data migration from plaintext normalized names to keyed
// ones; the key lives with the caller (the AS), so it cannot be a SQL file.
// It is idempotent, one transaction, and bumps the directory revision.
func (s *sqlStore) RekeyPatients(ctx context.Context, keyedPrefix string, keys func(Patient) []string) (int, error) {
	if keyedPrefix == "" || keys == nil {
		return 0, errors.New("session: rekey patients: prefix and key function are required")
	}
	rows, err := s.be.reader().query(ctx,
		"SELECT DISTINCT patient_id FROM patient_name_keys WHERE substr(name_key, 1, ?) <> ? ORDER BY patient_id",
		len(keyedPrefix), keyedPrefix)
	if err != nil {
		return 0, fmt.Errorf("session: rekey patients: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("session: rekey patients: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("session: rekey patients: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var ps []Patient
	for start := 0; start < len(ids); start += patientChunk {
		chunk, err := s.queryPatients(ctx, "WHERE id IN ("+placeholders(len(ids[start:min(start+patientChunk, len(ids))]))+")",
			ids[start:min(start+patientChunk, len(ids))]...)
		if err != nil {
			return 0, err
		}
		ps = append(ps, chunk...)
	}
	err = s.be.tx(ctx, func(x execer) error {
		for _, p := range ps {
			ks := dedup(keys(p))
			for _, k := range ks {
				if !strings.HasPrefix(k, keyedPrefix) {
					return errors.New("session: rekey patients: key function returned an unkeyed key")
				}
			}
			if _, err := x.exec(ctx, "DELETE FROM patient_name_keys WHERE patient_id = ?", p.ID); err != nil {
				return err
			}
			for _, k := range ks {
				if _, err := x.exec(ctx, "INSERT INTO patient_name_keys (name_key, patient_id) VALUES (?, ?) ON CONFLICT DO NOTHING", k, p.ID); err != nil {
					return err
				}
			}
		}
		_, err := x.exec(ctx, "UPDATE patients_rev SET rev = rev + 1 WHERE id = 1")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("session: rekey patients: %w", err)
	}
	return len(ps), nil
}

// UseJTI records that the token named by key (a hash the caller made of
// issuer and jti) has been used, until exp. It returns ErrExists when key
// is recorded and has not expired: a replay.
func (s *sqlStore) UseJTI(ctx context.Context, key string, exp time.Time) error {
	if key == "" {
		return errors.New("session: jti key is required")
	}
	_, nowUS := s.nowMicros()
	n, err := s.be.writer().exec(ctx, `INSERT INTO exchange_jtis (key, expires_at) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE exchange_jtis.expires_at <= ?`,
		key, micros(exp), nowUS)
	if err != nil {
		return fmt.Errorf("session: use jti: %w", err)
	}
	if n == 0 {
		return ErrExists
	}
	return nil
}

// sweepJTIs drops used jtis whose tokens have expired.
func (s *sqlStore) sweepJTIs(ctx context.Context, now time.Time) (int, error) {
	n, err := s.be.writer().exec(ctx, "DELETE FROM exchange_jtis WHERE expires_at <= ?", micros(now))
	if err != nil {
		return 0, fmt.Errorf("session: sweep jtis: %w", err)
	}
	return int(n), nil
}
