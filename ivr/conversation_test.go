package ivr

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voiceauth/voiceauth/ivr/twiliotest"
)

// twimlDoc is a TwiML answer as the caller's phone acts on it (twiliotest).
type (
	twimlDoc  = twiliotest.TwiML
	twimlVerb = twiliotest.Verb
)

func parseTwiML(t testing.TB, resp *http.Response) twimlDoc {
	t.Helper()
	d, err := twiliotest.ReadTwiML(resp)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// reply is what the caller experienced for one turn, front-end independent.
type reply struct {
	text string
	held bool   // a hold phrase came first
	end  string // "", "transfer", "hangup"
}

// step is one caller action in a conversation.
type step struct {
	speech  string
	digits  string // keypad; the relay runner sends one digit per message
	otp     bool   // enter the code from the fake outbox
	silence bool
	hangup  bool // caller hangs up (status callback completed)

	want    []string // substrings of the reply
	notWant []string
	held    bool
	end     string
	before  func(*fixture) // e.g. make the backend slow
	onHold  func(*fixture) // runs when the caller hears the hold phrase (e.g. release the slow backend)
}

type conversation struct {
	name    string
	preauth bool
	steps   []step // steps[0] is the call arriving (no input)
	outcome string
	reason  string
	ended   bool          // EndCall must have been called
	hold    time.Duration // HoldAfter; default 5 s so loaded machines see no spurious holds
	giveUp  time.Duration // GiveUpAfter; default 10 s
}

const maria = "Maria Garcia"

var greeting = step{want: []string{"Para español, oprima dos", "first and last name"}}

var conversations = []conversation{
	{name: "happy path by speech", steps: []step{
		greeting,
		{speech: "My name is Maria Garcia.", want: []string{"date of birth"}},
		{speech: "March third nineteen eighty", want: []string{"Got it, March 3rd, 1980.", "last four of your Social Security number"}},
		{speech: "four five six seven", want: []string{"you're verified", "appointments"}, notWant: []string{"4567"}},
		{speech: "appointments please", want: []string{"You have 2 upcoming appointments.", "The next is on Wednesday, December 2nd at 9:30 AM with Dr. Lee in Cardiology.", "details"}, notWant: []string{"Dr. Patel"}},
		{speech: "details", want: []string{"Dr. Lee", "Then Thursday, December 10th at 2:00 PM with Dr. Patel in Dermatology."}},
		{speech: "goodbye", want: []string{"Goodbye"}, end: endHangup},
	}, outcome: OutcomeAuthenticated, ended: true},
	{name: "happy path by keypad", steps: []step{
		greeting,
		{speech: "maria garcia", want: []string{"date of birth"}},
		{digits: "03031980", want: []string{"last four of your Social Security number"}},
		{digits: "4567", want: []string{"you're verified"}},
		{digits: "1", want: []string{"2 upcoming appointments"}},
	}, outcome: OutcomeAuthenticated},
	{name: "mixed with re-prompts and repeat", steps: []step{
		greeting,
		{silence: true, want: []string{"didn't hear anything", "first and last name"}},
		{speech: "Maria Garcia", want: []string{"date of birth"}},
		{speech: "March third", want: []string{"I need the month, day, and year.", "date of birth"}},
		{digits: "*", want: []string{"date of birth"}, notWant: []string{"I need"}},
		{speech: "3/3/80", want: []string{"last four of your Social Security number"}},
		{speech: "forty five sixty seven", want: []string{"you're verified"}},
	}, outcome: OutcomeAuthenticated},
	{name: "Spanish by keypad two", steps: []step{
		greeting,
		{digits: "2", want: []string{"Diga su nombre y apellido"}, notWant: []string{"oprima dos", "English"}},
		{speech: "Maria Garcia", want: []string{"fecha de nacimiento"}},
		{speech: "tres de marzo de mil novecientos ochenta", want: []string{"Entendido, 3 de marzo de 1980.", "cuatro dígitos"}},
		{speech: "cuatro cinco seis siete", want: []string{"verificada", "1 para citas"}},
		{speech: "citas", want: []string{"Tiene 2 citas próximas.", "La próxima es el miércoles 2 de diciembre a las 9:30 con Dr. Lee en Cardiología."}, notWant: []string{"09:30", "Cardiology"}},
		{speech: "medicamentos", want: []string{"código"}},
		{otp: true, want: []string{"Tiene 3 medicamentos registrados: Lisinopril, Metformin y Atorvastatin.", "detalles"}, notWant: []string{"verificada"}},
		{speech: "detalles", want: []string{"Lisinopril, 10 mg una vez al día.", "Atorvastatin, 20 mg al acostarse.", "Metformin, 500 mg dos veces al día."}, notWant: []string{"daily", "bedtime"}},
	}, outcome: OutcomeAuthenticated},
	{name: "transfer on request", steps: []step{
		greeting,
		{speech: "Maria Garcia", want: []string{"date of birth"}},
		{speech: "representative", want: []string{"connect you with someone"}, end: endTransfer},
	}, outcome: OutcomeTransferred, reason: ReasonCallerAsked, ended: true},
	{name: "lone keypad zero transfers", steps: []step{
		greeting,
		{digits: "0", want: []string{"connect you"}, end: endTransfer},
	}, outcome: OutcomeTransferred, reason: ReasonCallerAsked, ended: true},
	{name: "zero inside a date is a digit", steps: []step{
		greeting,
		{speech: "James O'Brien", want: []string{"date of birth"}},
		{digits: "11301955", want: []string{"last four"}},
		{digits: "0912", want: []string{"verified"}},
	}, outcome: OutcomeAuthenticated},
	{name: "wrong answers then transfer", steps: []step{
		greeting,
		{speech: maria, want: []string{"date of birth"}},
		{speech: "March 3 1980", want: []string{"last four"}},
		{speech: "1 2 3 4", want: []string{"wasn't able to verify those details", "first and last name"}, notWant: []string{"date", "Social"}},
		{speech: maria, want: []string{"date of birth"}},
		{digits: "03031980", want: []string{"last four"}},
		{digits: "9999", want: []string{"connect you"}, end: endTransfer},
	}, outcome: OutcomeTransferred, reason: ReasonKBAFailed, ended: true},
	{name: "no input three times transfers", steps: []step{
		greeting,
		{silence: true, want: []string{"didn't hear"}},
		{silence: true, want: []string{"didn't hear"}},
		{silence: true, want: []string{"connect you"}, end: endTransfer},
	}, outcome: OutcomeTransferred, reason: ReasonNoInput, ended: true},
	{name: "no match three times transfers", steps: []step{
		greeting,
		{speech: maria},
		{speech: "purple", want: []string{"date of birth"}},
		{speech: "banana", want: []string{"date of birth"}},
		{speech: "elephant", end: endTransfer},
	}, outcome: OutcomeTransferred, reason: ReasonNoMatch, ended: true},
	{name: "OTP step-up then refill", steps: []step{
		greeting,
		{speech: maria},
		{speech: "March 3rd, 1980"},
		{speech: "4567", want: []string{"verified"}},
		{speech: "refill", want: []string{"one more check", "texted a code", "say \"agent\""}, notWant: []string{"If the details match"}},
		{otp: true, want: []string{"refill of Lisinopril"}, notWant: []string{"Atorvastatin", "verified"}},
		{speech: "yes", want: []string{"Your refill of Lisinopril has been requested. It should be ready on November 27th, 2026."}},
		{speech: "medications", want: []string{"You have 3 medications on file: Lisinopril, Metformin and Atorvastatin.", "details"}, notWant: []string{"10 mg"}},
		{speech: "tell me the doses", want: []string{"Lisinopril, 10 mg once daily.", "Metformin, 500 mg twice daily."}},
	}, outcome: OutcomeAuthenticated},
	{name: "OTP resend once", steps: []step{
		greeting,
		{speech: maria}, {speech: "March 3rd, 1980"}, {speech: "4567"},
		{speech: "medications", want: []string{"texted a code"}},
		{speech: "I didn't get it", want: []string{"we've sent a new code"}},
		{otp: true, want: []string{"3 medications"}},
	}, outcome: OutcomeAuthenticated},
	{name: "Robert Brown step-up ends in a transfer", steps: []step{
		greeting,
		{speech: "Robert Brown"}, {speech: "February 29th 1948"}, {speech: "5050", want: []string{"verified"}},
		{speech: "medications", want: []string{"connect you"}, notWant: []string{"code"}, end: endTransfer},
	}, outcome: OutcomeAuthenticated, ended: true},
	{name: "backend slow then success", steps: []step{
		greeting,
		{speech: maria}, {speech: "March 3rd, 1980"},
		{speech: "4567", held: true, want: []string{"you're verified"},
			before: func(f *fixture) { f.be.setMode("slow") },
			onHold: func(f *fixture) {
				f.be.setMode("")
				close(f.be.release)
			}},
	}, outcome: OutcomeAuthenticated, hold: 20 * time.Millisecond},
	{name: "backend never answers", hold: 20 * time.Millisecond, giveUp: 300 * time.Millisecond, steps: []step{
		greeting,
		{speech: maria}, {speech: "March 3rd, 1980"},
		{speech: "4567", held: true, want: []string{"something went wrong", "connect you"}, end: endTransfer,
			before: func(f *fixture) { f.be.setMode("slow") }},
	}, outcome: OutcomeTransferred, reason: ReasonBackendDown, ended: true},
	{name: "backend down transfers", steps: []step{
		greeting,
		{speech: maria}, {speech: "March 3rd, 1980"},
		{speech: "4567", want: []string{"something went wrong", "connect you"}, end: endTransfer,
			before: func(f *fixture) { f.be.setMode("down") }},
	}, outcome: OutcomeTransferred, reason: ReasonBackendDown, ended: true},
	{name: "MCP identity failure transfers", steps: []step{
		greeting,
		{speech: maria}, {speech: "March 3rd, 1980"}, {speech: "4567"},
		{speech: "appointments", end: endTransfer, before: func(f *fixture) { f.be.setMode("identity") }},
	}, outcome: OutcomeAuthenticated, ended: true},
	{name: "hang-up mid-flow", steps: []step{
		greeting,
		{speech: maria, want: []string{"date of birth"}},
		{hangup: true},
	}, outcome: OutcomeHungUp, ended: true},
	{name: "preauthorized caller skips KBA", preauth: true, steps: []step{
		{want: []string{"already verified", "appointments"}, notWant: []string{"name"}},
		{speech: "appointments", want: []string{"2 upcoming appointments"}},
	}, outcome: OutcomeAuthenticated},
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("condition never met")
}

// runner drives one call through a front end.
type runner interface {
	start(sid string) reply
	do(s step) reply
	close()
}

func TestConversations(t *testing.T) {
	for _, fe := range []string{FrontendGather, FrontendRelay} {
		for i, conv := range conversations {
			t.Run(fe+"/"+conv.name, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, fe, func(c *Config) {
					c.HoldAfter, c.GiveUpAfter = 5*time.Second, 10*time.Second
					if conv.hold > 0 {
						c.HoldAfter = conv.hold
					}
					if conv.giveUp > 0 {
						c.GiveUpAfter = conv.giveUp
					}
				})
				sid := fmt.Sprintf("CA%032x", i+1)
				f.currentSid = sid
				if conv.preauth {
					f.be.preauth[sid] = true
				}
				var r runner
				if fe == FrontendGather {
					r = &webhookRunner{f: f}
				} else {
					r = &relayRunner{f: f}
				}
				defer r.close()
				for n, s := range conv.steps {
					if s.before != nil {
						s.before(f)
					}
					if s.otp {
						s.digits = f.be.code(sid)
						if s.digits == "" {
							t.Fatal("no code in the outbox")
						}
					}
					f.onHold = s.onHold
					var got reply
					if n == 0 {
						got = r.start(sid)
					} else {
						got = r.do(s)
					}
					if s.hangup {
						continue
					}
					for _, w := range s.want {
						if !strings.Contains(got.text, w) {
							t.Errorf("step %d: reply %q lacks %q", n, got.text, w)
						}
					}
					for _, w := range s.notWant {
						if strings.Contains(got.text, w) {
							t.Errorf("step %d: reply %q contains %q", n, got.text, w)
						}
					}
					if got.held != s.held {
						t.Errorf("step %d: held = %v, want %v (%q)", n, got.held, s.held, got.text)
					}
					if got.end != s.end {
						t.Errorf("step %d: end = %q, want %q (%q)", n, got.end, s.end, got.text)
					}
				}
				if conv.ended {
					f.waitEnded(sid)
				}
				_, st := f.state(sid)
				if st.Outcome != conv.outcome || st.Reason != conv.reason {
					t.Errorf("outcome %q/%q, want %q/%q", st.Outcome, st.Reason, conv.outcome, conv.reason)
				}
				if st.Answers != (Answers{}) && st.Phase != phaseBirthdate && st.Phase != phaseSSN4 {
					t.Errorf("answers kept after %s", st.Phase)
				}
			})
		}
	}
}

