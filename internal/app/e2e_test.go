package app_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/canary"
	"github.com/voiceauth/voiceauth/ivr/twiliotest"
)

// syncBuffer collects the stack's logs for the PHI grep.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startStack(t testing.TB, cfg app.Config) (*app.Stack, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Addr, cfg.ASAddr, cfg.MCPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.LogWriter = logs
	st, err := app.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := st.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st, logs
}

// twiml and node are the TwiML a caller's phone acts on (twiliotest's reader).
type (
	twiml = twiliotest.TwiML
	node  = twiliotest.Verb
)

// phone is a scripted caller talking to the webhook front end.
type phone struct {
	t       testing.TB
	st      *app.Stack
	callSid string
	from    string
	verstat string
	heard   []string
}

// post sends one signed webhook and returns the parsed TwiML.
func (p *phone) post(path string, form url.Values) twiml {
	p.t.Helper()
	status, body := p.send(path, form)
	if status != http.StatusOK {
		p.t.Fatalf("POST %s: %d %s", path, status, body)
	}
	var doc twiml
	if err := xml.Unmarshal(body, &doc); err != nil {
		p.t.Fatalf("POST %s: not TwiML: %v\n%s", path, err, body)
	}
	return doc
}

// send signs and posts one webhook the way Twilio does.
func (p *phone) send(path string, form url.Values) (int, []byte) {
	p.t.Helper()
	form.Set("CallSid", p.callSid)
	form.Set("AccountSid", "AC00000000000000000000000000000000")
	form.Set("From", p.from)
	form.Set("To", "+15555550000")
	form.Set("Direction", "inbound")
	if p.verstat != "" {
		form.Set("StirVerstat", p.verstat)
	}
	if !strings.HasPrefix(path, "http") {
		path = p.st.PublicURL + path
	}
	u, err := url.Parse(path)
	if err != nil {
		p.t.Fatal(err)
	}
	phone := twiliotest.Phone{PublicURL: p.st.PublicURL, Target: p.st.VoiceURL, AuthToken: p.st.TwilioAuthToken}
	resp, err := phone.Post(context.Background(), u.RequestURI(), form, nil)
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// turn is what the caller hears until the service waits for input: the
// text said and the Gather action (or "" when the call ended or moved on).
type turn struct {
	said     string
	action   string
	redirect string
	dial     bool
	hangup   bool
}

func read(doc twiml) turn {
	var tr turn
	var says []string
	var walk func(ns []node)
	walk = func(ns []node) {
		for _, n := range ns {
			switch n.XMLName.Local {
			case "Say":
				says = append(says, strings.TrimSpace(n.Text))
			case "Gather":
				tr.action = n.Attr("action")
				walk(n.Inner)
			case "Redirect":
				tr.redirect = strings.TrimSpace(n.Text)
			case "Dial":
				tr.dial = true
			case "Hangup":
				tr.hangup = true
			default:
				walk(n.Inner)
			}
		}
	}
	walk(doc.Verbs)
	tr.said = strings.Join(says, " ")
	return tr
}

// listen follows Redirects (hold phrases) until the service asks something.
func (p *phone) listen(doc twiml) turn {
	p.t.Helper()
	for i := 0; i < 20; i++ {
		tr := read(doc)
		if tr.said != "" {
			p.heard = append(p.heard, tr.said)
		}
		if tr.action != "" || tr.dial || tr.hangup || tr.redirect == "" {
			return tr
		}
		doc = p.post(tr.redirect, url.Values{})
	}
	p.t.Fatal("more than 20 redirects without a question")
	return turn{}
}

func (p *phone) say(tr turn, speech string) turn {
	p.t.Helper()
	if tr.action == "" {
		p.t.Fatalf("wanted to say %q but the service is not listening; heard %q", speech, tr.said)
	}
	return p.listen(p.post(tr.action, url.Values{"SpeechResult": {speech}, "Confidence": {"0.92"}}))
}

func (p *phone) press(tr turn, digits string) turn {
	p.t.Helper()
	if tr.action == "" {
		p.t.Fatalf("wanted to press %q but the service is not listening; heard %q", digits, tr.said)
	}
	return p.listen(p.post(tr.action, url.Values{"Digits": {digits}}))
}

var (
	asksName = regexp.MustCompile(`(?i)\bname\b`)
	asksDOB  = regexp.MustCompile(`(?i)date of birth|birth`)
	asksSSN  = regexp.MustCompile(`(?i)last four|social security`)
)

// TestWebhookCallEndToEnd is the foundation's walking skeleton: a signed
// webhook conversation for Maria Garcia, through the real AS (challenge
// endpoint, PKCE code redemption) and the real MCP server, ends with her
// appointments read out — and no KBA value ever reaches the logs.
func TestWebhookCallEndToEnd(t *testing.T) {
	st, logs := startStack(t, app.Config{})
	p := &phone{t: t, st: st, callSid: "CA" + strings.Repeat("e2e0", 8), from: "+15555550101", verstat: "TN-Validation-Passed-A"}

	tr := p.listen(p.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}}))
	if !asksName.MatchString(tr.said) {
		t.Fatalf("greeting does not ask for a name: %q", tr.said)
	}
	tr = p.say(tr, "Maria Garcia")
	if !asksDOB.MatchString(tr.said) {
		t.Fatalf("after the name, expected the date of birth question, heard %q", tr.said)
	}
	tr = p.say(tr, "March third nineteen eighty")
	for i := 0; i < 2 && !asksSSN.MatchString(tr.said); i++ {
		// The IVR may read the date back for confirmation.
		tr = p.say(tr, "yes")
	}
	if !asksSSN.MatchString(tr.said) {
		t.Fatalf("expected the SSN-4 question, heard %q", tr.said)
	}
	tr = p.press(tr, "4567")
	if tr.action == "" {
		t.Fatalf("after KBA the call did not reach the menu: %q (dial=%v)", tr.said, tr.dial)
	}
	tr = p.say(tr, "appointments")
	all := strings.Join(p.heard, "\n")
	if !strings.Contains(tr.said, "Dr. ") || !regexp.MustCompile(`(?i)2 upcoming appointments|two upcoming appointments`).MatchString(tr.said) {
		t.Fatalf("expected Maria's two appointments read out, heard %q\nwhole call:\n%s", tr.said, all)
	}

	t.Logf("the call:\n%s", all)

	// Hang up: tokens are revoked and forgotten.
	if status, body := p.send("/twilio/status", url.Values{"CallStatus": {"completed"}, "CallDuration": {"42"}}); status/100 != 2 {
		t.Fatalf("status callback: %d %s", status, body)
	}
	if _, err := st.Store().GetTokens(context.Background(), p.callSid); err == nil {
		t.Error("tokens still stored after the completed status callback")
	}

	for _, v := range []string{"1980-03-03", "03031980", "March third", "4567"} {
		if canary.Leaks(logs.String(), v) {
			t.Errorf("KBA value %q appears in the logs", v)
		}
	}
	if strings.Contains(logs.String(), "eyJ") {
		t.Error("a token-shaped string appears in the logs")
	}
}

