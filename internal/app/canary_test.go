package app_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/canary"
)

// TestPHICanariesNeverReachASink runs calls that succeed, fail and step up,
// then greps every sink a deployment keeps — logs, /metrics, the audit trail
// and the raw database files — for the KBA answers, the one-time code and the
// tokens. Only the dev SMS outbox (the fake phone) may hold the code.
func TestPHICanariesNeverReachASink(t *testing.T) {
	st, logs := startStack(t, app.Config{})
	ctx := context.Background()

	// 1. Maria: KBA, then medications with the texted code.
	p := &phone{t: t, st: st, callSid: "CAcanary0000000000000000000000001", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := authenticate(t, p, "Maria Garcia", "March third nineteen eighty", "4567")
	tr = p.say(tr, "medications")
	code, err := st.LatestOTP("+15555550101")
	if err != nil {
		t.Fatalf("no code: %v", err)
	}
	tr = p.press(tr, code)
	if !strings.Contains(tr.said, "Lisinopril") {
		t.Fatalf("step-up failed: %q", tr.said)
	}
	tokens, err := st.Store().GetTokens(ctx, p.callSid)
	if err != nil {
		t.Fatalf("tokens: %v", err)
	}

	// 2. James: wrong SSN-4 twice, from an unattested number.
	q := &phone{t: t, st: st, callSid: "CAcanary0000000000000000000000002", from: "+15555559999"}
	tr = authenticate(t, q, "James O'Brien", "November thirtieth nineteen fifty five", "9876")
	for i := 0; i < 3 && tr.action != "" && !tr.dial; i++ {
		tr = q.say(tr, "James O'Brien")
		tr = q.say(tr, "November thirtieth nineteen fifty five")
		tr = q.press(tr, "9876")
	}

	p.send("/twilio/status", url.Values{"CallStatus": {"completed"}})
	q.send("/twilio/status", url.Values{"CallStatus": {"completed"}})

	canaries := map[string]string{
		"DOB":           "1980-03-03",
		"DOB (James)":   "1955-11-30",
		"SSN-4":         "4567",
		"wrong SSN-4":   "9876",
		"OTP":           code,
		"access token":  tokens.AccessToken,
		"refresh token": tokens.RefreshToken,
	}
	metrics, err := st.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatal("no audit records were written")
	}
	auditJSON, _ := json.Marshal(evs)
	sinks := map[string]string{"logs": logs.String(), "metrics": metrics, "audit": string(auditJSON)}
	files, _ := filepath.Glob(filepath.Join(st.DataDir, "voiceauth.db*"))
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sinks["file "+filepath.Base(f)] = string(b)
	}
	for sink, content := range sinks {
		for what, v := range canaries {
			if v == "" {
				continue
			}
			if canary.Leaks(content, v) {
				t.Errorf("%s contains the %s", sink, what)
			}
		}
		// Names are PHI too: the store seals them, logs never carry them.
		if sink != "metrics" && strings.Contains(content, "Maria Garcia") {
			t.Errorf("%s contains a patient's name", sink)
		}
	}
	// The fake phone is the one place the code may be.
	outbox, _ := os.ReadFile(st.OTPOutboxPath())
	if !strings.Contains(string(outbox), code) {
		t.Error("the outbox does not hold the code the caller used; the test is not testing what it thinks")
	}
}
