package challenge

import (
	"context"
	"testing"
)

func BenchmarkParseWWWAuthenticate(b *testing.B) {
	h := `Bearer error="insufficient_scope", scope="appointments:read medications:read", resource_metadata="http://127.0.0.1:8082/.well-known/oauth-protected-resource/mcp", error_description="needs more"`
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseWWWAuthenticate(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiscoverCached(b *testing.B) {
	as := newFakeAS(b)
	mcp := newFakeMCP(b, as.Issuer)
	c := New(Config{ClientID: testClientID, ClientSecret: testClientSecret})
	ctx := context.Background()
	if _, err := c.Discover(ctx, mcp.URL); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Discover(ctx, mcp.URL); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFlowFakeAS: one caller's KBA flow (one POST with all answers) plus
// the code redemption against the in-process fake AS over loopback HTTP:
// the client's own cost plus two HTTP round trips.
func BenchmarkFlowFakeAS(b *testing.B) {
	as := newFakeAS(b)
	mcp := newFakeMCP(b, as.Issuer)
	c := New(Config{ClientID: testClientID, ClientSecret: testClientSecret})
	ctx := context.Background()
	d, err := c.Discover(ctx, mcp.URL)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		f, _ := c.NewFlow(d, "", "cr")
		res, err := c.Submit(ctx, f, Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN})
		if err != nil || res.Outcome != Code {
			b.Fatal(res.Outcome, err)
		}
		if _, err := c.Redeem(ctx, f, res.Code); err != nil {
			b.Fatal(err)
		}
	}
}
