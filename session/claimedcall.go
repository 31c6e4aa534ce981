package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CreateCallClaimed writes a new call and the record that claims it in one
// transaction: an incoming call's two writes cost one commit (and, with
// group commit, a share of one), and no reader ever sees the claim without
// the call it was made for.
func (s *sqlStore) CreateCallClaimed(ctx context.Context, claim *Record, c *Call) error {
	if c == nil || c.ID == "" {
		return errors.New("session: call id is empty")
	}
	now, nowUS := s.nowMicros()
	created := c.CreatedAt.UTC().Truncate(time.Microsecond)
	if c.CreatedAt.IsZero() {
		created = now
	}
	sealed, err := s.sealer.Seal(c.State, tblCalls, colState, c.ID)
	if err != nil {
		return err
	}
	err = s.be.tx(ctx, func(x execer) error {
		if err := s.putRecord(ctx, x, claim); err != nil {
			return err
		}
		n, err := x.exec(ctx, qCreateCall, c.ID, sealed, c.Ended, micros(created), nowUS)
		if err != nil {
			return fmt.Errorf("session: create call: %w", err)
		}
		if n == 0 {
			return ErrExists // rolls the claim back with it
		}
		return nil
	})
	if err != nil {
		return err
	}
	claim.Version = 1
	c.Version, c.CreatedAt, c.UpdatedAt = 1, created, now
	return nil
}
