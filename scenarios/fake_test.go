package scenarios

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/twilio/twilio-go/client"
)

// fakeIVR is a deliberately small voice agent speaking the real wire formats
// (TwiML, ConversationRelay, Twilio signatures validated by twilio-go), so the
// runner can be tested without the embedded stack.
type fakeIVR struct {
	t         testing.TB
	srv       *httptest.Server
	token     string
	relay     bool
	mu        sync.Mutex
	calls     map[string]*fakeCall
	idem      map[string]string
	forbidden int
}

type fakeCall struct {
	step  int
	tries int
	ended bool
}

func newFakeIVR(t testing.TB, relay bool) *fakeIVR {
	f := &fakeIVR{t: t, token: "test-token-123", relay: relay, calls: map[string]*fakeCall{}, idem: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /twilio/voice", f.voice)
	mux.HandleFunc("POST /twilio/gather", f.gather)
	mux.HandleFunc("POST /twilio/status", f.status)
	mux.HandleFunc("POST /twilio/relay/done", f.relayDone)
	mux.HandleFunc("GET /twilio/relay", f.relayWS)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIVR) target() *Target {
	tr := TransportWebhook
	if f.relay {
		tr = TransportRelay
	}
	return &Target{Transport: tr, VoiceURL: f.srv.URL, PublicURL: f.srv.URL, AuthToken: f.token}
}

// valid checks X-Twilio-Signature with twilio-go (an independent implementation).
func (f *fakeIVR) valid(r *http.Request) bool {
	r.ParseForm()
	params := map[string]string{}
	for k, v := range r.PostForm {
		params[k] = v[0]
	}
	v := client.NewRequestValidator(f.token)
	ok := v.Validate(f.srv.URL+r.URL.RequestURI(), params, r.Header.Get("X-Twilio-Signature"))
	if !ok {
		f.mu.Lock()
		f.forbidden++
		f.mu.Unlock()
	}
	return ok
}

// step advances the dialog: greeting → name → DOB → SSN-4 → menu.
func (f *fakeIVR) step(c *fakeCall, input string) (say string, transfer bool) {
	in := strings.ToLower(strings.TrimSpace(input))
	if in == "agent" || in == "0" {
		return "Let me get someone to help you.", true
	}
	if in == "" {
		c.tries++
		if c.tries > 2 {
			return "Sorry, I'll transfer you.", true
		}
		return "Sorry, I didn't catch that. " + prompts[c.step], false
	}
	switch c.step {
	case 0:
		c.step = 1
	case 1:
		c.step = 2
	case 2:
		if in != "4567" {
			return "That didn't match our records.", true
		}
		c.step = 3
	case 3:
		if strings.Contains(in, "appointment") {
			return "Your next appointment is with Dr. Lee in Cardiology.", false
		}
	}
	return prompts[c.step], false
}

var prompts = []string{
	"Please say your full name.",
	"Thanks. What is your date of birth?",
	"And the last four digits of your social security number?",
	"You're verified. You can say appointments or medications.",
}

func (f *fakeIVR) twiml(w http.ResponseWriter, say string, transfer bool) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Response>`)
	if transfer {
		fmt.Fprintf(&b, `<Say>%s</Say><Dial action="/twilio/dial-done?reason=caller_asked"><Number>+15555550100</Number></Dial>`, say)
	} else {
		fmt.Fprintf(&b, `<Gather action="/twilio/gather" input="dtmf speech" actionOnEmptyResult="true"><Say>%s</Say></Gather><Redirect>/twilio/gather</Redirect>`, say)
	}
	b.WriteString(`</Response>`)
	w.Header().Set("Content-Type", "text/xml")
	w.Write([]byte(b.String()))
	return b.String()
}

func (f *fakeIVR) voice(w http.ResponseWriter, r *http.Request) {
	if !f.valid(r) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	sid := r.PostForm.Get("CallSid")
	f.mu.Lock()
	if f.calls[sid] == nil {
		f.calls[sid] = &fakeCall{}
	}
	f.mu.Unlock()
	if f.relay {
		ws := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/twilio/relay"
		fmt.Fprintf(w, `<Response><Connect action="/twilio/relay/done"><ConversationRelay url="%s" dtmfDetection="true"><Parameter name="n" value="x1"/></ConversationRelay></Connect></Response>`, ws)
		return
	}
	f.twiml(w, prompts[0], false)
}

func (f *fakeIVR) gather(w http.ResponseWriter, r *http.Request) {
	if !f.valid(r) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if body, ok := f.idem[r.Header.Get("I-Twilio-Idempotency-Token")]; ok {
		w.Write([]byte(body))
		return
	}
	c := f.calls[r.PostForm.Get("CallSid")]
	if c == nil || c.ended {
		http.Error(w, "no call", http.StatusNotFound)
		return
	}
	in := r.PostForm.Get("SpeechResult")
	if in == "" {
		in = r.PostForm.Get("Digits")
	}
	say, tr := f.step(c, in)
	f.idem[r.Header.Get("I-Twilio-Idempotency-Token")] = f.twiml(w, say, tr)
}

func (f *fakeIVR) status(w http.ResponseWriter, r *http.Request) {
	if !f.valid(r) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	f.mu.Lock()
	if c := f.calls[r.PostForm.Get("CallSid")]; c != nil {
		c.ended = true
	}
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeIVR) relayDone(w http.ResponseWriter, r *http.Request) {
	if !f.valid(r) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	fmt.Fprint(w, `<Response><Say>Connecting you now.</Say><Dial><Number>+15555550100</Number></Dial></Response>`)
}

func (f *fakeIVR) relayWS(w http.ResponseWriter, r *http.Request) {
	ws := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/twilio/relay"
	v := client.NewRequestValidator(f.token)
	if !v.Validate(ws, map[string]string{}, r.Header.Get("X-Twilio-Signature")) {
		f.mu.Lock()
		f.forbidden++
		f.mu.Unlock()
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	up := websocket.Upgrader{}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	c := &fakeCall{}
	say := func(s string) {
		words := strings.SplitAfter(s, " ")
		for i, wd := range words {
			conn.WriteJSON(map[string]any{"type": "text", "token": wd, "last": i == len(words)-1})
		}
	}
	var digits strings.Builder
	bad := 0
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var m struct{ Type, VoicePrompt, Digit string }
		if json.Unmarshal(data, &m) != nil || m.Type == "" {
			bad++
			if bad >= 10 {
				conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1007, "too many malformed messages"), timeNowPlus())
				return
			}
			continue
		}
		bad = 0
		var in string
		switch m.Type {
		case "setup":
			say(prompts[0])
			continue
		case "prompt":
			in = m.VoicePrompt
		case "dtmf":
			if m.Digit != "#" {
				digits.WriteString(m.Digit)
				continue
			}
			in = digits.String()
			digits.Reset()
		default:
			continue
		}
		s, tr := f.step(c, in)
		if tr {
			say(s)
			conn.WriteJSON(map[string]any{"type": "end", "handoffData": `{"reason":"caller_asked"}`})
			continue
		}
		say(s)
	}
}
