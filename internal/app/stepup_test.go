package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/canary"
)

var asksCode = regexp.MustCompile(`(?i)six digit code`)

// authenticate walks Maria (or whoever) through KBA and returns the menu turn.
func authenticate(t testing.TB, p *phone, name, dob, ssn string) turn {
	t.Helper()
	tr := p.listen(p.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}}))
	tr = p.say(tr, name)
	tr = p.say(tr, dob)
	if !asksSSN.MatchString(tr.said) {
		t.Fatalf("expected the SSN-4 question, heard %q", tr.said)
	}
	return p.press(tr, ssn)
}

// TestStepUpToOTPForMedications: a KBA-only token may read appointments;
// medications need kba-otp, so the MCP server's 401
// insufficient_user_authentication sends the caller through the texted code
// (read from the dev outbox), after which the medications are read out.
func TestStepUpToOTPForMedications(t *testing.T) {
	st, logs := startStack(t, app.Config{})
	p := &phone{t: t, st: st, callSid: "CAstepup00000000000000000000000001", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := authenticate(t, p, "Maria Garcia", "March third nineteen eighty", "4567")
	if !strings.Contains(tr.said, "verified") {
		t.Fatalf("KBA did not verify: %q", tr.said)
	}
	tr = p.say(tr, "medications")
	if !asksCode.MatchString(tr.said) {
		t.Fatalf("medications with a KBA-only token should ask for the code, heard %q", tr.said)
	}
	code, err := st.LatestOTP("+15555550101")
	if err != nil || len(code) != 6 {
		t.Fatalf("no code in the outbox: %q %v\n%s", code, err, logs.String())
	}
	tr = p.press(tr, code)
	if !strings.Contains(tr.said, "Lisinopril") {
		t.Fatalf("after the code, expected the medications, heard %q\nwhole call:\n%s", tr.said, strings.Join(p.heard, "\n"))
	}
	if canary.Leaks(logs.String(), code) {
		t.Error("the one-time code appears in the logs")
	}
	for _, h := range p.heard {
		if strings.Contains(h, code) {
			t.Error("the one-time code was read back to the caller")
		}
	}
}

// TestLandlineStepUpEndsInTransfer: Robert Brown's number on file is a
// landline, so no code can reach him; every code fails and the call ends
// with a human, never with his medications.
func TestLandlineStepUpEndsInTransfer(t *testing.T) {
	st, _ := startStack(t, app.Config{})
	p := &phone{t: t, st: st, callSid: "CAlandline000000000000000000000001", from: "+15555550107", verstat: "TN-Validation-Passed-A"}
	tr := authenticate(t, p, "Robert Brown", "February twenty ninth nineteen forty eight", "5050")
	if !strings.Contains(tr.said, "verified") {
		t.Fatalf("leap-day KBA did not verify: %q", tr.said)
	}
	tr = p.say(tr, "medications")
	if !asksCode.MatchString(tr.said) {
		t.Fatalf("expected the code prompt (the same sentence for everyone), heard %q", tr.said)
	}
	if code, err := st.LatestOTP("+15555550107"); err == nil {
		t.Fatalf("a code %q was 'texted' to a landline", code)
	}
	tr = p.say(tr, "I can't receive texts")
	if !tr.dial {
		for i := 0; i < 6 && !tr.dial && tr.action != ""; i++ {
			tr = p.press(tr, "000000")
		}
	}
	if !tr.dial {
		t.Fatalf("landline step-up did not end in a transfer: %q", tr.said)
	}
	if strings.Contains(strings.Join(p.heard, " "), "Lisinopril") || strings.Contains(strings.Join(p.heard, " "), "Metformin") {
		t.Fatal("medications were read without the second factor")
	}
}

// TestSubjectTokenCallerSkipsKBA: the host app registers a caller who is
// already signed in; voiceauth exchanges the token (RFC 8693) and the call
// goes straight to the menu. A forged token falls back to KBA.
func TestSubjectTokenCallerSkipsKBA(t *testing.T) {
	st, _ := startStack(t, app.Config{})
	upstream, err := st.MintUpstreamToken("pt-0001", 5*60e9)
	if err != nil {
		t.Fatal(err)
	}
	register := func(callSid, user, pass, token string) int {
		form := url.Values{"subject_token": {token}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}}
		req, _ := http.NewRequest(http.MethodPost, st.VoiceURL+"/v1/calls/"+callSid+"/subject-token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := register("CAexch01", st.HostClientID, "wrong-secret", upstream); code != http.StatusUnauthorized {
		t.Errorf("wrong host credentials: %d, want 401", code)
	}
	if code := register("CAexch01", st.HostClientID, st.HostClientSecret, upstream); code/100 != 2 {
		t.Fatalf("registration: %d", code)
	}
	p := &phone{t: t, st: st, callSid: "CAexch01", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := p.listen(p.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}}))
	if asksName.MatchString(tr.said) || !strings.Contains(tr.said, "verified") {
		t.Fatalf("a pre-authenticated caller was asked for KBA: %q", tr.said)
	}
	tr = p.say(tr, "appointments")
	if !strings.Contains(tr.said, "Dr. ") {
		t.Fatalf("expected appointments, heard %q", tr.said)
	}

	// A token that is not from a trusted issuer is refused; that call does KBA.
	forged := upstream[:len(upstream)-4] + "AAAA"
	if code := register("CAexch02", st.HostClientID, st.HostClientSecret, forged); code/100 == 2 {
		t.Errorf("a forged subject token was accepted (%d)", code)
	}
	p2 := &phone{t: t, st: st, callSid: "CAexch02", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr = p2.listen(p2.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}}))
	if !asksName.MatchString(tr.said) {
		t.Fatalf("after a rejected exchange the caller must do KBA, heard %q", tr.said)
	}
	if _, err := st.Store().GetTokens(context.Background(), "CAexch02"); err == nil {
		t.Error("tokens stored for a rejected exchange")
	}
}
