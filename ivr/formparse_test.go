package ivr

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/ivr/twiliotest"
)

// bothWays parses one request with readForm and a copy with ParseForm.
func bothWays(t testing.TB, method, ct, rawQuery, body string) (got, want url.Values, gotErr, wantErr error, a, b *http.Request) {
	mk := func() *http.Request {
		r := httptest.NewRequest(method, "/twilio/gather", strings.NewReader(body))
		r.URL.RawQuery = rawQuery
		if ct != "-" {
			r.Header.Set("Content-Type", ct)
		}
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, maxBody)
		return r
	}
	a, b = mk(), mk()
	got, gotErr = readForm(a)
	if wantErr = b.ParseForm(); wantErr == nil {
		want = b.PostForm
	}
	return
}

func sameForm(t testing.TB, method, ct, rawQuery, body string) {
	t.Helper()
	got, want, gotErr, wantErr, a, b := bothWays(t, method, ct, rawQuery, body)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%s %q ?%q body %.80q: readForm error %v, ParseForm error %v", method, ct, rawQuery, body, gotErr, wantErr)
	}
	var gotBig, wantBig *http.MaxBytesError
	if errors.As(gotErr, &gotBig) != errors.As(wantErr, &wantBig) {
		t.Fatalf("body %.80q: readForm error %v, ParseForm error %v (too large is a 413)", body, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %q ?%q body %.80q:\nreadForm  %q\nParseForm %q", method, ct, rawQuery, body, got, want)
	}
	if gotErr != nil {
		return
	}
	// What the handlers and later readers see agrees too.
	for k := range want {
		if a.FormValue(k) != b.FormValue(k) || !reflect.DeepEqual(a.PostForm[k], b.PostForm[k]) {
			t.Fatalf("key %q: FormValue %q / %q", k, a.FormValue(k), b.FormValue(k))
		}
	}
	if a.FormValue("turn") != b.FormValue("turn") || !reflect.DeepEqual(a.Form, b.Form) {
		t.Fatalf("?%q: Form %q, want %q", rawQuery, a.Form, b.Form)
	}
}

const formCT = "application/x-www-form-urlencoded"

// readForm gives exactly what ParseForm gives: the same form, the same
// refusals (bad escapes, ';', a malformed query string, too large a body),
// for Twilio's content type and for every other (which it hands over).
func TestReadFormMatchesParseForm(t *testing.T) {
	bodies := []string{
		"", "&", "&&=&", "=", "a", "a=", "=b", "CallSid=CA1&From=%2B15550100&SpeechResult=my+name+is+Ann",
		"Digits=1&Digits=2&Digits=", "a=1&b=2&a=3&c=%41&a=4", "k=%zz", "k=%", "%zz=v", "a=1;b=2", "a=1&b;=2&c=3",
		"x=%E2%82%AC&y=%C3%A9+%2B", "emoji=\U0001F600&nul=%00", strings.Repeat("k=v&", 999) + "k=v",
		strings.Repeat("k=v&", 1000) + "k=v", strings.Repeat("&", 10001), strings.Repeat("a=b&", 12000),
		"big=" + strings.Repeat("x", maxBody), "big=" + strings.Repeat("x", maxBody-4),
	}
	queries := []string{"", "turn=3", "turn=%zz", "turn=1;x=2", "a=1&&b", "turn=3&turn=4"}
	cts := []string{formCT, formCT + "; charset=UTF-8", "APPLICATION/X-WWW-FORM-URLENCODED", "text/plain", "-", "bad/;", "multipart/form-data"}
	for _, body := range bodies {
		for _, q := range queries {
			for _, ct := range cts {
				sameForm(t, http.MethodPost, ct, q, body)
			}
		}
		sameForm(t, http.MethodPut, formCT, "", body)
		sameForm(t, http.MethodGet, formCT, "turn=2", body)
	}
}

// The one form readForm returns is what the signature check and the
// handler both use: a real Twilio-signed request verifies, and one whose
// body was changed after signing does not.
func TestReadFormSignedWebhook(t *testing.T) {
	s := sigServer(testToken)
	u := "https://voice.example/twilio/gather?turn=2"
	form := url.Values{"CallSid": {"CA1"}, "SpeechResult": {"Ann & Bob + 100%"}, "Digits": {"12#"}, "Confidence": {"0.9"}}
	sig := twiliotest.Sign(testToken, u, form)
	for _, tamper := range []bool{false, true} {
		body := form.Encode()
		if tamper {
			body = strings.Replace(body, "Digits=12", "Digits=13", 1)
		}
		r := httptest.NewRequest(http.MethodPost, "/twilio/gather?turn=2", strings.NewReader(body))
		r.Header.Set("Content-Type", formCT)
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, maxBody)
		got, err := readForm(r)
		if err != nil {
			t.Fatal(err)
		}
		if ok := s.signedBy(u, got, sig); ok == tamper {
			t.Errorf("tampered=%v: signedBy %v", tamper, ok)
		}
		if got.Get("SpeechResult") != "Ann & Bob + 100%" {
			t.Errorf("SpeechResult %q", got.Get("SpeechResult"))
		}
	}
}