// webhookRunner plays Twilio's <Gather> loop over signed HTTP.
type webhookRunner struct {
	f      *fixture
	sid    string
	action string
	n      int
}

func (w *webhookRunner) close() {}

func (w *webhookRunner) start(sid string) reply {
	w.sid = sid
	return w.follow(w.f.post("/twilio/voice", callForm(sid, "CallStatus", "ringing"), nil))
}

func (w *webhookRunner) do(s step) reply {
	t := w.f.t
	if s.hangup {
		resp := w.f.post("/twilio/status", callForm(w.sid, "CallStatus", "completed", "CallDuration", "12"), nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status callback: %d", resp.StatusCode)
		}
		return reply{}
	}
	if w.action == "" {
		t.Fatal("no Gather to answer")
	}
	w.n++
	form := callForm(w.sid)
	switch {
	case s.digits != "":
		form.Set("Digits", s.digits)
		form.Set("FinishedOnKey", "")
	case s.speech != "":
		form.Set("SpeechResult", s.speech)
		form.Set("Confidence", "0.91")
	}
	return w.follow(w.f.post(w.action, form, map[string]string{"I-Twilio-Idempotency-Token": fmt.Sprintf("idem-%s-%d", w.sid, w.n)}))
}

// follow reads a TwiML answer, following hold <Redirect>s to the continuation.
func (w *webhookRunner) follow(resp *http.Response) reply {
	t := w.f.t
	var r reply
	for hops := 0; ; hops++ {
		doc := parseTwiML(t, resp)
		var says []string
		redirect := ""
		w.action = ""
		for i, v := range doc.Verbs {
			switch v.XMLName.Local {
			case "Say":
				says = append(says, v.Text)
			case "Gather":
				w.action = v.Attr("action")
				if v.Attr("input") != "dtmf speech" || v.Attr("actionOnEmptyResult") != "true" || v.Attr("speechTimeout") != "auto" {
					t.Errorf("Gather attributes: %v", v.Attrs)
				}
				for _, in := range v.Inner {
					if in.XMLName.Local == "Say" {
						says = append(says, in.Text)
					}
				}
				if i+1 >= len(doc.Verbs) || doc.Verbs[i+1].XMLName.Local != "Redirect" {
					t.Errorf("Gather not followed by Redirect")
				}
			case "Redirect":
				redirect = v.Text
			case "Dial":
				r.end = endTransfer
				if strings.TrimSpace(v.Text) != "+15555550100" {
					t.Errorf("Dial %q", v.Text)
				}
			case "Hangup":
				r.end = endHangup
			}
		}
		if strings.HasPrefix(redirect, "/twilio/continue") && w.action == "" {
			if !r.held {
				w.f.held()
			}
			r.held = true
			if hops > 20 {
				t.Fatal("endless hold")
			}
			resp = w.f.post(redirect, callForm(w.sid), nil)
			continue
		}
		text := strings.Join(says, " ")
		if r.held {
			text = strings.TrimSpace(strings.TrimPrefix(text, holdEN))
		}
		r.text = text
		return r
	}
}

