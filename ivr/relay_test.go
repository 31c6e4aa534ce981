package ivr

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialRelay opens the relay socket as Twilio would, or with sig when set.
func dialRelay(t testing.TB, f *fixture, sig string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := f.phone().WebsocketURL("/twilio/relay")
	if sig == "" {
		return f.phone().DialRelay(context.Background(), u)
	}
	return websocket.DefaultDialer.Dial(u, http.Header{"X-Twilio-Signature": {sig}})
}

func TestRelayForgedUpgrade(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	for _, sig := range []string{"forged", sign(testToken, f.base+"/twilio/relay", url.Values{}), sign(testToken, "ws"+strings.TrimPrefix(f.base, "http")+"/twilio/relay?x=1", url.Values{})} {
		_, resp, err := dialRelay(t, f, sig)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("sig %q: err=%v resp=%v", sig, err, resp)
		}
	}
}

func readText(t testing.TB, ws *websocket.Conn) string {
	t.Helper()
	var b strings.Builder
	for {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m outMsg
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("read: %v", err)
		}
		if m.Type != "text" {
			return "<" + m.Type + ">"
		}
		b.WriteString(m.Token)
		if m.Last {
			return b.String()
		}
	}
}

// relayNonce is the nonce <Parameter> of a <Connect><ConversationRelay>, or "".
func relayNonce(doc twimlDoc) string {
	for _, v := range doc.Verbs {
		for _, cr := range v.Inner {
			for _, p := range cr.Inner {
				if p.XMLName.Local == "Parameter" && p.Attr("name") == relayNonceParam {
					return p.Attr("value")
				}
			}
		}
	}
	return ""
}

// announce delivers the signed /twilio/voice for sid, as Twilio does before
// it opens the relay socket, and returns the nonce from the TwiML.
func announce(t testing.TB, f *fixture, sid string, extra ...string) string {
	t.Helper()
	doc := parseTwiML(t, f.post("/twilio/voice", callForm(sid, append([]string{"CallStatus", "ringing"}, extra...)...), nil))
	n := relayNonce(doc)
	if n == "" {
		t.Fatalf("no nonce <Parameter> in %+v", doc)
	}
	return n
}

// setupMsg is ConversationRelay's first frame.
func setupMsg(sid, sessionID, nonce string) map[string]any {
	m := map[string]any{"type": "setup", "sessionId": sessionID, "accountSid": "AC0123", "callSid": sid,
		"from": "+15555550101", "to": "+15555550199", "callType": "PSTN", "direction": "inbound"}
	if nonce != "" {
		m["customParameters"] = map[string]string{relayNonceParam: nonce}
	}
	return m
}

func relaySetup(t testing.TB, f *fixture, sid string) *websocket.Conn {
	t.Helper()
	nonce := announce(t, f, sid)
	ws, _, err := dialRelay(t, f, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	ws.WriteJSON(setupMsg(sid, "VX"+sid, nonce))
	if got := readText(t, ws); !strings.Contains(got, "first and last name") {
		t.Fatalf("greeting %q", got)
	}
	return ws
}

func TestRelayMalformedFrames(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	ws := relaySetup(t, f, "CA00000000000000000000000000000010")
	garbage := [][]byte{[]byte("not json"), []byte(`{"type":""}`), []byte(`{"type":"dtmf","digit":"12"}`), []byte(`[1,2]`), []byte(`{"type":"dtmf","digit":"x"}`)}
	sendGarbage := func(n int) {
		for i := 0; i < n; i++ {
			ws.WriteMessage(websocket.TextMessage, garbage[i%len(garbage)])
		}
	}
	// Nine in a row, then a valid message: the counter resets; unknown types are not malformed.
	sendGarbage(9)
	for i := 0; i < 12; i++ {
		ws.WriteJSON(map[string]any{"type": "mystery", "x": i})
	}
	ws.WriteJSON(map[string]any{"type": "dtmf", "digit": "*"})
	if got := readText(t, ws); !strings.Contains(got, "first and last name") {
		t.Fatalf("repeat after garbage: %q", got)
	}
	sendGarbage(9)
	ws.WriteJSON(map[string]any{"type": "info", "name": "clientSpeaking", "value": "on"})
	sendGarbage(10)
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("want close 1007, got %v", err)
	}
}

