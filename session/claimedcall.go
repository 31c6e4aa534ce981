package session

import (
	"context"
)

// CreateCallClaimed writes a new call and the record that claims it in one
// transaction: an incoming call's two writes cost one commit (and, with
// group commit, a share of one), and no reader ever sees the claim without
// the call it was made for.
func (s *sqlStore) CreateCallClaimed(ctx context.Context, claim *Record, c *Call) error {
	ins, err := s.callInsert(c)
	if err != nil {
		return err
	}
	err = s.be.tx(ctx, func(x execer) error {
		if err := s.putRecord(ctx, x, claim); err != nil {
			return err
		}
		return ins.exec(ctx, x) // ErrExists rolls the claim back with it
	})
	if err != nil {
		return err
	}
	claim.Version = 1
	ins.done(c)
	return nil
}
