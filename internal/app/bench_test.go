package app_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
)

// BenchmarkWebhookTurn is one signed webhook turn on the embedded stack with
// the call state persisted in SQLite (read, CAS write, TwiML): callers at the
// authenticated menu ask for help, which advances and saves their state.
// 32 concurrent callers; reports turns/s and latency percentiles.
func BenchmarkWebhookTurn(b *testing.B) {
	st, _ := startStack(b, app.Config{})
	const callers = 32
	phones := make([]*phone, callers)
	turns := make([]turn, callers)
	for i := range phones {
		phones[i] = &phone{t: b, st: st, callSid: fmt.Sprintf("CAbench%026d", i), from: "+15555550101", verstat: "TN-Validation-Passed-A"}
		turns[i] = authenticate(b, phones[i], "Maria Garcia", "March third nineteen eighty", "4567")
		if !strings.Contains(turns[i].said, "verified") {
			b.Fatalf("setup: %q", turns[i].said)
		}
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(callers / 2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1) - 1)
		p, tr := phones[i], turns[i]
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			tr = p.listen(p.post(tr.action, url.Values{"SpeechResult": {"help"}, "Confidence": {"0.9"}}))
			mine = append(mine, time.Since(t0))
			p.heard = p.heard[:0]
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "turns/s")
	slices.Sort(lat)
	if len(lat) > 0 {
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.5), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
	}
}