const holdEN = "Thanks for waiting. I'm still checking."

// relayRunner plays ConversationRelay over a real signed websocket.
type relayRunner struct {
	f   *fixture
	sid string
	ws  *websocket.Conn
}

func (w *relayRunner) close() {
	if w.ws != nil {
		w.ws.Close()
	}
}

func (w *relayRunner) start(sid string) reply {
	t := w.f.t
	w.sid = sid
	doc := parseTwiML(t, w.f.post("/twilio/voice", callForm(sid, "CallStatus", "ringing"), nil))
	if len(doc.Verbs) != 1 || doc.Verbs[0].XMLName.Local != "Connect" || doc.Verbs[0].Attr("action") != "/twilio/relay/done" {
		t.Fatalf("voice TwiML %+v", doc)
	}
	cr := doc.Verbs[0].Inner[0]
	wsURL := cr.Attr("url")
	if want := "ws" + strings.TrimPrefix(w.f.base, "http") + "/twilio/relay"; wsURL != want || cr.Attr("dtmfDetection") != "true" {
		t.Fatalf("ConversationRelay url=%q dtmf=%q", wsURL, cr.Attr("dtmfDetection"))
	}
	ws, resp, err := w.f.phone().DialRelay(context.Background(), wsURL)
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	w.ws = ws
	w.send(map[string]any{"type": "setup", "sessionId": "VX1", "accountSid": "AC0123", "callSid": sid,
		"from": "+15555550101", "to": "+15555550199", "callType": "PSTN", "direction": "inbound",
		"customParameters": map[string]string{relayNonceParam: relayNonce(doc)}})
	return w.read()
}

