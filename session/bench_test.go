package session

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// benchTurns measures one dialog turn as the IVR does it: read the call,
// change its ~1 KiB state, write it back with compare-and-swap. Each
// parallel worker drives its own call, as concurrent phone calls do.
func benchTurns(b *testing.B, st Store) {
	ctx := context.Background()
	state := make([]byte, 1024)
	rand.Read(state)
	var worker atomic.Int64
	b.SetBytes(int64(len(state)))
	b.ReportAllocs()
	// 8 workers per CPU: many calls are in flight at once on a real server.
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("CA-bench-%d-%d", time.Now().UnixNano(), worker.Add(1))
		if err := st.CreateCall(ctx, &Call{ID: id, State: state}); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			c, err := st.GetCall(ctx, id)
			if err != nil {
				b.Error(err)
				return
			}
			c.State[0]++
			if err := st.UpdateCall(ctx, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "turns/s")
}

func BenchmarkTurnSQLite(b *testing.B) {
	st, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Options{Sealer: testSealer(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchTurns(b, st)
}

func BenchmarkTurnPostgres(b *testing.B) {
	st, err := Open(context.Background(), pgTestDSN(b), Options{Sealer: testSealer(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchTurns(b, st)
}

func BenchmarkAppendAuditSQLite(b *testing.B) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), Options{Sealer: testSealer(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := st.AppendAudit(ctx, &AuditEvent{Type: "mcp.tool_call", Actor: "voiceauth-ivr", Subject: "patient:0011223344556677", Outcome: "ok"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSeal1KiB(b *testing.B) {
	s := testSealer(b)
	state := make([]byte, 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		sealed, _ := s.Seal(state, "calls", "state_sealed", "CA1")
		if _, err := s.Open(sealed, "calls", "state_sealed", "CA1"); err != nil {
			b.Fatal(err)
		}
	}
}
