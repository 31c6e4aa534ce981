package ivr

import (
	"context"

	"github.com/voiceauth/voiceauth/session"
)

// CallStore is what the voice service needs from the store: its calls, the
// call claims it keeps as records (callclaim.go), and the audit trail for
// refused requests. session.Store
// satisfies it; a metrics or fault-injecting wrapper needs only these.
type CallStore interface {
	CreateCall(ctx context.Context, c *session.Call) error // session.ErrExists
	// CreateCallClaimed writes claim and c in one transaction: both or
	// neither; session.ErrExists when either already exists.
	CreateCallClaimed(ctx context.Context, claim *session.Record, c *session.Call) error
	GetCall(ctx context.Context, id string) (*session.Call, error) // session.ErrNotFound
	// UpdateCall writes c if the stored version still equals c.Version and
	// increments it; otherwise session.ErrConflict and nothing changes.
	UpdateCall(ctx context.Context, c *session.Call) error

	PutRecord(ctx context.Context, r *session.Record) error                   // session.ErrExists
	GetRecord(ctx context.Context, kind, key string) (*session.Record, error) // session.ErrNotFound
	UpdateRecord(ctx context.Context, r *session.Record) error                // version swap like UpdateCall

	AppendAudit(ctx context.Context, e *session.AuditEvent) error
}
