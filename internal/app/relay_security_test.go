package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/ivr/twiliotest"
)

var (
	asksOTP  = regexp.MustCompile(`(?i)texted a code`)
	transfer = regexp.MustCompile(`(?i)connect you`)
	holdWord = regexp.MustCompile(`(?i)^(one moment|still checking|almost there|thanks for waiting)`)
)

// kbaMaria answers Maria Garcia's KBA over the webhook front end and returns
// what the service said after the last answer.
func kbaMaria(t *testing.T, p *phone) turn {
	t.Helper()
	tr := p.listen(p.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}}))
	tr = p.say(tr, "Maria Garcia")
	tr = p.say(tr, "March third nineteen eighty")
	for i := 0; i < 2 && !asksSSN.MatchString(tr.said); i++ {
		tr = p.say(tr, "yes") // a read-back for confirmation
	}
	if !asksSSN.MatchString(tr.said) {
		t.Fatalf("expected the SSN-4 question, heard %q", tr.said)
	}
	return p.press(tr, "4567")
}

// A From that is not an E.164 number (a SIP or Client leg, anonymous) is no
// caller_phone: KBA goes on and the AS's risk rule asks for the code, where
// it used to send the caller to a person as backend_down.
func TestNonE164FromWebhook(t *testing.T) {
	st, _ := startStack(t, app.Config{})
	for i, from := range []string{"sip:alice@example.com", "anonymous"} {
		p := &phone{t: t, st: st, callSid: "CAsip0000000000000000000000000" + string(rune('a'+i)), from: from, verstat: "TN-Validation-Passed-A"}
		tr := kbaMaria(t, p)
		if tr.dial || transfer.MatchString(tr.said) || !asksOTP.MatchString(tr.said) {
			t.Errorf("From %q: after KBA heard %q (dial=%v), want the one-time code", from, tr.said, tr.dial)
		}
	}
}

// relayPhone is a caller on the ConversationRelay front end: the signed
// /twilio/voice, then the socket with the TwiML's <Parameter>s in setup.
type relayPhone struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialRelayCall(t *testing.T, st *app.Stack, sid, from string) *relayPhone {
	t.Helper()
	p := &phone{t: t, st: st, callSid: sid, from: from}
	doc := p.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}})
	var wsURL string
	params := map[string]string{}
	var walk func([]node)
	walk = func(ns []node) {
		for _, n := range ns {
			switch n.XMLName.Local {
			case "ConversationRelay":
				wsURL = n.Attr("url")
			case "Parameter":
				params[n.Attr("name")] = n.Attr("value")
			}
			walk(n.Inner)
		}
	}
	walk(doc.Verbs)
	if wsURL == "" || len(params) == 0 {
		t.Fatalf("no ConversationRelay with parameters in %+v", doc)
	}
	phone := twiliotest.Phone{PublicURL: st.PublicURL, AuthToken: st.TwilioAuthToken}
	ws, resp, err := phone.DialRelay(context.Background(), wsURL)
	if err != nil {
		t.Fatalf("dial %s: %v %v", wsURL, err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	r := &relayPhone{t: t, ws: ws}
	r.send(map[string]any{"type": "setup", "sessionId": "VX" + sid, "callSid": sid, "from": "+15555550101",
		"to": "+15555550000", "callType": "PSTN", "direction": "inbound", "customParameters": params})
	return r
}

func (r *relayPhone) send(m any) {
	r.t.Helper()
	if err := r.ws.WriteJSON(m); err != nil {
		r.t.Fatal(err)
	}
}

func (r *relayPhone) say(s string) {
	r.send(map[string]any{"type": "prompt", "voicePrompt": s, "lang": "en-US", "last": true})
}

func (r *relayPhone) press(keys string) {
	for _, k := range keys {
		r.send(map[string]any{"type": "dtmf", "digit": string(k)})
	}
}

// listen returns the next utterance that is not a hold phrase.
func (r *relayPhone) listen() string {
	r.t.Helper()
	var b strings.Builder
	for {
		r.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		var m struct {
			Type  string `json:"type"`
			Token string `json:"token"`
			Last  bool   `json:"last"`
		}
		if err := r.ws.ReadJSON(&m); err != nil {
			r.t.Fatalf("relay read: %v", err)
		}
		if m.Type != "text" {
			return "<" + m.Type + ">"
		}
		b.WriteString(m.Token)
		if !m.Last {
			continue
		}
		if s := b.String(); !holdWord.MatchString(s) {
			return s
		}
		b.Reset()
	}
}

// The same over the relay, where the number used to come from setup.
func TestNonE164FromRelay(t *testing.T) {
	st, _ := startStack(t, app.Config{Frontend: "relay"})
	r := dialRelayCall(t, st, "CAclient000000000000000000000001", "client:bob")
	if said := r.listen(); !asksName.MatchString(said) {
		t.Fatalf("greeting %q", said)
	}
	r.say("Maria Garcia")
	r.listen()
	r.say("March third nineteen eighty")
	said := r.listen()
	for i := 0; i < 2 && !asksSSN.MatchString(said); i++ {
		r.say("yes")
		said = r.listen()
	}
	r.press("4567")
	if said = r.listen(); transfer.MatchString(said) || !asksOTP.MatchString(said) {
		t.Fatalf("after KBA heard %q, want the one-time code", said)
	}
}

func registerSubject(t *testing.T, st *app.Stack, callSid, user, pass, token string) int {
	t.Helper()
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

// A host cannot register a token for a call that already exists: Maria's
// verified call keeps Maria's tokens. The voice client, which the AS
// authenticates like any client, is not a host.
func TestSubjectTokenCannotSwapALiveCaller(t *testing.T) {
	st, _ := startStack(t, app.Config{})
	ctx := context.Background()
	sid := "CAswap00000000000000000000000001"
	p := &phone{t: t, st: st, callSid: sid, from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	if tr := kbaMaria(t, p); tr.action == "" {
		t.Fatalf("Maria not verified: %q", tr.said)
	}
	before, err := st.Store().GetTokens(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	james, err := st.MintUpstreamToken("pt-0002", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code := registerSubject(t, st, sid, st.HostClientID, st.HostClientSecret, james); code != http.StatusConflict {
		t.Errorf("registration onto a verified call: %d, want 409", code)
	}
	if after, err := st.Store().GetTokens(ctx, sid); err != nil || after.AccessToken != before.AccessToken {
		t.Fatalf("the verified call's tokens changed (err %v)", err)
	}

	fresh := "CAswap00000000000000000000000002"
	if code := registerSubject(t, st, fresh, st.ClientID, st.ClientSecret, james); code != http.StatusUnauthorized {
		t.Errorf("the voice client registered a subject token: %d, want 401", code)
	}
	if code := registerSubject(t, st, fresh, st.HostClientID, st.HostClientSecret, james); code/100 != 2 {
		t.Fatalf("the host after a refused client: %d", code)
	}
	if code := registerSubject(t, st, fresh, st.HostClientID, st.HostClientSecret, james); code != http.StatusConflict {
		t.Errorf("second registration for one call: %d, want 409", code)
	}
}

// The voice client can never be configured as a host.
func TestVoiceClientNeverAHost(t *testing.T) {
	_, err := app.Start(context.Background(), app.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0",
		MCPAddr: "127.0.0.1:0", LogWriter: io.Discard, HostClients: []string{"partner", "voiceauth-ivr"}})
	if err == nil || !strings.Contains(err.Error(), "voice client") {
		t.Fatalf("voice client accepted as a host: %v", err)
	}
}