func FuzzReadFormMatchesParseForm(f *testing.F) {
	f.Add("CallSid=CA1&Digits=1&Digits=2", "turn=1", true)
	f.Add("a=%2B+b&a=&=x", "", true)
	f.Add("a=1;b=2&c=%zz", "t=%", false)
	f.Add("SpeechResult=%E2%82%AC&&", "turn=2", true)
	tokens := []string{"old-token", testToken}
	s := sigServer(tokens...)
	f.Fuzz(func(t *testing.T, body, rawQuery string, twilioCT bool) {
		ct := formCT
		if !twilioCT {
			ct += "; charset=utf-8"
		}
		sameForm(t, http.MethodPost, ct, rawQuery, body)
		got, _, err, _, _, _ := bothWays(t, http.MethodPost, formCT, "", body)
		if err != nil {
			return
		}
		// The signature check over it agrees with twilio-go's validator.
		u := "https://voice.example/twilio/gather"
		for _, sig := range []string{sign(testToken, u, got), "x"} {
			if want := twilioSays(tokens, u, got, sig); s.signedBy(u, got, sig) != want {
				t.Fatalf("body %q sig %q: signedBy disagrees with twilio-go (%v)", body, sig, want)
			}
		}
	})
}

// A webhook's form costs a handful of allocations, not one per key and
// value (ParseForm: about 60 for a Twilio gather).
func TestReadFormAllocations(t *testing.T) {
	form := url.Values{}
	for _, k := range []string{"AccountSid", "ApiVersion", "CallSid", "CallStatus", "Called", "CalledCity", "CalledCountry",
		"CalledState", "CalledZip", "Caller", "CallerCity", "CallerCountry", "CallerState", "CallerZip", "Direction",
		"From", "FromCity", "FromCountry", "FromState", "FromZip", "To", "ToCity", "ToCountry", "ToState", "ToZip"} {
		form.Set(k, "value-of-"+k)
	}
	form.Set("SpeechResult", "my name is Ann Lee")
	body := form.Encode()
	req := func() *http.Request {
		return &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/twilio/gather", RawQuery: "turn=2"},
			Header: http.Header{"Content-Type": {formCT}}, Body: http.MaxBytesReader(nil, nopBody{strings.NewReader(body)}, maxBody)}
	}
	var sink *http.Request
	scaffold := testing.AllocsPerRun(100, func() { sink = req() })
	parse := func(fn func(r *http.Request) error) float64 {
		return testing.AllocsPerRun(100, func() {
			if err := fn(req()); err != nil {
				t.Fatal(err)
			}
		}) - scaffold
	}
	slow := parse(func(r *http.Request) error { return r.ParseForm() })
	fast := parse(func(r *http.Request) error { _, err := readForm(r); return err })
	_ = sink
	// The body string, the map (2–3), the first values, the one unescaped
	// value; under -race the pool drops a quarter of its buffers.
	if fast > 8 {
		t.Errorf("readForm: %.1f allocations per form, want at most 8 (ParseForm: %.1f)", fast, slow)
	}
	t.Logf("allocations per form: readForm %.1f, ParseForm %.1f", fast, slow)
}

type nopBody struct{ *strings.Reader }

func (nopBody) Close() error { return nil }

// queryGet reads one key as url.ParseQuery(raw).Get(key) would.
func TestQueryGetMatchesParseQuery(t *testing.T) {
	for _, raw := range []string{"", "turn=3", "turn=%zz&turn=4", "turn=1;x&turn=2", "tu%72n=5", "turn", "turn=&turn=2",
		"a=1&turn=+7", "turn%=1&turn=8", "&&turn=9&", strings.Repeat("a&", 1000) + "turn=2", strings.Repeat("a&", 10000) + "turn=2"} {
		q, _ := url.ParseQuery(raw)
		if got, want := queryGet(raw, "turn"), q.Get("turn"); got != want {
			t.Errorf("%.40q: queryGet %q, ParseQuery %q", raw, got, want)
		}
	}
}

func FuzzQueryGet(f *testing.F) {
	f.Add("turn=3&x=1", "turn")
	f.Add("a%3Db=c;d&a=b=c", "a")
	f.Fuzz(func(t *testing.T, raw, key string) {
		q, _ := url.ParseQuery(raw)
		if got, want := queryGet(raw, key), q.Get(key); got != want {
			t.Fatalf("%q key %q: queryGet %q, ParseQuery %q", raw, key, got, want)
		}
	})
}