// A lone 0 ends keypad entry after the inter-digit pause and transfers.
func TestRelayLoneZeroAfterPause(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA00000000000000000000000000000011"
	ws := relaySetup(t, f, sid)
	ws.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "Maria Garcia", "last": true})
	readText(t, ws)
	ws.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "partial", "last": false}) // partials are ignored
	ws.WriteJSON(map[string]any{"type": "dtmf", "digit": "0"})
	if got := readText(t, ws); !strings.Contains(got, "connect you") {
		t.Fatalf("got %q", got)
	}
	if got := readText(t, ws); got != "<end>" {
		t.Fatalf("want end, got %q", got)
	}
	if _, st := f.state(sid); st.Reason != ReasonCallerAsked {
		t.Errorf("reason %q", st.Reason)
	}
}

// Barge-in: queued tokens of the interrupted utterance are dropped; the
// caller's words are then handled as the answer.
func TestRelayBargeIn(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA00000000000000000000000000000012"
	ws := relaySetup(t, f, sid)
	ws.WriteJSON(map[string]any{"type": "interrupt", "utteranceUntilInterrupt": "Thanks for calling", "durationUntilInterruptMs": 900})
	ws.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "Maria Garcia", "last": true})
	if got := readText(t, ws); !strings.Contains(got, "date of birth") {
		t.Fatalf("after barge-in: %q", got)
	}

	// The writer drops what is left of a cancelled utterance.
	c := &relayCall{out: make(chan relayOut, 8), done: make(chan struct{})}
	c.utterance.Store(7)
	c.cancelled.Store(7)
	c.out <- relayOut{Type: "text", Token: "dropped", utterance: 7}
	c.out <- relayOut{Type: "text", Token: "kept", Last: true, utterance: 8}
	var sent []string
	for len(c.out) > 0 {
		m := <-c.out
		if c.dropped(m) {
			continue
		}
		sent = append(sent, m.Token)
	}
	if strings.Join(sent, ",") != "kept" {
		t.Errorf("sent %v", sent)
	}
}

