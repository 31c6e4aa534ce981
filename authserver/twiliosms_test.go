package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/internal/canary"
	"github.com/voiceauth/voiceauth/internal/twfake"
	"github.com/voiceauth/voiceauth/session"
)

const (
	fakeAccount = "AC0123456789abcdef0123456789abcdef"
	fakeToken   = "0123456789abcdef0123456789abcdef"
)

func newFake(t *testing.T) *twfake.Server {
	f := twfake.New(fakeAccount, fakeToken)
	t.Cleanup(f.Close)
	return f
}

func TestTwilioMessagingWireFormat(t *testing.T) {
	f := newFake(t)
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	st := openStore(t, clk.Now)
	m := &TwilioMessaging{BaseURL: f.URL, AccountSID: fakeAccount, AuthToken: fakeToken, MessagingServiceSID: "MG1", Store: st, Now: clk.Now}
	ref, err := m.Send(ctx, "+15555550101")
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.Messages()
	if len(msgs) != 1 || msgs[0].To != "+15555550101" || msgs[0].MessagingServiceSID != "MG1" || msgs[0].From != "" {
		t.Fatalf("delivered %+v", msgs)
	}
	code, _ := f.LatestCode("+15555550101")
	if ok, err := m.Check(ctx, ref, code); !ok || err != nil {
		t.Fatalf("texted code: %v %v", ok, err)
	}
	// A sender number when there is no messaging service; an API key pair authenticates too.
	f.AddAPIKey("SK0011", "keysecret0011")
	byKey := &TwilioMessaging{BaseURL: f.URL, AccountSID: fakeAccount, APIKeySID: "SK0011", AuthToken: "keysecret0011", From: "+15555550000", Store: st, Now: clk.Now}
	if _, err := byKey.Send(ctx, "+15555550102"); err != nil {
		t.Fatalf("API key: %v", err)
	}
	if msgs = f.Messages(); msgs[1].From != "+15555550000" {
		t.Fatalf("from: %+v", msgs[1])
	}
	if got := f.Requests(); len(got) != 2 || got[0] != "POST /2010-04-01/Accounts/"+fakeAccount+"/Messages.json" {
		t.Fatalf("requests %v", got)
	}

	tests := []struct {
		name       string
		to         string
		fail       *twfake.Failure
		mod        func(*TwilioMessaging)
		status     int
		code       int
		retryAfter time.Duration
	}{
		{name: "bad credentials", to: "+15555550101", mod: func(m *TwilioMessaging) { m.AuthToken = "ffffffffffffffffffffffffffffffff" }, status: 401, code: 20003},
		{name: "invalid number", to: "+1555", status: 400, code: 21211},
		{name: "landline", to: "+15555550107", fail: &twfake.Failure{Status: 400, Code: 21614, Message: "'To' number +15555550107 is not a valid mobile number"}, status: 400, code: 21614},
		{name: "unreachable carrier", to: "+15555550101", fail: &twfake.Failure{Status: 400, Code: 21612, Message: "The 'To' phone number is not currently reachable"}, status: 400, code: 21612},
		{name: "rate limited", to: "+15555550101", fail: &twfake.Failure{Status: 429, Code: 20429, Message: "Too Many Requests", RetryAfter: 7}, status: 429, code: 20429, retryAfter: 7 * time.Second},
		{name: "Twilio down", to: "+15555550101", fail: &twfake.Failure{Status: 503, Code: 20503, Message: "Service Unavailable"}, status: 503, code: 20503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.SetFail(func(op, to string) *twfake.Failure { return tt.fail })
			defer f.SetFail(nil)
			mm := *m
			if tt.mod != nil {
				tt.mod(&mm)
			}
			n := len(f.Messages())
			_, err := mm.Send(ctx, tt.to)
			var te *TwilioError
			if !errors.As(err, &te) || te.Status != tt.status || te.Code != tt.code || te.RetryAfter != tt.retryAfter {
				t.Fatalf("err = %#v, want status %d code %d", err, tt.status, tt.code)
			}
			if !strings.HasPrefix(te.MoreInfo, "https://www.twilio.com/docs/errors/") || TwilioErrorCode(err) != tt.code {
				t.Fatalf("more_info %q", te.MoreInfo)
			}
			if strings.Contains(err.Error(), tt.to) || strings.Contains(err.Error(), "mobile") {
				t.Fatalf("error text carries what Twilio said about the number: %v", err)
			}
			if len(f.Messages()) != n {
				t.Fatal("a failed send delivered a message")
			}
		})
	}

	// No answer at all (the fake is gone) and a cancelled call are transport failures.
	gone := twfake.New(fakeAccount, fakeToken)
	gone.Close()
	down := *m
	down.BaseURL = gone.URL
	if _, err := down.Send(ctx, "+15555550101"); !errors.As(err, new(*TwilioError)) || TwilioErrorCode(err) != 0 {
		t.Fatalf("unreachable: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	n := len(f.Messages())
	if _, err := m.Send(cctx, "+15555550101"); err == nil || len(f.Messages()) != n {
		t.Fatalf("a cancelled context still sent: %v", err)
	}
}

func TestTwilioVerifyWireFormat(t *testing.T) {
	f := newFake(t)
	ctx := context.Background()
	v := &TwilioVerify{BaseURL: f.URL, AccountSID: fakeAccount, AuthToken: fakeToken, ServiceSID: f.VerifySID}
	ref, err := v.Send(ctx, "+15555550102")
	if err != nil || !strings.HasPrefix(ref, "VE") {
		t.Fatalf("send: %q %v", ref, err)
	}
	code, _ := f.LatestCode("+15555550102")
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	if ok, err := v.Check(ctx, ref, wrong); ok || err != nil {
		t.Fatalf("wrong code: %v %v", ok, err)
	}
	if ok, err := v.Check(ctx, ref, code); !ok || err != nil {
		t.Fatalf("right code: %v %v", ok, err)
	}
	// Approved verifications answer 404 (20404): a used code, not an outage.
	if ok, err := v.Check(ctx, ref, code); ok || err != nil {
		t.Fatalf("reused code: %v %v", ok, err)
	}
	if ok, err := v.Check(ctx, "VEunknown", code); ok || err != nil {
		t.Fatalf("unknown verification: %v %v", ok, err)
	}
	// Mid-call failures of the check are errors (the AS answers server_error), not "wrong code".
	ref, _ = v.Send(ctx, "+15555550102")
	code, _ = f.LatestCode("+15555550102")
	f.SetFail(func(op, to string) *twfake.Failure {
		if op == "check" {
			return &twfake.Failure{Status: 429, Code: 20429, RetryAfter: 2}
		}
		return nil
	})
	if ok, err := v.Check(ctx, ref, code); ok || TwilioErrorCode(err) != 20429 {
		t.Fatalf("rate-limited check: %v %v", ok, err)
	}
	f.SetFail(nil)
	if ok, err := v.Check(ctx, ref, code); !ok || err != nil {
		t.Fatalf("check after the limit: %v %v", ok, err)
	}
	other := *v
	other.ServiceSID = "VAnotmine"
	if _, err := other.Send(ctx, "+15555550102"); TwilioErrorCode(err) != 20404 {
		t.Fatalf("unknown service: %v", err)
	}
}

// countingChannel counts sends that reached it.
type countingChannel struct {
	mu   sync.Mutex
	sent []string
}

func (c *countingChannel) Send(_ context.Context, to string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, to)
	return "ref", nil
}
func (c *countingChannel) Check(context.Context, string, string) (bool, error) { return false, nil }

