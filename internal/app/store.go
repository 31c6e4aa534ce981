package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/voiceauth/voiceauth/broker"
	"github.com/voiceauth/voiceauth/session"
)

// observedStore is the store every part of the instance uses. It times and
// counts each operation, and writes what must never be lost — audit records
// and revocations — through a path the caller cannot cancel: the write is
// detached from the request's context (a caller hanging up, or an HTTP
// client giving up on the AS, no longer cancels it) and retried with
// backoff for a bounded time while the store fails.
type observedStore struct {
	session.Store
	m   *opsMetrics
	log *slog.Logger
	// durableKinds are record kinds whose writes are revocations.
	durableKinds map[string]bool
	// durableFor bounds how long a durable write keeps retrying.
	durableFor time.Duration
	sleep      func(context.Context, time.Duration) error

	lastWriteErr   atomic.Int64 // unix nanos of the last failed write
	lastSealingErr atomic.Int64 // unix nanos of the last value sealed under a key we lack
}

// sealingMissingSince reports whether a stored value failed to open for a
// missing key version after t.
func (s *observedStore) sealingMissingSince(t time.Time) bool {
	v := s.lastSealingErr.Load()
	return v != 0 && time.Unix(0, v).After(t)
}

// sealingReloaded forgets past missing-key failures (the keyring changed).
func (s *observedStore) sealingReloaded() { s.lastSealingErr.Store(0) }

