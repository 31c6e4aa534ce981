// Package session owns everything that must survive a crash or be shared
// between voiceauth instances: call state, sealed tokens, the authorization
// server's records (auth sessions, codes, OTPs, lockout counters), the patient
// directory, MCP identity pins and the hash-chained audit trail.
//
// It knows nothing of telephony or OAuth: callers hand it opaque, already
// hashed keys and opaque state blobs. Anything sensitive that it stores
// (call state, tokens, record data) is sealed with AES-256-GCM before it
// reaches the database.
package session

import (
	"context"
	"errors"
	"time"
)

// Errors every Store implementation returns (wrapped or bare; match with errors.Is).
var (
	ErrNotFound = errors.New("session: not found")
	ErrConflict = errors.New("session: version conflict")
	ErrExists   = errors.New("session: already exists")
)

// Call is the durable state of one phone call. State is an opaque blob owned
// by the dialog engine; the store seals it at rest.
type Call struct {
	ID        string // the call's identifier (CallSid)
	Version   int64  // optimistic concurrency: UpdateCall succeeds only if unchanged
	State     []byte
	Ended     bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TokenSet is what a call holds after authentication. Sealed at rest.
type TokenSet struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Scope        string
	Issuer       string
	Resource     string
	Expiry       time.Time
}

// Record is one piece of authorization-server state: an auth_session, an
// authorization code, a refresh token, an OTP, a lock. Key is already a hash
// of any secret it is derived from; Data is opaque to the store and sealed.
type Record struct {
	Kind      string
	Key       string
	Version   int64
	Data      []byte
	ExpiresAt time.Time // zero = never; expired records read as ErrNotFound
}

// EventWindow is an event key and the start of the window to count it in.
type EventWindow struct {
	Key   string
	Since time.Time
}

// Patient is one row of the patient directory the AS resolves callers
// against. There is no plaintext birthdate or SSN-4: only keyed hashes.
type Patient struct {
	ID       string // opaque patient id (the token's sub)
	Name     string // display name as registered
	NameKeys []string
	DOBHash  []byte // HMAC-SHA256(pepper, id|birthdate|YYYY-MM-DD)
	SSN4Hash []byte // HMAC-SHA256(pepper, id|ssn_last4|NNNN)
	Phone    string // number on file, E.164
	LineType string // mobile | landline | voip
}

// Pin is a trust-on-first-use record of an MCP server's identity key.
type Pin struct {
	Server     string // canonical MCP server URL
	KeyID      string
	Thumbprint string // RFC 7638 thumbprint of the pinned key
	Key        []byte // the JWK as JSON
	PinnedAt   time.Time
	UpdatedAt  time.Time
}

// AuditEvent is one append-only audit record, chained to the one before by
// an HMAC under the audit key (see auditkey.go). It never carries PHI:
// Subject and Number are keyed hashes made by the caller.
type AuditEvent struct {
	Seq      int64
	Time     time.Time
	Type     string // e.g. kba.failed, kba.locked, token.issued, token.revoked, mcp.denied
	Actor    string // client id or component
	Subject  string // keyed hash of the patient id, or ""
	Number   string // keyed hash of the caller's number, or ""
	CallRef  string
	Outcome  string
	Detail   map[string]string
	PrevHash []byte // the previous record's Hash
	Hash     []byte // key version ‖ HMAC (36 bytes), or SHA-256 (32) for records older than the keyed chain
}

// AuditFilter selects audit records; zero fields match everything.
type AuditFilter struct {
	Subject string
	Type    string
	From    time.Time
	To      time.Time
	Limit   int
}

// AuditReport is what VerifyAudit found.
type AuditReport struct {
	Records     int
	Checkpoints int
	Legacy      int    // records under the unkeyed SHA-256 of earlier versions
	FirstBad    int64  // Seq of the first record that breaks the chain, 0 if none
	Problem     string // human-readable reason, "" if the chain is intact
}