func TestSendGuard(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	st := openStore(t, clk.Now)
	next := &countingChannel{}
	blocked := map[string]int{}
	var mu sync.Mutex
	guard := func() *SendGuard {
		return &SendGuard{Next: next, Store: st, PerNumber: 2, PerPrefix: 3, Window: time.Hour, Now: clk.Now,
			OnBlocked: func(scope string) { mu.Lock(); blocked[scope]++; mu.Unlock() }}
	}
	a, b := guard(), guard() // two instances share the store's counters
	must := func(g *SendGuard, to string, want error) {
		t.Helper()
		_, err := g.Send(ctx, to)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("Send(%s) = %v, want %v", to, err, want)
		}
	}
	must(a, "+15555550101", nil)
	must(b, "+15555550101", nil)
	must(a, "+15555550101", ErrSendLimited) // third to one number
	if blocked["number"] != 1 {
		t.Fatalf("blocked = %v", blocked)
	}
	must(b, "+15555550102", ErrSendLimited) // fourth to +1555: the area code's limit
	must(a, "+15555550103", ErrSendLimited)
	if blocked["prefix"] != 2 || len(next.sent) != 2 {
		t.Fatalf("blocked = %v, sent %v", blocked, next.sent)
	}
	must(a, "+442071838750", nil) // another prefix is not affected
	if _, err := a.Send(ctx, "+15555550101"); otpSendFailure(err)["scope"] != "number" {
		t.Fatalf("audit detail for a blocked send: %v", otpSendFailure(err))
	}
	clk.Add(time.Hour + time.Second)
	must(a, "+15555550101", nil)
	if len(next.sent) != 4 {
		t.Fatalf("sent %v", next.sent)
	}
}

func TestCountryPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"+15555550101":   "+1555",
		"+12125550100":   "+1212",
		"+18765550100":   "+1876", // Jamaica is NANP: counted apart from the US
		"+442071838750":  "+44",
		"+33142685300":   "+33",
		"+74951234567":   "+7",
		"+2348012345678": "+234",
		"+35312345678":   "+353",
		"5555550101":     "other",
		"+1555abc0101":   "other",
		"+1":             "other",
		"":               "other",
	} {
		if got := CountryPrefix(in); got != want {
			t.Errorf("CountryPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTextedCodeThroughFake is the scenario "texted code through the fake"
// at the AS: a caller without attestation is texted a code through
// twilio-go and the fake, and the code they read off their phone proves
// kba-otp. When Twilio refuses the send (a landline, a rate limit), the
// caller gets the very same answer, every code fails, and the audit trail
// records Twilio's error code — never the number.
func TestTextedCodeThroughFake(t *testing.T) {
	f := newFake(t)
	e := newEnv(t, func(c *Config) {
		c.OTP = &SendGuard{Store: c.Store, PerNumber: 10, PerPrefix: 100, Now: c.Now,
			Next: &TwilioMessaging{BaseURL: f.URL, AccountSID: fakeAccount, AuthToken: fakeToken, From: "+15555550000", Store: c.Store, Now: c.Now}}
	})
	m := demo("pt-0001")
	start := func() (string, string) {
		e.clk.Add(4 * time.Minute) // under the AS's 3 sends / 10 min per identity
		_, c := pkce()
		r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, "", ""))
		if !r.err.OTPRequired {
			t.Fatalf("want otp_required: %s", r.body)
		}
		return r.err.AuthSession, maskSession(r.body, r.err.AuthSession)
	}
	sess, okBody := start()
	code, texted := f.LatestCode(m.Phone)
	if !texted {
		t.Fatal("no code texted")
	}
	if r := e.post("/challenge", follow(sess, "otp", code)); r.status != 200 {
		t.Fatalf("texted code: %d %s", r.status, r.body)
	}

	for _, fl := range []twfake.Failure{
		{Status: 400, Code: 21614, Message: "not a mobile number"},
		{Status: 429, Code: 20429, RetryAfter: 30},
		{Status: 500, Code: 20500},
	} {
		f.SetFail(func(string, string) *twfake.Failure { return &fl })
		sess, body := start()
		f.SetFail(nil)
		if body != okBody {
			t.Fatalf("Twilio %d: the caller's answer differs: %s vs %s", fl.Code, body, okBody)
		}
		for range 4 {
			if r := e.post("/challenge", follow(sess, "otp", code)); !r.err.OTPRetry {
				t.Fatalf("a code passed after a failed send: %s", r.body)
			}
		}
	}
	// Mid-call: the first text went out, the resend fails; the old code is void.
	sess, _ = start()
	first, _ := f.LatestCode(m.Phone)
	f.SetFail(func(string, string) *twfake.Failure { return &twfake.Failure{Status: 503, Code: 20503} })
	e.clk.Add(4 * time.Minute)
	r := e.post("/challenge", follow(sess, "otp_resend", "true"))
	f.SetFail(nil)
	if !r.err.OTPRequired || r.err.OTPRetry {
		t.Fatalf("failed resend: %s", r.body)
	}
	if r := e.post("/challenge", follow(sess, "otp", first)); r.status == 200 {
		t.Fatal("the code of a replaced send still works")
	}

	evs, err := e.st.ListAudit(context.Background(), session.AuditFilter{Type: "otp.send_failed"})
	if err != nil || len(evs) != 4 {
		t.Fatalf("otp.send_failed audit records: %d %v", len(evs), err)
	}
	var codes []string
	for _, ev := range evs {
		codes = append(codes, ev.Detail["twilio_code"])
		raw, _ := json.Marshal(ev)
		for _, secret := range []string{m.Phone, m.Name, "pt-0001"} {
			if canary.Leaks(string(raw), secret) {
				t.Fatalf("audit carries %q: %s", secret, raw)
			}
		}
	}
	if strings.Join(codes, ",") != "21614,20429,20500,20503" || evs[1].Detail["retry_after_s"] != "30" {
		t.Fatalf("audited codes %v / %v", codes, evs[1].Detail)
	}
}

func FuzzCountryPrefix(f *testing.F) {
	for _, s := range []string{"+15555550101", "+442071838750", "+74951234567", "+2348012345678", "", "+", "+1abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := CountryPrefix(s)
		if p != "other" && (!strings.HasPrefix(s, p) || len(p) < 2 || len(p) > 5) {
			t.Fatalf("CountryPrefix(%q) = %q", s, p)
		}
	})
}