// TestForgedWebhookRejected: unsigned and mis-signed webhooks get 403.
func TestForgedWebhookRejected(t *testing.T) {
	st, _ := startStack(t, app.Config{})
	form := url.Values{"CallSid": {"CAforged"}, "From": {"+15555550101"}, "To": {"+15555550000"}}
	for name, sig := range map[string]string{
		"unsigned":    "",
		"wrong token": twiliotest.Sign("not-the-token", st.PublicURL+"/twilio/voice", form),
		"other URL":   twiliotest.Sign(st.TwilioAuthToken, st.PublicURL+"/twilio/gather", form),
	} {
		req, _ := http.NewRequest(http.MethodPost, st.VoiceURL+"/twilio/voice", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if sig != "" {
			req.Header.Set("X-Twilio-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, resp.StatusCode)
		}
	}
	if _, err := st.Store().GetCall(context.Background(), "CAforged"); err == nil {
		t.Error("a forged webhook created call state")
	}
}

// TestHealthAndReadiness checks /healthz, /readyz and /metrics.
func TestHealthAndReadiness(t *testing.T) {
	st, _ := startStack(t, app.Config{})
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(st.VoiceURL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
		if path == "/metrics" && !bytes.Contains(body, []byte("go_goroutines")) {
			t.Errorf("/metrics lacks Go runtime metrics")
		}
	}
}

// TestSecretsPersistAcrossRestarts: the dev secrets are generated once.
func TestSecretsPersistAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s1, created, err := app.LoadSecrets(filepath.Join(dir, "secrets.json"), true)
	if err != nil || !created {
		t.Fatalf("first load: created=%v err=%v", created, err)
	}
	s2, created, err := app.LoadSecrets(filepath.Join(dir, "secrets.json"), true)
	if err != nil || created {
		t.Fatalf("second load: created=%v err=%v", created, err)
	}
	if s1.TwilioAuthToken != s2.TwilioAuthToken || !bytes.Equal(s1.Pepper, s2.Pepper) || s1.MCPIdentityKey.KeyID != s2.MCPIdentityKey.KeyID {
		t.Fatal("secrets changed between loads")
	}
	if _, _, err := app.LoadSecrets(filepath.Join(dir, "missing.json"), false); err == nil {
		t.Fatal("production-style load of a missing file succeeded")
	}
}

// TestReadyzFollowsTheBackends: /readyz turns 503 when the MCP server stops
// answering, even though discovery is cached.
func TestReadyzFollowsTheBackends(t *testing.T) {
	var down atomic.Bool
	st, _ := startStack(t, app.Config{WrapMCP: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	get := func() int {
		resp, err := http.Get(st.AdminURL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("readyz with everything up: %d", code)
	}
	down.Store(true)
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the MCP server down: %d", code)
	}
}
