package session

import (
	"context"
	"fmt"
)

// CreateCallClaimed writes a new call unless its claim record (or the call)
// already exists, before the caller hears anything.
//
// On SQLite it is one statement: the call row itself stands for the claim
// ("the call came first"), written only if no live claim record exists.
// Every SQLite write runs on the one writer connection, one statement after
// another, so the check and the insert are a single step that no other
// write can come between; a lone new call then commits one row (its table
// page and index page) with no BEGIN/COMMIT of its own, where the claim
// record and the call took two inserts, four pages and a transaction. A
// host that claims a call afterwards must look for the call after its
// claim is written (ivr/callclaim.go does): the claim record alone no
// longer says the call came first.
//
// On PostgreSQL two transactions can both check before either commits, so
// there the claim record is written with the call, in one transaction, and
// the records table's key decides who came first.
func (s *sqlStore) CreateCallClaimed(ctx context.Context, claim *Record, c *Call) error {
	ins, err := s.callInsert(c)
	if err != nil {
		return err
	}
	if s.be.name() == "sqlite" {
		if err := s.createCallUnclaimed(ctx, claim, ins); err != nil {
			return err
		}
		ins.done(c)
		return nil
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

const qCreateCallUnclaimed = `INSERT INTO calls (id, version, state_sealed, ended, created_at, updated_at)
SELECT ?, 1, ?, ?, ?, ? WHERE NOT EXISTS (
	SELECT 1 FROM records WHERE kind = ? AND key = ? AND (expires_at = 0 OR expires_at > ?))
ON CONFLICT (id) DO NOTHING`

// createCallUnclaimed is SQLite's CreateCallClaimed: the call row, written
// only when no live claim record exists; ErrExists otherwise.
func (s *sqlStore) createCallUnclaimed(ctx context.Context, claim *Record, in *callInsert) error {
	if claim == nil || claim.Kind == "" || claim.Key == "" {
		return fmt.Errorf("session: create call: claim kind and key are required")
	}
	n, err := s.be.writer().exec(ctx, qCreateCallUnclaimed,
		in.id, in.sealed, in.ended, in.createdUS, in.nowUS, claim.Kind, claim.Key, in.nowUS)
	if err != nil {
		return fmt.Errorf("session: create call: %w", err)
	}
	if n == 0 {
		return ErrExists
	}
	return nil
}
