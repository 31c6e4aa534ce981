package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voiceauth/voiceauth/session"
)

// flaky fails the first n audit appends as a busy disk would.
type flaky struct {
	session.Store
	n atomic.Int32
}

func (f *flaky) AppendAudit(ctx context.Context, e *session.AuditEvent) error {
	if f.n.Add(-1) >= 0 {
		return errors.New("session: append audit: disk I/O error")
	}
	return f.Store.AppendAudit(ctx, e)
}

func openTestStore(t *testing.T) session.Store {
	t.Helper()
	sealer, err := session.NewSealer(map[uint32][]byte{1: make([]byte, 32)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := session.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), session.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestAuditSurvivesCallerCancelAndFailures: an audit record written for a
// request whose client has gone (context canceled) and that fails twice on
// the disk is still written, once.
func TestAuditSurvivesCallerCancelAndFailures(t *testing.T) {
	inner := &flaky{Store: openTestStore(t)}
	inner.n.Store(2)
	m := newOpsMetrics(prometheus.NewRegistry())
	s := newObservedStore(inner, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.sleep = func(context.Context, time.Duration) error { return nil }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.AppendAudit(ctx, &session.AuditEvent{Time: time.Now(), Type: "token.revoked", Outcome: "revoked"}); err != nil {
		t.Fatalf("durable append: %v", err)
	}
	evs, err := s.ListAudit(context.Background(), session.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != "token.revoked" {
		t.Fatalf("audit trail %+v, want exactly the one record", evs)
	}
	if rep, err := s.VerifyAudit(context.Background()); err != nil || rep.Problem != "" {
		t.Fatalf("chain: %+v %v", rep, err)
	}
}

// TestDurableGivesUpInBoundedTime: a store that never recovers returns the
// error when the bound is reached, not never.
func TestDurableGivesUpInBoundedTime(t *testing.T) {
	inner := &flaky{Store: openTestStore(t)}
	inner.n.Store(1 << 30)
	s := newObservedStore(inner, newOpsMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	tries := 0
	s.sleep = func(ctx context.Context, _ time.Duration) error {
		if tries++; tries == 5 {
			return context.DeadlineExceeded
		}
		return nil
	}
	err := s.AppendAudit(context.Background(), &session.AuditEvent{Time: time.Now(), Type: "x"})
	if err == nil || ErrKind(err) != "io_error" || tries != 5 {
		t.Fatalf("err %v (kind %s) after %d sleeps; want the io_error after 5", err, ErrKind(err), tries)
	}
}

// TestLoadGaugeSheds: slow backend jobs make the gauge shed new calls, fast
// ones (or a quiet spell with nothing finishing) let them in again.
func TestLoadGaugeSheds(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newLoadGauge(6*time.Second, func() time.Time { return now })
	for i := 0; i < 5; i++ {
		g.observe(100 * time.Millisecond)
	}
	if g.overloaded() {
		t.Fatal("shedding with fast backends")
	}
	for i := 0; i < 30 && !g.overloaded(); i++ {
		g.observe(6 * time.Second)
	}
	if !g.overloaded() {
		t.Fatal("not shedding with backends at the give-up time")
	}
	g.observe(100 * time.Millisecond)
	if !g.overloaded() {
		t.Fatal("one fast answer ended the shedding (no hysteresis)")
	}
	now = now.Add(6 * time.Second)
	if g.overloaded() {
		t.Fatal("still shedding after a quiet spell with nothing finishing")
	}
	for i := 0; i < 50; i++ {
		g.observe(6 * time.Second)
	}
	for i := 0; i < 60 && g.overloaded(); i++ {
		g.observe(50 * time.Millisecond)
	}
	if g.overloaded() {
		t.Fatal("fast answers did not end the shedding")
	}
}

// TestAdmissionForgetsSilentCalls: a call whose end was never heard stops
// holding a line after the idle time, so lines do not leak.
func TestAdmissionForgetsSilentCalls(t *testing.T) {
	now := time.Unix(5000, 0)
	a := newAdmission(1, nil, "+15555550100", newOpsMetrics(prometheus.NewRegistry()),
		func() time.Time { return now })
	if r := a.admit("CA1"); r != "" {
		t.Fatalf("first call refused: %s", r)
	}
	if r := a.admit("CA2"); r != "max_calls" {
		t.Fatalf("second call at the cap: %q, want max_calls", r)
	}
	now = now.Add(10 * time.Minute)
	a.touch("CA1")
	now = now.Add(10 * time.Minute)
	if r := a.admit("CA2"); r != "max_calls" {
		t.Fatalf("a call active 10 minutes ago was forgotten: %q", r)
	}
	now = now.Add(6 * time.Minute)
	if r := a.admit("CA2"); r != "" {
		t.Fatalf("a call silent for 16 minutes still holds the line: %q", r)
	}
	if a.inProgress() != 1 {
		t.Fatalf("in progress %d, want 1", a.inProgress())
	}
}
