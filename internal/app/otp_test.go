package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/canary"
	"github.com/voiceauth/voiceauth/internal/twfake"
	"github.com/voiceauth/voiceauth/session"
)

const (
	fakeAccount = "AC0123456789abcdef0123456789abcdef"
	fakeToken   = "0123456789abcdef0123456789abcdef"
)

// TestTextedCodeThroughFakeTwilio is the scenario "texted code through the
// fake": the whole stack over loopback HTTP, the code texted through
// twilio-go to the fake Twilio REST server (Messaging, then Verify), read
// off the "phone" and keyed in. Then Twilio refuses the next send: the
// caller hears the same words, no code works, and the audit trail has
// Twilio's error code.
func TestTextedCodeThroughFakeTwilio(t *testing.T) {
	for _, channel := range []string{app.OTPTwilioMessaging, app.OTPTwilioVerify} {
		t.Run(channel, func(t *testing.T) {
			f := twfake.New(fakeAccount, fakeToken)
			defer f.Close()
			st, logs := startStack(t, app.Config{TwilioAuthToken: fakeToken, OTP: app.OTPConfig{
				Channel: channel, AccountSID: fakeAccount, From: "+15555550000", VerifyServiceSID: f.VerifySID, APIBase: f.URL}})
			if _, err := os.Stat(st.OTPOutboxPath()); err == nil {
				t.Fatal("the dev outbox exists with a Twilio channel")
			}
			p := &phone{t: t, st: st, callSid: "CAtexted0000000000000000000000001", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
			tr := authenticate(t, p, "Maria Garcia", "March third nineteen eighty", "4567")
			tr = p.say(tr, "medications")
			if !asksCode.MatchString(tr.said) {
				t.Fatalf("expected the code question, heard %q", tr.said)
			}
			sentWords := tr.said
			code, ok := f.LatestCode("+15555550101")
			if !ok {
				t.Fatalf("nothing texted through the fake\n%s", logs.String())
			}
			tr = p.press(tr, code)
			if !strings.Contains(tr.said, "Lisinopril") {
				t.Fatalf("after the texted code, expected the medications, heard %q", tr.said)
			}
			if canary.Leaks(logs.String(), code) {
				t.Error("the code is in the logs")
			}

			// Next caller: Twilio says the number cannot get texts.
			f.SetFail(func(op, to string) *twfake.Failure {
				return &twfake.Failure{Status: 400, Code: 21614, Message: "'To' number " + to + " is not a valid mobile number"}
			})
			p2 := &phone{t: t, st: st, callSid: "CAtexted0000000000000000000000002", from: "+15555550102", verstat: "TN-Validation-Passed-A"}
			tr = authenticate(t, p2, "James O'Brien", "November thirtieth nineteen fifty five", "0912")
			tr = p2.say(tr, "medications")
			if tr.said != sentWords {
				t.Fatalf("after a failed send the caller heard %q, not the usual %q", tr.said, sentWords)
			}
			evs, err := st.Store().ListAudit(context.Background(), session.AuditFilter{Type: "otp.send_failed"})
			if err != nil || len(evs) != 1 || evs[0].Detail["twilio_code"] != "21614" {
				t.Fatalf("audit: %+v %v", evs, err)
			}
			if canary.Leaks(logs.String(), "+15555550102") {
				t.Error("the number is in the logs")
			}
		})
	}
}

// TestOTPChannelConfig: production refuses the outbox; a Twilio channel
// without what it needs does not start; the guard's metric is exported.
func TestOTPChannelConfig(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets.json")
	os.WriteFile(secrets, []byte("{}"), 0o600)
	_, err := app.Start(context.Background(), app.Config{DataDir: dir, Production: true, PublicURL: "https://voice.example",
		TwilioAuthToken: fakeToken, ClientSecret: "x", SecretsFile: secrets, Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0", MCPAddr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "outbox") {
		t.Fatalf("production with the outbox: %v", err)
	}
	for _, o := range []app.OTPConfig{
		{Channel: app.OTPTwilioMessaging, AccountSID: fakeAccount},
		{Channel: app.OTPTwilioVerify, AccountSID: fakeAccount},
		{Channel: app.OTPTwilioMessaging, From: "+15555550000"},
		{Channel: "carrier-pigeon"},
	} {
		cfg := app.Config{DataDir: t.TempDir(), OTP: o, Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0", MCPAddr: "127.0.0.1:0", LogWriter: &syncBuffer{}}
		if st, err := app.Start(context.Background(), cfg); err == nil {
			st.Close(context.Background())
			t.Fatalf("%+v started", o)
		}
	}
	f := twfake.New(fakeAccount, fakeToken)
	defer f.Close()
	st, _ := startStack(t, app.Config{TwilioAuthToken: fakeToken, OTP: app.OTPConfig{
		Channel: app.OTPTwilioMessaging, AccountSID: fakeAccount, From: "+15555550000", APIBase: f.URL, PerNumber: 1}})
	m, err := st.MetricsText()
	if err != nil || !strings.Contains(m, `voiceauth_otp_sends_blocked_total{scope="number"} 0`) {
		t.Fatalf("metrics: %v\n%.2000s", err, m)
	}
	// Two step-ups by one caller: the second text is over the per-number limit of 1.
	for i, sid := range []string{"CAguard000000000000000000000000001", "CAguard000000000000000000000000002"} {
		p := &phone{t: t, st: st, callSid: sid, from: "+15555550101", verstat: "TN-Validation-Passed-A"}
		tr := authenticate(t, p, "Maria Garcia", "March third nineteen eighty", "4567")
		p.say(tr, "medications")
		if n := len(f.Messages()); n != 1 {
			t.Fatalf("after call %d, %d texts", i+1, n)
		}
	}
	m, _ = st.MetricsText()
	if !strings.Contains(m, `voiceauth_otp_sends_blocked_total{scope="number"} 1`) {
		t.Fatalf("blocked send not counted:\n%s", grepLines(m, "otp_sends_blocked"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
