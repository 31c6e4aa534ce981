package ivr

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/client"

	"github.com/voiceauth/voiceauth/session"
)

// twilioSays is the reference: twilio-go's RequestValidator over the first
// value of each key, as the webhook handlers used it before signedform.go.
func twilioSays(tokens []string, fullURL string, form url.Values, sig string) bool {
	params := make(map[string]string, len(form))
	for k, v := range form {
		params[k] = v[0]
	}
	for _, t := range tokens {
		rv := client.NewRequestValidator(t)
		if rv.Validate(fullURL, params, sig) {
			return true
		}
	}
	return false
}

func sigServer(tokens ...string) *Server {
	s := &Server{}
	for _, t := range tokens {
		s.sigKeys = append(s.sigKeys, newSigKey(t))
	}
	return s
}

// signAll signs u and form with every value of each key concatenated (what
// a signer that does not take the first value would send).
func signAll(token, u string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(u))
	for _, k := range keys {
		for _, v := range form[k] {
			m.Write([]byte(k + v))
		}
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// The webhook check accepts exactly what twilio-go's RequestValidator
// accepts: default ports added and removed, duplicate keys (first value
// signed), percent-encoding, '+', empty values and keys, rotated tokens.
func TestSignatureMatchesTwilio(t *testing.T) {
	tokens := []string{"old-token", testToken}
	s := sigServer(tokens...)
	bodies := []string{
		"CallSid=CA1&From=%2B15555550101",
		"CallSid=CA1&Digits=1&Digits=2",
		"Digits=2&CallSid=CA1&Digits=1",
		"CallSid=CA1&SpeechResult=maria+garcia",
		"CallSid=CA1&SpeechResult=maria%20garcia&Empty=&=novalue",
		"CallSid=CA1&Caf%C3%A9=cr%C3%A8me&x=%00%ff",
		"",
		"a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15&p=16&q=17&r=18&s=19&t=20&u=21&v=22&w=23&x=24&y=25&z=26",
	}
	urls := []string{
		"https://voice.example/twilio/voice",
		"https://voice.example:443/twilio/voice",
		"https://voice.example:8443/twilio/gather?turn=3",
		"http://127.0.0.1:18080/twilio/gather?turn=0",
		"http://voice.example/twilio/gather?turn=%41&x=a+b",
		"http://voice.example/a%2Fb/twilio/voice",
	}
	accepted := 0
	for _, raw := range bodies {
		form, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range urls {
			parsed, _ := url.Parse(u)
			host := parsed.Hostname()
			variants := []string{u, twilioAddPort(u), twilioRemovePort(u),
				strings.Replace(u, parsed.Host, host+":80", 1), strings.Replace(u, parsed.Host, host+":443", 1)}
			for _, tok := range []string{testToken, "old-token", "stranger"} {
				for _, v := range variants {
					for _, sig := range []string{sign(tok, v, form), signAll(tok, v, form), "", "garbage",
						sign(tok, v, form) + "="} {
						want := twilioSays(tokens, u, form, sig)
						if got := s.signedBy(u, form, sig); got != want {
							t.Fatalf("url %q body %q signed over %q by %q: signedBy %v, twilio-go %v", u, raw, v, tok, got, want)
						}
						if want {
							accepted++
						}
					}
				}
			}
		}
	}
	if accepted == 0 {
		t.Fatal("no signature was accepted: the table tests nothing")
	}
}

// FuzzSignatureMatchesTwilio: any URL, body and signature, the same verdict
// as twilio-go's RequestValidator.
func FuzzSignatureMatchesTwilio(f *testing.F) {
	f.Add("https://voice.example/twilio/voice", "CallSid=CA1&Digits=1&Digits=2", "", true)
	f.Add("http://h:80/twilio/gather?turn=1", "a=%2B+b&a=&=x", "x", true)
	f.Add("https://h:443/x", "SpeechResult=%E2%82%AC", "old-token", false)
	f.Add("http://[::1]:8080/p?q", "k=v", "", true)
	f.Add("::bad url", "k=v", "", true)
	tokens := []string{"old-token", testToken}
	s := sigServer(tokens...)
	f.Fuzz(func(t *testing.T, u, raw, sig string, signIt bool) {
		form, err := url.ParseQuery(raw)
		if err != nil {
			return // ParseForm refuses it before any check
		}
		if signIt {
			sig = sign(testToken, twilioAddPort(u), form)
		}
		want := twilioSays(tokens, u, form, sig)
		if got := s.signedBy(u, form, sig); got != want {
			t.Fatalf("url %q body %q sig %q: signedBy %v, twilio-go %v", u, raw, sig, got, want)
		}
		if got := s.signedBy(u, form, sig); got != want { // now from the URL cache
			t.Fatalf("cached: url %q body %q sig %q: signedBy %v, twilio-go %v", u, raw, sig, got, want)
		}
	})
}

// The URL cache stays bounded whatever request URIs arrive.
func TestSignatureURLCacheBounded(t *testing.T) {
	var c sigURLs
	for i := range 3 * sigURLCacheMax {
		u := "https://h/twilio/gather?turn=" + strings.Repeat("9", i%7) + string(rune('a'+i%26)) + url.QueryEscape(string(rune(i)))
		if got := c.get(u); got != [2]string{twilioAddPort(u), twilioRemovePort(u)} {
			t.Fatalf("%q: %v", u, got)
		}
		if len(c.urls) > sigURLCacheMax {
			t.Fatalf("%d cached URLs", len(c.urls))
		}
	}
}

// A request checked by CheckSigned (admission, in front of the handler) is
// answered on that outcome: the handler does not read and check it again.
func TestCheckSignedOutcomeIsUsed(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	h := f.srv.Handler()
	newReq := func(sid, sig string) *http.Request {
		form := callForm(sid)
		req, _ := http.NewRequest(http.MethodPost, f.base+"/twilio/voice", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if sig == "" {
			sig = sign(testToken, f.base+"/twilio/voice", form)
		}
		req.Header.Set("X-Twilio-Signature", sig)
		return req
	}

	// Valid when checked: a header changed afterwards is not looked at.
	req, form := f.srv.CheckSigned(&recorder{h: http.Header{}}, newReq("CA00000000000000000000000000000071", ""))
	if form == nil || form.Get("CallSid") != "CA00000000000000000000000000000071" {
		t.Fatalf("signed request refused: %v", form)
	}
	req.Header.Set("X-Twilio-Signature", "forged-after-the-check")
	rec := &recorder{h: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.code != http.StatusOK || !strings.Contains(rec.b.String(), "<Gather") {
		t.Fatalf("checked request: %d %s", rec.code, rec.b.String())
	}

	// Refused when checked: it stays refused.
	bad, form := f.srv.CheckSigned(&recorder{h: http.Header{}}, newReq("CA00000000000000000000000000000072", "forged"))
	if form != nil {
		t.Fatal("forged request accepted")
	}
	rec = &recorder{h: http.Header{}}
	h.ServeHTTP(rec, bad)
	if rec.code != http.StatusForbidden {
		t.Fatalf("forged request: %d", rec.code)
	}

	// Without CheckSigned the handler checks by itself.
	forged := newReq("CA00000000000000000000000000000073", "forged")
	rec = &recorder{h: http.Header{}}
	h.ServeHTTP(rec, forged)
	if rec.code != http.StatusForbidden {
		t.Fatalf("unchecked forged request: %d", rec.code)
	}
}

// Log pseudonyms come from pooled keyed states and are exactly
// session.Pseudonym under LogKey, also from many goroutines at once.
func TestPseudoMatchesSessionPseudonym(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	done := make(chan string, 8)
	for i := range 8 {
		go func() {
			v := "CA" + strings.Repeat(string(rune('0'+i)), 32)
			for range 50 {
				if got, want := f.srv.pseudo("call", v), session.Pseudonym([]byte("log-key"), "call", v); got != want {
					done <- got + " != " + want
					return
				}
			}
			done <- ""
		}()
	}
	for range 8 {
		if msg := <-done; msg != "" {
			t.Fatal(msg)
		}
	}
	if f.srv.pseudo("number", "+15555550101") == f.srv.pseudo("call", "+15555550101") {
		t.Fatal("the kind is not part of the pseudonym")
	}
}

// The check assembles the signed text in a pooled buffer: no allocation
// per key and value (there were two dozen per webhook), and a buffer that
// goes back to the pool keeps nothing of the form.
func TestSignedByAllocations(t *testing.T) {
	s := sigServer("old-token", testToken)
	u := "https://voice.example/twilio/gather?turn=2"
	form := url.Values{"SpeechResult": {"canary-answer-1961"}}
	for i := range 20 {
		form.Set(fmt.Sprintf("Key%02d", i), fmt.Sprintf("value %d", i))
	}
	sig := sign(testToken, twilioAddPort(u), form)
	if !s.signedBy(u, form, sig) {
		t.Fatal("a valid signature was refused")
	}
	// Without the buffer it is over 40. (Under -race the pool drops some
	// HMACs, each a few allocations to remake: only counted without it.)
	if allocs := testing.AllocsPerRun(200, func() { s.signedBy(u, form, sig) }); allocs >= 1 && !raceEnabled {
		t.Errorf("%.1f allocations per check, want none", allocs)
	}
	for _, k := range s.sigKeys {
		m := k.pool.Get().(*sigMAC)
		if bytes.Contains(m.buf[:cap(m.buf)], []byte("canary-answer")) {
			t.Errorf("a pooled buffer still holds the form")
		}
	}
}