func newObservedStore(st session.Store, m *opsMetrics, log *slog.Logger) *observedStore {
	return &observedStore{Store: st, m: m, log: log, durableFor: 20 * time.Second, sleep: sleepCtx,
		durableKinds: map[string]bool{"revoked_jti": true, "refresh_family": true, broker.RevokePendingKind: true}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answer reports whether err is the store's answer (not found, conflict,
// exists) rather than a failure.
func answer(err error) bool {
	return err == nil || errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrConflict) ||
		errors.Is(err, session.ErrExists)
}

func (s *observedStore) done(op string, start time.Time, err error, write bool) {
	s.m.storeSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if !answer(err) {
		kind := ErrKind(err)
		if kind == "canceled" {
			return // the caller went away; not the store's fault
		}
		s.m.storeErrors.WithLabelValues(op, kind).Inc()
		if kind == "sealing_key_missing" {
			s.lastSealingErr.Store(time.Now().UnixNano())
		}
		if write {
			s.lastWriteErr.Store(time.Now().UnixNano())
		}
	}
}

// durable runs write detached from ctx's cancellation, retrying failures
// (not answers) with backoff until it succeeds or durableFor has passed.
// A failed attempt committed nothing (SQLite rolls the savepoint back,
// PostgreSQL the transaction), so a retry cannot write twice.
func (s *observedStore) durable(ctx context.Context, op string, write func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.durableFor)
	defer cancel()
	backoff := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := write(ctx)
		s.done(op, start, err, true)
		if answer(err) || ctx.Err() != nil || ErrKind(err) == "closed" {
			return err // done, out of time, or shutting down (nothing left to write with)
		}
		if attempt == 0 {
			s.log.Warn("durable write failed; retrying", "op", op, "err", err.Error(), "err_kind", ErrKind(err))
		}
		s.m.durableRetry.WithLabelValues(op).Inc()
		if s.sleep(ctx, backoff) != nil {
			return err
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *observedStore) AppendAudit(ctx context.Context, e *session.AuditEvent) error {
	err := s.durable(ctx, "append_audit", func(ctx context.Context) error { return s.Store.AppendAudit(ctx, e) })
	if err == nil {
		s.m.auditObserved(e)
	}
	return err
}

func (s *observedStore) PutRecordAudit(ctx context.Context, r *session.Record, e *session.AuditEvent) error {
	err := s.durable(ctx, "put_record_audit", func(ctx context.Context) error { return s.Store.PutRecordAudit(ctx, r, e) })
	if err == nil {
		s.m.auditObserved(e)
	}
	return err
}

func (s *observedStore) PutRecord(ctx context.Context, r *session.Record) error {
	if s.durableKinds[r.Kind] {
		return s.durable(ctx, "put_record", func(ctx context.Context) error { return s.Store.PutRecord(ctx, r) })
	}
	start := time.Now()
	err := s.Store.PutRecord(ctx, r)
	s.done("put_record", start, err, true)
	return err
}

func (s *observedStore) UpdateRecord(ctx context.Context, r *session.Record) error {
	if s.durableKinds[r.Kind] {
		return s.durable(ctx, "update_record", func(ctx context.Context) error { return s.Store.UpdateRecord(ctx, r) })
	}
	start := time.Now()
	err := s.Store.UpdateRecord(ctx, r)
	s.done("update_record", start, err, true)
	return err
}

// The remaining operations are timed and counted only.

func (s *observedStore) CreateCall(ctx context.Context, c *session.Call) error {
	start := time.Now()
	err := s.Store.CreateCall(ctx, c)
	s.done("create_call", start, err, true)
	return err
}

func (s *observedStore) CreateCallClaimed(ctx context.Context, claim *session.Record, c *session.Call) error {
	start := time.Now()
	err := s.Store.CreateCallClaimed(ctx, claim, c)
	s.done("create_call", start, err, true)
	return err
}

func (s *observedStore) GetCall(ctx context.Context, id string) (*session.Call, error) {
	start := time.Now()
	c, err := s.Store.GetCall(ctx, id)
	s.done("get_call", start, err, false)
	return c, err
}

func (s *observedStore) UpdateCall(ctx context.Context, c *session.Call) error {
	start := time.Now()
	err := s.Store.UpdateCall(ctx, c)
	s.done("update_call", start, err, true)
	return err
}

func (s *observedStore) PutTokens(ctx context.Context, callID string, t session.TokenSet) error {
	start := time.Now()
	err := s.Store.PutTokens(ctx, callID, t)
	s.done("put_tokens", start, err, true)
	return err
}

func (s *observedStore) GetTokens(ctx context.Context, callID string) (session.TokenSet, error) {
	start := time.Now()
	t, err := s.Store.GetTokens(ctx, callID)
	s.done("get_tokens", start, err, false)
	return t, err
}

func (s *observedStore) DeleteTokens(ctx context.Context, callID string) error {
	start := time.Now()
	err := s.Store.DeleteTokens(ctx, callID)
	s.done("delete_tokens", start, err, true)
	return err
}

func (s *observedStore) GetRecord(ctx context.Context, kind, key string) (*session.Record, error) {
	start := time.Now()
	r, err := s.Store.GetRecord(ctx, kind, key)
	s.done("get_record", start, err, false)
	return r, err
}

func (s *observedStore) DeleteRecord(ctx context.Context, kind, key string) error {
	start := time.Now()
	err := s.Store.DeleteRecord(ctx, kind, key)
	s.done("delete_record", start, err, true)
	return err
}

func (s *observedStore) AddEvent(ctx context.Context, key string, at time.Time) error {
	start := time.Now()
	err := s.Store.AddEvent(ctx, key, at)
	s.done("add_event", start, err, true)
	return err
}

func (s *observedStore) CountEvents(ctx context.Context, key string, since time.Time) (int, error) {
	start := time.Now()
	n, err := s.Store.CountEvents(ctx, key, since)
	s.done("count_events", start, err, false)
	return n, err
}

func (s *observedStore) AddEvents(ctx context.Context, at time.Time, evs []session.EventWindow) ([]int, error) {
	start := time.Now()
	n, err := s.Store.AddEvents(ctx, at, evs)
	s.done("add_events", start, err, true)
	return n, err
}

func (s *observedStore) FindPatients(ctx context.Context, nameKeys []string) ([]session.Patient, error) {
	start := time.Now()
	ps, err := s.Store.FindPatients(ctx, nameKeys)
	s.done("find_patients", start, err, false)
	return ps, err
}

func (s *observedStore) GetPatient(ctx context.Context, id string) (*session.Patient, error) {
	start := time.Now()
	p, err := s.Store.GetPatient(ctx, id)
	s.done("get_patient", start, err, false)
	return p, err
}

// ListRecords keeps the operator tools working through the wrapper.
func (s *observedStore) ListRecords(ctx context.Context, kind string) ([]session.Record, error) {
	rl, ok := s.Store.(session.RecordLister)
	if !ok {
		return nil, fmt.Errorf("app: store cannot list records")
	}
	return rl.ListRecords(ctx, kind)
}

// Rewrap keeps `secrets rotate` working through the wrapper.
func (s *observedStore) Rewrap(ctx context.Context) (int, error) {
	rw, ok := s.Store.(session.Rewrapper)
	if !ok {
		return 0, fmt.Errorf("app: store cannot rewrap")
	}
	return rw.Rewrap(ctx)
}

// The client registry and the audit anchors go through the wrapper too: an
// optional interface the wrapper hid would silently turn the feature off.
func (s *observedStore) clients() (session.ClientStore, error) {
	cs, ok := s.Store.(session.ClientStore)
	if !ok {
		return nil, fmt.Errorf("app: store has no client registry")
	}
	return cs, nil
}

func (s *observedStore) CreateClient(ctx context.Context, c *session.Client) error {
	cs, err := s.clients()
	if err != nil {
		return err
	}
	return cs.CreateClient(ctx, c)
}

func (s *observedStore) GetClient(ctx context.Context, id string) (*session.Client, error) {
	cs, err := s.clients()
	if err != nil {
		return nil, err
	}
	return cs.GetClient(ctx, id)
}

func (s *observedStore) ListClients(ctx context.Context) ([]session.Client, error) {
	cs, err := s.clients()
	if err != nil {
		return nil, err
	}
	return cs.ListClients(ctx)
}

func (s *observedStore) UpdateClient(ctx context.Context, c *session.Client) error {
	cs, err := s.clients()
	if err != nil {
		return err
	}
	return cs.UpdateClient(ctx, c)
}

func (s *observedStore) DeleteClient(ctx context.Context, id string) error {
	cs, err := s.clients()
	if err != nil {
		return err
	}
	return cs.DeleteClient(ctx, id)
}

func (s *observedStore) AuditHead(ctx context.Context) (session.AuditAnchor, error) {
	an, ok := s.Store.(session.AuditAnchorer)
	if !ok {
		return session.AuditAnchor{}, fmt.Errorf("app: store cannot anchor its audit trail")
	}
	return an.AuditHead(ctx)
}

func (s *observedStore) VerifyAuditAnchor(ctx context.Context, a session.AuditAnchor) (session.AuditReport, error) {
	an, ok := s.Store.(session.AuditAnchorer)
	if !ok {
		return session.AuditReport{}, fmt.Errorf("app: store cannot anchor its audit trail")
	}
	return an.VerifyAuditAnchor(ctx, a)
}

func (s *observedStore) UpdateAuditKeys(keys map[uint32][]byte, current uint32) error {
	u, ok := s.Store.(session.AuditKeyUpdater)
	if !ok {
		return fmt.Errorf("app: store cannot take new audit keys")
	}
	return u.UpdateAuditKeys(keys, current)
}

var (
	_ session.AuditKeyUpdater = (*observedStore)(nil)
	_ session.RecordLister    = (*observedStore)(nil)
	_ session.Rewrapper       = (*observedStore)(nil)
	_ session.ClientStore     = (*observedStore)(nil)
	_ session.AuditAnchorer   = (*observedStore)(nil)
)
