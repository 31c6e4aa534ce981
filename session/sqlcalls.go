// The calls table on either backend: one sealed state per call, written
// with optimistic versions, swept when idle (sqlstore.go has the type).

package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

const qCreateCall = "INSERT INTO calls (id, version, state_sealed, ended, created_at, updated_at) VALUES (?, 1, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"

func (s *sqlStore) CreateCall(ctx context.Context, c *Call) error {
	ins, err := s.callInsert(c)
	if err != nil {
		return err
	}
	if err := ins.exec(ctx, s.be.writer()); err != nil {
		return err
	}
	ins.done(c)
	return nil
}

// callInsert is one new call row, sealed and timestamped, ready to write.
type callInsert struct {
	id               string
	sealed           []byte
	ended            bool
	created, now     time.Time
	createdUS, nowUS int64
}

func (s *sqlStore) callInsert(c *Call) (*callInsert, error) {
	if c == nil || c.ID == "" {
		return nil, errors.New("session: call id is empty")
	}
	now, nowUS := s.nowMicros()
	created := c.CreatedAt.UTC().Truncate(time.Microsecond)
	if c.CreatedAt.IsZero() {
		created = now
	}
	sealed, err := s.sealer.Seal(c.State, tblCalls, colState, c.ID)
	if err != nil {
		return nil, err
	}
	return &callInsert{id: c.ID, sealed: sealed, ended: c.Ended, created: created, now: now, createdUS: micros(created), nowUS: nowUS}, nil
}

// exec writes the row; ErrExists when the call is already stored.
func (in *callInsert) exec(ctx context.Context, x execer) error {
	n, err := x.exec(ctx, qCreateCall, in.id, in.sealed, in.ended, in.createdUS, in.nowUS)
	if err != nil {
		return fmt.Errorf("session: create call: %w", err)
	}
	if n == 0 {
		return ErrExists
	}
	return nil
}

// done records the written row's version and times on c.
func (in *callInsert) done(c *Call) {
	c.Version, c.CreatedAt, c.UpdatedAt = 1, in.created, in.now
}

func (s *sqlStore) GetCall(ctx context.Context, id string) (*Call, error) {
	var (
		c                Call
		sealed           []byte
		created, updated int64
	)
	err := s.be.reader().queryRow(ctx,
		"SELECT version, state_sealed, ended, created_at, updated_at FROM calls WHERE id = ?", id).
		Scan(&c.Version, &sealed, &c.Ended, &created, &updated)
	if err != nil {
		return nil, wrapRead("get call", err)
	}
	if c.State, err = s.sealer.Open(sealed, tblCalls, colState, id); err != nil {
		return nil, err
	}
	c.ID, c.CreatedAt, c.UpdatedAt = id, fromMicros(created), fromMicros(updated)
	return &c, nil
}

func (s *sqlStore) UpdateCall(ctx context.Context, c *Call) error {
	if c == nil || c.ID == "" {
		return errors.New("session: call id is empty")
	}
	now, nowUS := s.nowMicros()
	sealed, err := s.sealer.Seal(c.State, tblCalls, colState, c.ID)
	if err != nil {
		return err
	}
	n, err := s.be.writer().exec(ctx,
		"UPDATE calls SET state_sealed = ?, ended = ?, version = version + 1, updated_at = ? WHERE id = ? AND version = ?",
		sealed, c.Ended, nowUS, c.ID, c.Version)
	if err != nil {
		return fmt.Errorf("session: update call: %w", err)
	}
	if n == 0 {
		return s.casMiss(ctx, "SELECT 1 FROM calls WHERE id = ?", c.ID)
	}
	c.Version++
	c.UpdatedAt = now
	return nil
}

// casMiss tells a lost compare-and-swap (ErrConflict) from a missing row.
func (s *sqlStore) casMiss(ctx context.Context, q string, args ...any) error {
	var one int
	err := s.be.writer().queryRow(ctx, q, args...).Scan(&one)
	switch {
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("session: %w", err)
	}
	return ErrConflict
}

func (s *sqlStore) SweepCalls(ctx context.Context, idleBefore time.Time) (int, error) {
	var n int64
	err := s.be.tx(ctx, func(x execer) error {
		var err error
		cut := micros(idleBefore)
		if n, err = x.exec(ctx, "DELETE FROM calls WHERE updated_at < ?", cut); err != nil {
			return err
		}
		// Tokens outlive their call only until the call itself would have
		// been swept (a token can be registered before the call arrives).
		_, err = x.exec(ctx,
			"DELETE FROM call_tokens WHERE updated_at < ? AND NOT EXISTS (SELECT 1 FROM calls WHERE calls.id = call_tokens.call_id)", cut)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("session: sweep calls: %w", err)
	}
	return int(n), nil
}
