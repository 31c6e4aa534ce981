package challenge

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
)

// challengeForms are the bodies of the /challenge requests the fake AS saw.
func challengeForms(as *fakeAS) []url.Values {
	var out []url.Values
	for _, r := range as.requests() {
		if r.Path == "/challenge" {
			v, _ := url.ParseQuery(r.Body)
			out = append(out, v)
		}
	}
	return out
}

// TestMaxAgeZeroSent: max_age=0 from a resource server's challenge (RFC
// 9470: prove it again now) reaches the AS; it is not dropped as "unset".
func TestMaxAgeZeroSent(t *testing.T) {
	c := newTestClient(t, nil)
	as, _, d := discoverFake(t, c)
	ctx := context.Background()
	f, _ := c.NewFlow(d, "", "cr")
	res, err := c.Submit(ctx, f, Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN})
	if err != nil || res.Outcome != Code {
		t.Fatalf("%v %v", res.Outcome, err)
	}
	if _, err := c.Redeem(ctx, f, res.Code); err != nil {
		t.Fatal(err)
	}
	if got := challengeForms(as); got[len(got)-1].Has("max_age") {
		t.Fatalf("max_age sent before any step-up: %v", got[len(got)-1])
	}
	_, _, age, ok := c.StepUp(f, `Bearer error="insufficient_user_authentication", acr_values="`+ACRKBAOTP+`", max_age=0`)
	if !ok || age != 0 {
		t.Fatalf("step-up: ok=%v age=%d", ok, age)
	}
	if _, err := c.Submit(ctx, f, Answers{}); err != nil {
		t.Fatal(err)
	}
	forms := challengeForms(as)
	if last := forms[len(forms)-1]; !last.Has("max_age") || last.Get("max_age") != "0" {
		t.Fatalf("max_age=0 not sent: %v", last)
	}
	// It survives the flow's JSON round trip (the IVR persists flows).
	b, _ := json.Marshal(f)
	var g Flow
	if err := json.Unmarshal(b, &g); err != nil || !g.MaxAgeSet || g.MaxAge != 0 {
		t.Fatalf("round trip lost max_age=0: %s", b)
	}
	// Per-request override: an explicit 0 is sent, nil leaves the flow's.
	zero := 0
	h, _ := c.NewFlow(d, "", "cr-2")
	if _, err := c.Submit(ctx, h, Answers{Name: goodName, MaxAge: &zero}); err != nil {
		t.Fatal(err)
	}
	forms = challengeForms(as)
	if last := forms[len(forms)-1]; last.Get("max_age") != "0" {
		t.Fatalf("Answers.MaxAge=0 not sent: %v", last)
	}
	if _, err := c.Submit(ctx, h, Answers{Birthdate: goodDOB}); err != nil {
		t.Fatal(err)
	}
	forms = challengeForms(as)
	if last := forms[len(forms)-1]; last.Has("max_age") {
		t.Fatalf("max_age sent without being asked for: %v", last)
	}
}

// TestVerifierPerCode: every code the client obtains is bound to its own
// PKCE verifier — the first code, a step-up re-entry's code, and the first
// code of a session started again after the AS ended one.
func TestVerifierPerCode(t *testing.T) {
	c := newTestClient(t, nil)
	as, _, d := discoverFake(t, c)
	ctx := context.Background()
	f, _ := c.NewFlow(d, "", "cr")
	seen := map[string]bool{}
	verifiers := map[string]bool{}
	code := func(a Answers, steps ...Answers) {
		t.Helper()
		res, err := c.Submit(ctx, f, a)
		for _, s := range steps {
			if err != nil {
				break
			}
			res, err = c.Submit(ctx, f, s)
		}
		if err != nil || res.Outcome != Code {
			t.Fatalf("%v %v", res.Outcome, err)
		}
		if verifiers[f.Verifier] {
			t.Fatal("a verifier redeemed a second code")
		}
		verifiers[f.Verifier] = true
		if _, err := c.Redeem(ctx, f, res.Code); err != nil {
			t.Fatalf("redeem with the flow's verifier: %v", err)
		}
	}
	code(Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN})
	c.StepUp(f, `Bearer error="insufficient_user_authentication", acr_values="`+ACRKBAOTP+`"`)
	code(Answers{}, Answers{OTP: goodOTP})
	// Two wrong submissions end the session (access_denied); the next flow
	// on this Flow starts a new session with a new verifier.
	g, _ := c.NewFlow(d, "", "cr-3")
	first := g.Verifier
	if res, _ := c.Submit(ctx, g, Answers{Name: "X", Birthdate: goodDOB, SSNLast4: goodSSN}); res.Outcome != RetryKBA {
		t.Fatalf("want RetryKBA, got %v", res.Outcome)
	}
	if res, _ := c.Submit(ctx, g, Answers{Name: "X", Birthdate: goodDOB, SSNLast4: goodSSN}); res.Outcome != Denied {
		t.Fatalf("want Denied, got %v", res.Outcome)
	}
	res, err := c.Submit(ctx, g, Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN})
	if err != nil || res.Outcome != Code {
		t.Fatalf("%v %v", res.Outcome, err)
	}
	if g.Verifier == first {
		t.Fatal("a new session after access_denied reused the dead session's verifier")
	}
	if _, err := c.Redeem(ctx, g, res.Code); err != nil {
		t.Fatal(err)
	}
	// On the wire: each code_challenge sent is S256 of a distinct verifier.
	for _, v := range challengeForms(as) {
		cc := v.Get("code_challenge")
		if cc == "" {
			continue
		}
		if seen[cc] && v.Get(FieldAuthSession) == "" {
			t.Fatalf("code_challenge %s sent to start two sessions", cc)
		}
		seen[cc] = true
	}
	if len(seen) != 4 {
		t.Fatalf("%d distinct code_challenges, want 4 (two codes on one session, a dead session, a new one)", len(seen))
	}
}
