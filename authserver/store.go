package authserver

import (
	"context"
	"time"

	"github.com/voiceauth/voiceauth/session"
)

// Store is what the authorization server needs from the store (Server, the
// OTP channels, the patient import and seeding, the client Registry): its
// records, the sliding-window counters, the patient directory, replay and
// revocation marks, and the audit trail. session.Store satisfies it. The
// Registry also needs session.ClientStore, which it asserts (every store from
// session.Open has it; a wrapper must pass it through).
type Store interface {
	// Records: auth sessions, codes, refresh families, OTPs, locks.
	PutRecord(ctx context.Context, r *session.Record) error                   // session.ErrExists
	GetRecord(ctx context.Context, kind, key string) (*session.Record, error) // session.ErrNotFound (also when expired)
	UpdateRecord(ctx context.Context, r *session.Record) error                // version swap; session.ErrConflict
	DeleteRecord(ctx context.Context, kind, key string) error                 // nil if absent

	// Sliding-window event counters (lockout, OTP pacing, guesses).
	AddEvent(ctx context.Context, key string, at time.Time) error
	AddEvents(ctx context.Context, at time.Time, evs []session.EventWindow) ([]int, error)
	CountEvents(ctx context.Context, key string, since time.Time) (int, error)
	CountDistinct(ctx context.Context, keyPrefix string, since time.Time) (int, error)

	// Patient directory.
	FindPatients(ctx context.Context, nameKeys []string) ([]session.Patient, error)
	GetPatient(ctx context.Context, id string) (*session.Patient, error) // session.ErrNotFound
	UpsertPatients(ctx context.Context, ps []session.Patient) error
	CountPatients(ctx context.Context) (int, error)
	RekeyPatients(ctx context.Context, keyedPrefix string, keys func(session.Patient) []string) (int, error)

	UseJTI(ctx context.Context, key string, exp time.Time) error      // session.ErrExists on replay
	RevokeToken(ctx context.Context, jti string, exp time.Time) error // idempotent

	AppendAudit(ctx context.Context, e *session.AuditEvent) error
	// PutRecordAudit writes the record and its audit event in one
	// transaction: both or neither.
	PutRecordAudit(ctx context.Context, r *session.Record, e *session.AuditEvent) error
}
