package ivr

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
)

func body(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// canon renders TwiML with sorted attributes (twilio-go's order is random).
func canon(t testing.TB, doc string) string {
	t.Helper()
	var d twimlDoc
	if err := xml.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("TwiML %q: %v", doc, err)
	}
	var b strings.Builder
	var walk func(vs []twimlVerb)
	walk = func(vs []twimlVerb) {
		for _, v := range vs {
			attrs := make([]string, 0, len(v.Attrs))
			for _, a := range v.Attrs {
				attrs = append(attrs, a.Name.Local+"="+a.Value)
			}
			sort.Strings(attrs)
			fmt.Fprintf(&b, "<%s %v>%s", v.XMLName.Local, attrs, strings.TrimSpace(v.Text))
			walk(v.Inner)
			fmt.Fprintf(&b, "</%s>", v.XMLName.Local)
		}
	}
	walk(d.Verbs)
	return b.String()
}

func TestWebhookRejects(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	sid := "CA00000000000000000000000000000001"
	first := body(t, f.post("/twilio/voice", callForm(sid), nil))
	c0, st0 := f.state(sid)

	send := func(path string, form url.Values, sig string, raw string) int {
		var r io.Reader = strings.NewReader(form.Encode())
		if raw != "" {
			r = strings.NewReader(raw)
		}
		req, _ := http.NewRequest(http.MethodPost, f.base+path, r)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if sig != "" {
			req.Header.Set("X-Twilio-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	answer := callForm(sid, "SpeechResult", "Maria Garcia")
	tampered := callForm(sid, "SpeechResult", "Maria Garcia")
	good := sign(testToken, f.base+"/twilio/gather?turn=0", answer)
	tampered.Set("From", "+15555550102")
	tests := []struct {
		name string
		path string
		form url.Values
		sig  string
		raw  string
		want int
	}{
		{"missing signature", "/twilio/gather?turn=0", answer, "", "", 403},
		{"tampered From", "/twilio/gather?turn=0", tampered, good, "", 403},
		{"signed for another path", "/twilio/gather?turn=1", answer, good, "", 403},
		{"wrong token", "/twilio/gather?turn=0", answer, sign("other-token", f.base+"/twilio/gather?turn=0", answer), "", 403},
		{"forged status callback", "/twilio/status", callForm(sid, "CallStatus", "completed"), "bm90IGEgc2lnbmF0dXJl", "", 403},
		{"too large", "/twilio/gather?turn=0", nil, good, "CallSid=" + strings.Repeat("A", 70<<10), 413},
		{"malformed form", "/twilio/gather?turn=0", nil, good, "%zz=%%%", 400},
	}
	for _, tc := range tests {
		if got := send(tc.path, tc.form, tc.sig, tc.raw); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	c1, st1 := f.state(sid)
	if c1.Version != c0.Version || st1.Turn != st0.Turn || st1.Phase != st0.Phase {
		t.Errorf("state changed by rejected requests: v%d→v%d", c0.Version, c1.Version)
	}
	if f.be.ended[sid] != 0 {
		t.Error("forged status callback ended the call")
	}
	// Signatures cover PublicURL + URI, whatever Host the proxy passed on.
	req, _ := http.NewRequest(http.MethodPost, f.base+"/twilio/voice", strings.NewReader(callForm(sid).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sign(testToken, f.base+"/twilio/voice", callForm(sid)))
	req.Host = "internal-lb:9999"
	if got := canon(t, body(t, mustDo(t, req))); got != canon(t, first) {
		t.Errorf("retried /twilio/voice answered differently:\n%s\n%s", got, first)
	}
}

func mustDo(t testing.TB, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// A retried or duplicated Gather delivery answers the current TwiML and does
// not advance the dialog twice.
func TestWebhookDuplicateDelivery(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	sid := "CA00000000000000000000000000000002"
	body(t, f.post("/twilio/voice", callForm(sid), nil))
	form := callForm(sid, "SpeechResult", "Maria Garcia")
	hdr := map[string]string{"I-Twilio-Idempotency-Token": "tok-1"}
	a := canon(t, body(t, f.post("/twilio/gather?turn=0", form, hdr)))
	_, st := f.state(sid)
	b := canon(t, body(t, f.post("/twilio/gather?turn=0", form, hdr))) // retry, same token
	c := canon(t, body(t, f.post("/twilio/gather?turn=0", form, nil))) // duplicate, no token
	_, st2 := f.state(sid)
	if a != b || a != c {
		t.Errorf("duplicates answered differently:\n%s\n%s\n%s", a, b, c)
	}
	if st2.Turn != 1 || st.Turn != 1 || st2.Phase != phaseBirthdate {
		t.Errorf("turn %d phase %s after duplicates", st2.Turn, st2.Phase)
	}
	// The same token on the next turn is a retry too (Twilio reuses it only for retries).
	d := canon(t, body(t, f.post("/twilio/gather?turn=1", callForm(sid, "SpeechResult", "March 3 1980"), hdr)))
	if d != a {
		t.Error("reused idempotency token advanced the dialog")
	}
}

func TestStatusCallbackEndsOnce(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	sid := "CA00000000000000000000000000000003"
	body(t, f.post("/twilio/voice", callForm(sid), nil))
	for _, status := range []string{"in-progress", "completed", "completed"} {
		resp := f.post("/twilio/status", callForm(sid, "CallStatus", status), nil)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s: %d", status, resp.StatusCode)
		}
		resp.Body.Close()
	}
	f.waitEnded(sid)
	c, st := f.state(sid)
	if !c.Ended || st.Outcome != OutcomeHungUp {
		t.Errorf("ended=%v outcome=%q", c.Ended, st.Outcome)
	}
	f.be.mu.Lock()
	n := f.be.ended[sid]
	f.be.mu.Unlock()
	if n != 1 {
		t.Errorf("EndCall called %d times", n)
	}
	// A Gather arriving after the hang-up changes nothing.
	body(t, f.post("/twilio/gather?turn=0", callForm(sid, "SpeechResult", "Maria Garcia"), nil))
	if _, st2 := f.state(sid); st2.Turn != 0 {
		t.Error("ended call advanced")
	}
}

func TestSubjectToken(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	sid := "CA00000000000000000000000000000004"
	post := func(user, pass, ct, payload string) int {
		req, _ := http.NewRequest(http.MethodPost, f.base+"/v1/calls/"+sid+"/subject-token", strings.NewReader(payload))
		req.Header.Set("Content-Type", ct)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp := mustDo(t, req)
		b := body(t, resp)
		if resp.StatusCode != 204 {
			var e map[string]string
			if json.Unmarshal([]byte(b), &e) != nil || e["error"] == "" {
				t.Errorf("error body %q", b)
			}
		}
		return resp.StatusCode
	}
	const typ = "urn:ietf:params:oauth:token-type:access_token"
	form := url.Values{"subject_token": {"good-subject-token"}, "subject_token_type": {typ}}.Encode()
	js, _ := json.Marshal(map[string]string{"subject_token": "good-subject-token", "subject_token_type": typ})
	tests := []struct {
		name, user, pass, ct, payload string
		want                          int
	}{
		{"no credentials", "", "", "application/x-www-form-urlencoded", form, 401},
		{"bad host secret", "host-app", "wrong", "application/x-www-form-urlencoded", form, 401},
		{"missing type", "host-app", "host-secret", "application/x-www-form-urlencoded", "subject_token=x", 400},
		{"rejected token", "host-app", "host-secret", "application/x-www-form-urlencoded", strings.Replace(form, "good", "bad", 1), 400},
		{"bad json", "host-app", "host-secret", "application/json", "{", 400},
		{"json", "host-app", "host-secret", "application/json", string(js), 204},
		{"registered twice", "host-app", "host-secret", "application/x-www-form-urlencoded", form, 409},
	}
	for _, tc := range tests {
		if got := post(tc.user, tc.pass, tc.ct, tc.payload); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// The call then arrives already verified.
	b := body(t, f.post("/twilio/voice", callForm(sid), nil))
	if !strings.Contains(b, "already verified") || strings.Contains(b, "first and last name") {
		t.Errorf("preauthorized call greeted with %s", b)
	}
	if strings.Contains(b, "good-subject-token") || strings.Contains(f.logs.String(), "good-subject-token") {
		t.Error("subject token leaked")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	st := openStore(t)
	be := newFakeBackend()
	ok := Config{PublicURL: "https://voice.example", AuthTokens: []string{"x"}, Store: st, Auth: be, Tools: be}
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"ok", func(*Config) {}, true},
		{"no store", func(c *Config) { c.Store = nil }, false},
		{"no tokens", func(c *Config) { c.AuthTokens = nil }, false},
		{"bad url", func(c *Config) { c.PublicURL = "voice.example" }, false},
		{"bad frontend", func(c *Config) { c.Frontend = "sip" }, false},
	}
	for _, tc := range tests {
		c := ok
		tc.mod(&c)
		s, err := New(c)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err=%v", tc.name, err)
		}
		if s != nil {
			s.Shutdown(context.Background())
			if got := s.relayURL(); got != "wss://voice.example/twilio/relay" {
				t.Errorf("relay URL %q", got)
			}
		}
	}
}

// FuzzWebhookForm throws arbitrary bodies (validly signed when they parse)
// at the Gather handler: it must answer 200/400/403/413, never panic.
func FuzzWebhookForm(f *testing.F) {
	f.Add("CallSid=CA1&SpeechResult=maria+garcia", "0")
	f.Add("CallSid=CA1&Digits=0303%3B1980", "0")
	f.Add("%%%", "1")
	f.Add("CallSid=&Digits=*", "x")
	f.Add("CallSid=CA1&SpeechResult="+strings.Repeat("nineteen ", 500), "0")
	fx := newFixture(f, FrontendGather, nil)
	body(f, fx.post("/twilio/voice", callForm("CA1"), nil))
	h := fx.srv.Handler()
	f.Fuzz(func(t *testing.T, raw, turn string) {
		path := "/twilio/gather?turn=" + url.QueryEscape(turn)
		req, _ := http.NewRequest(http.MethodPost, fx.base+path, bytes.NewBufferString(raw))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if v, err := url.ParseQuery(raw); err == nil {
			req.Header.Set("X-Twilio-Signature", sign(testToken, fx.base+path, v))
		}
		rec := &recorder{h: http.Header{}}
		h.ServeHTTP(rec, req)
		switch rec.code {
		case 200, 400, 403, 413:
		default:
			t.Fatalf("status %d", rec.code)
		}
	})
}

type recorder struct {
	h    http.Header
	code int
	b    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.b.Write(p)
}
func (r *recorder) WriteHeader(c int) { r.code = c }

// Keypad 2 on the greeting switches the Gather and Say language to Spanish.
func TestWebhookSpanish(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	sid := "CA00000000000000000000000000000005"
	body(t, f.post("/twilio/voice", callForm(sid), nil))
	doc := parseTwiML(t, f.post("/twilio/gather?turn=0", callForm(sid, "Digits", "2"), nil))
	g := doc.Verbs[0]
	if g.XMLName.Local != "Gather" || g.Attr("language") != "es-US" || g.Inner[0].Attr("language") != "es-US" ||
		!strings.Contains(g.Inner[0].Text, "nombre y apellido") {
		t.Errorf("Spanish gather: %+v", g)
	}
}
