package challenge_test

import (
	"context"
	"testing"

	"github.com/voiceauth/voiceauth/challenge"
)

// TestRealAS_MaxAgeZeroAsksAgain: a resource server's max_age=0 at the
// proven level makes the real AS ask for the one-time code again (the
// client sends the 0, the AS treats it as "prove it now"); each code is
// redeemed with its own verifier.
func TestRealAS_MaxAgeZeroAsksAgain(t *testing.T) {
	s := newRealStack(t, nil)
	c, d := s.client(t, nil)
	ctx := context.Background()
	f, _ := c.NewFlow(d, "", "call-ref-maxage0")
	res := runSteps(t, s, c, f, []step{{a: challenge.Answers{Name: maria, Birthdate: mariaDOB, SSNLast4: mariaSSN,
		CallerPhone: mariaTel, StirVerstat: stirA}, want: challenge.Code}})
	if _, err := c.Redeem(ctx, f, res.Code); err != nil {
		t.Fatal(err)
	}
	first := f.Verifier
	if _, _, _, ok := c.StepUp(f, `Bearer error="insufficient_user_authentication", acr_values="`+challenge.ACRKBA+`", max_age=0`); !ok {
		t.Fatal("step-up refused")
	}
	res = runSteps(t, s, c, f, []step{{want: challenge.NeedOTP}, {otp: true, want: challenge.Code}})
	if f.Verifier == first {
		t.Fatal("re-entry reused the first code's verifier")
	}
	tok, err := c.Redeem(ctx, f, res.Code)
	if err != nil {
		t.Fatal(err)
	}
	if claims := s.verifyAccessToken(t, d, tok); claims["acr"] != challenge.ACRKBAOTP {
		t.Fatalf("acr after the fresh proof: %v", claims["acr"])
	}
}