func FuzzDecodeRelay(f *testing.F) {
	for _, s := range []string{`{"type":"setup","callSid":"CA1"}`, `{"type":"prompt","voicePrompt":"hi","last":true}`,
		`{"type":"dtmf","digit":"5"}`, `{"type":"interrupt","utteranceUntilInterrupt":"x","durationUntilInterruptMs":5}`,
		`{"type":"info","name":"tokensPlayed","value":"x"}`, `{"type":"error","description":"bad"}`, `{`, `null`, `{"type":1}`,
		`{"type":"setup","callSid":"CA1","sessionId":"VX1","customParameters":{"voiceauth_nonce":"n"}}`,
		`{"type":"setup","callSid":"CA1","customParameters":{"voiceauth_nonce":1}}`, `{"type":"setup","callSid":"CA1","customParameters":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeRelay(b)
		if err != nil {
			return
		}
		if m.Type == "" || (m.Type == "dtmf" && len(m.Digit) != 1) || (m.Type == "setup" && m.CallSid == "") {
			t.Fatalf("accepted %q as %+v", b, m)
		}
	})
}

// A session that ends mid-dialog (dropped socket, instance shutdown) is
// reconnected from the stored state with a fresh nonce, twice at most; then a
// person takes over. A replayed callback changes nothing.
func TestRelayDoneReconnects(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA00000000000000000000000000000013"
	ws := relaySetup(t, f, sid)
	ws.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "Maria Garcia", "last": true})
	readText(t, ws)
	ws.Close()
	done := func(session string) twimlDoc {
		return parseTwiML(t, f.post("/twilio/relay/done", callForm(sid, "SessionId", session, "SessionStatus", "failed", "ErrorCode", "64105"), nil))
	}
	// The first session's callback reconnects with a new nonce.
	doc := done("VX" + sid)
	if got := doc.Verbs[0].XMLName.Local; got != "Connect" || relayNonce(doc) == "" {
		t.Fatalf("first callback: %s nonce %q", got, relayNonce(doc))
	}
	// The new session resumes where the caller was.
	ws2, _, err := dialRelay(t, f, "")
	if err != nil {
		t.Fatal(err)
	}
	ws2.WriteJSON(setupMsg(sid, "VX-second", relayNonce(doc)))
	if got := readText(t, ws2); !strings.Contains(got, "date of birth") {
		t.Fatalf("resumed with %q", got)
	}
	// A replay of the first callback is stale: no nonce, no state change.
	_, before := f.state(sid)
	if doc := done("VX" + sid); doc.Verbs[0].XMLName.Local == "Connect" || relayNonce(doc) != "" {
		t.Fatalf("replayed callback reconnected: %+v", doc)
	}
	if _, after := f.state(sid); after.Reconnects != before.Reconnects || after.Relay.Owner != before.Relay.Owner || after.Out.End != "" {
		t.Fatalf("replayed callback changed the call: %+v → %+v", before.Relay, after.Relay)
	}
	ws2.Close()
	// Second session ends: the last reconnect; a session that failed before
	// its setup: a person; then every callback dials a person.
	for i, c := range []struct{ session, want string }{{"VX-second", "Connect"}, {"VX-third", "Dial"}, {"VX-fourth", "Dial"}} {
		if got := done(c.session).Verbs[0].XMLName.Local; got != c.want {
			t.Fatalf("callback %d: %s, want %s", i, got, c.want)
		}
	}
	if _, st := f.state(sid); st.Reason != ReasonBackendDown {
		t.Errorf("reason %q", st.Reason)
	}
	// A callback for a call the caller already left changes nothing and hangs up.
	sid2 := "CA00000000000000000000000000000016"
	ws3 := relaySetup(t, f, sid2)
	ws3.Close()
	doc = parseTwiML(t, f.post("/twilio/relay/done", callForm(sid2, "CallStatus", "completed", "SessionId", "VX"+sid2, "SessionStatus", "ended"), nil))
	if got := doc.Verbs[0].XMLName.Local; got != "Hangup" {
		t.Errorf("after hang-up: %s", got)
	}
	if _, st := f.state(sid2); st.Reconnects != 0 || st.Outcome != "" {
		t.Errorf("state changed: %+v", st)
	}
}

// Shutdown ends open relay sessions with `end` so Twilio reconnects the
// caller elsewhere, and refuses new upgrades.
func TestRelayShutdown(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	ws := relaySetup(t, f, "CA00000000000000000000000000000014")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m outMsg
	if err := ws.ReadJSON(&m); err != nil || m.Type != "end" || !strings.Contains(m.HandoffData, "reconnect") {
		t.Fatalf("got %+v, %v", m, err)
	}
	if _, resp, err := dialRelay(t, f, ""); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("upgrade after shutdown: %v", err)
	}
}

// Choosing Spanish switches Twilio's TTS/STT language before the Spanish prompt.
func TestRelayLanguageSwitch(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	ws := relaySetup(t, f, "CA00000000000000000000000000000015")
	ws.WriteJSON(map[string]any{"type": "dtmf", "digit": "2"})
	ws.WriteJSON(map[string]any{"type": "dtmf", "digit": "#"})
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m relayOut
	if err := ws.ReadJSON(&m); err != nil || m.Type != "language" || m.TTSLanguage != "es-US" || m.STTLanguage != "es-US" {
		t.Fatalf("got %+v, %v", m, err)
	}
	if got := readText(t, ws); !strings.Contains(got, "nombre y apellido") {
		t.Errorf("got %q", got)
	}
}