// Store is implemented by the SQLite and PostgreSQL backends. Every method
// takes a context first; none keeps a transaction open across calls.
type Store interface {
	// Calls.
	CreateCall(ctx context.Context, c *Call) error // ErrExists
	// CreateCallClaimed is CreateCall(c) unless the live claim record or
	// the call already exists (ErrExists), as one step. PostgreSQL also
	// writes the claim record with the call (one transaction); SQLite does
	// not, the call row stands for it (claimedcall.go): whoever writes that
	// claim later must look for the call after writing it.
	CreateCallClaimed(ctx context.Context, claim *Record, c *Call) error
	GetCall(ctx context.Context, id string) (*Call, error) // ErrNotFound
	// UpdateCall writes c if the stored version still equals c.Version, then
	// increments c.Version; otherwise ErrConflict and nothing changes.
	UpdateCall(ctx context.Context, c *Call) error
	SweepCalls(ctx context.Context, idleBefore time.Time) (int, error)

	// Tokens held for a call, sealed at rest.
	PutTokens(ctx context.Context, callID string, t TokenSet) error
	GetTokens(ctx context.Context, callID string) (TokenSet, error) // ErrNotFound
	DeleteTokens(ctx context.Context, callID string) error

	// Authorization-server records.
	PutRecord(ctx context.Context, r *Record) error                   // ErrExists
	GetRecord(ctx context.Context, kind, key string) (*Record, error) // ErrNotFound (also when expired)
	UpdateRecord(ctx context.Context, r *Record) error                // CAS on Version like UpdateCall
	DeleteRecord(ctx context.Context, kind, key string) error         // nil if absent
	SweepRecords(ctx context.Context, now time.Time) (int, error)

	// Sliding-window event counters (failures per identity, per number, requests per auth_session).
	AddEvent(ctx context.Context, key string, at time.Time) error
	CountEvents(ctx context.Context, key string, since time.Time) (int, error)
	// AddEvents records one event at `at` under each key and returns each
	// key's count since its window start, in one transaction: a caller
	// counted against several identities costs one commit, not one each.
	AddEvents(ctx context.Context, at time.Time, evs []EventWindow) ([]int, error)
	CountDistinct(ctx context.Context, keyPrefix string, since time.Time) (int, error)
	SweepEvents(ctx context.Context, before time.Time) (int, error)

	// Patient directory.
	UpsertPatients(ctx context.Context, ps []Patient) error
	FindPatients(ctx context.Context, nameKeys []string) ([]Patient, error) // any key matches
	GetPatient(ctx context.Context, id string) (*Patient, error)
	CountPatients(ctx context.Context) (int, error)
	// RekeyPatients replaces every key of each patient holding a directory
	// key without keyedPrefix by keys(p) (the plaintext → keyed migration).
	RekeyPatients(ctx context.Context, keyedPrefix string, keys func(Patient) []string) (int, error)

	// UseJTI marks a token (key: a caller-made hash of issuer and jti) used
	// until exp; ErrExists while an earlier use is live (replay).
	UseJTI(ctx context.Context, key string, exp time.Time) error

	// Revoked access tokens (by jti), shared by the AS that revokes and the
	// resource servers that verify tokens locally.
	RevokeToken(ctx context.Context, jti string, exp time.Time) error // idempotent; exp = the token's expiry
	TokenRevoked(ctx context.Context, jti string) (bool, error)
	SweepRevoked(ctx context.Context, before time.Time) (int, error) // purges rows whose token expired before `before`

	// MCP identity pins.
	GetPin(ctx context.Context, server string) (*Pin, error) // ErrNotFound
	PutPin(ctx context.Context, p *Pin) error                // insert or replace
	ListPins(ctx context.Context) ([]Pin, error)             // ordered by server
	// DeletePin removes server's pin and, when e is not nil, appends e to
	// the audit trail in the same transaction (so an operator's clearing is
	// on record if and only if it happened). ErrNotFound if there was none.
	DeletePin(ctx context.Context, server string, e *AuditEvent) error

	// Audit trail.
	AppendAudit(ctx context.Context, e *AuditEvent) error // fills Seq, PrevHash, Hash
	// PutRecordAudit is PutRecord and AppendAudit in one transaction: the
	// record exists if and only if its audit event does (and it costs one
	// commit, not two).
	PutRecordAudit(ctx context.Context, r *Record, e *AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	VerifyAudit(ctx context.Context) (AuditReport, error)
	PurgeAudit(ctx context.Context, before time.Time) (int, error) // writes a checkpoint record

	Ping(ctx context.Context) error
	Close() error
}