func (w *relayRunner) send(m any) {
	if err := w.ws.WriteJSON(m); err != nil {
		w.f.t.Fatal(err)
	}
}

func (w *relayRunner) do(s step) reply {
	switch {
	case s.hangup:
		w.ws.Close()
		resp := w.f.post("/twilio/status", callForm(w.sid, "CallStatus", "completed"), nil)
		resp.Body.Close()
		return reply{}
	case s.digits != "":
		for _, d := range s.digits {
			w.send(map[string]any{"type": "dtmf", "digit": string(d)})
		}
		if len(s.digits) > 1 && len(s.digits) != 4 && len(s.digits) != 6 {
			w.send(map[string]any{"type": "dtmf", "digit": "#"})
		}
	case s.silence:
		// ConversationRelay has no silence event; an empty final prompt stands in.
		w.send(map[string]any{"type": "prompt", "voicePrompt": "", "lang": "en-US", "last": true})
	default:
		w.send(map[string]any{"type": "prompt", "voicePrompt": s.speech, "lang": "en-US", "last": true})
	}
	return w.read()
}

type outMsg struct {
	Type        string `json:"type"`
	Token       string `json:"token"`
	Last        bool   `json:"last"`
	HandoffData string `json:"handoffData"`
}

// read collects utterances until a non-hold one; then an `end` if one follows.
func (w *relayRunner) read() reply {
	t := w.f.t
	var r reply
	var b strings.Builder
	for {
		w.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m outMsg
		if err := w.ws.ReadJSON(&m); err != nil {
			t.Fatalf("read: %v", err)
		}
		switch m.Type {
		case "text":
			b.WriteString(m.Token)
			if !m.Last {
				continue
			}
			text := b.String()
			b.Reset()
			if text == holdEN || strings.HasPrefix(text, "Almost there") {
				if !r.held {
					w.f.held()
				}
				r.held = true
				continue
			}
			r.text = text
			_, st := w.f.state(w.sid)
			if st.Out.End == "" {
				return r
			}
		case "end":
			var hd map[string]string
			if err := json.Unmarshal([]byte(m.HandoffData), &hd); err != nil || hd["reasonCode"] == "" || len(hd) != 1 {
				t.Errorf("handoffData %q", m.HandoffData)
			}
			doc := parseTwiML(t, w.f.post("/twilio/relay/done", callForm(w.sid, "SessionId", "VX1", "SessionStatus", "ended", "HandoffData", m.HandoffData), nil))
			switch doc.Verbs[0].XMLName.Local {
			case "Dial":
				r.end = endTransfer
			case "Hangup":
				r.end = endHangup
			}
			return r
		}
	}
}

var _ = context.Background
