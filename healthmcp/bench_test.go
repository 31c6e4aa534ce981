package healthmcp_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/healthmcp"
	"github.com/voiceauth/voiceauth/mcpclient"
)

// BenchmarkConnectCall measures what one authenticated phone call costs the
// MCP side: connect (initialize), identity/get + pin check + identity/challenge,
// tools/list with signature verification of every tool, one tools/call, close.
// Real HTTP on loopback, real ES256 token verification.
func BenchmarkConnectCall(b *testing.B) {
	st := newStack(b)
	tok := &tokens{list: []string{st.mint(b, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBAOTP})}}
	cl := mcpclient.New(mcpclient.Config{Pins: newPins(), Now: clock, Policy: mcpclient.Policy{RequireExtSignature: true}})
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		s, err := cl.Connect(ctx, st.url, tok)
		if err != nil {
			b.Fatal(err)
		}
		res, err := s.CallTool(ctx, "list_appointments", nil)
		if err != nil || res.IsError {
			b.Fatal(err)
		}
		s.Close()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[(n*99)/100].Microseconds())/1000, "p99-ms")
	}
}
