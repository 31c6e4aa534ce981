// Event counters on either backend: timestamped keys the lockout rules
// count over a window.

package session

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

func (s *sqlStore) AddEvent(ctx context.Context, key string, at time.Time) error {
	if key == "" {
		return errors.New("session: event key is empty")
	}
	if at.IsZero() {
		at = s.now()
	}
	if _, err := s.be.writer().exec(ctx, qAddEvent, key, micros(at)); err != nil {
		return fmt.Errorf("session: add event: %w", err)
	}
	return nil
}

const (
	qAddEvent    = "INSERT INTO events (key, at) VALUES (?, ?)"
	qCountEvents = "SELECT COUNT(*) FROM events WHERE key = ? AND at >= ?"
)

func (s *sqlStore) CountEvents(ctx context.Context, key string, since time.Time) (int, error) {
	var n int64
	if err := s.be.reader().queryRow(ctx, qCountEvents, key, micros(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("session: count events: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) AddEvents(ctx context.Context, at time.Time, evs []EventWindow) ([]int, error) {
	for _, ev := range evs {
		if ev.Key == "" {
			return nil, errors.New("session: event key is empty")
		}
	}
	if at.IsZero() {
		at = s.now()
	}
	counts := make([]int, len(evs))
	err := s.be.tx(ctx, func(x execer) error {
		for i, ev := range evs {
			if _, err := x.exec(ctx, qAddEvent, ev.Key, micros(at)); err != nil {
				return err
			}
			var n int64
			if err := x.queryRow(ctx, qCountEvents, ev.Key, micros(ev.Since)).Scan(&n); err != nil {
				return err
			}
			counts[i] = int(n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("session: add events: %w", err)
	}
	return counts, nil
}

// CountDistinct counts the distinct keys starting with keyPrefix that have
// an event since the given time (e.g. how many identities one number tried).
func (s *sqlStore) CountDistinct(ctx context.Context, keyPrefix string, since time.Time) (int, error) {
	var n int64
	// substr, not LIKE: SQLite's LIKE folds ASCII case and both treat % and _ specially.
	err := s.be.reader().queryRow(ctx,
		"SELECT COUNT(DISTINCT key) FROM events WHERE at >= ? AND substr(key, 1, ?) = ?",
		micros(since), utf8.RuneCountInString(keyPrefix), keyPrefix).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("session: count distinct: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) SweepEvents(ctx context.Context, before time.Time) (int, error) {
	n, err := s.be.writer().exec(ctx, "DELETE FROM events WHERE at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("session: sweep events: %w", err)
	}
	return int(n), nil
}
