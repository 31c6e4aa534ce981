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

func dialRelay(t testing.TB, f *fixture, sig string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(f.base, "http") + "/twilio/relay"
	if sig == "" {
		sig = sign(testToken, u, url.Values{})
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

func relaySetup(t testing.TB, f *fixture, sid string) *websocket.Conn {
	t.Helper()
	ws, _, err := dialRelay(t, f, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	ws.WriteJSON(map[string]any{"type": "setup", "callSid": sid, "from": "+15555550101", "to": "+15555550199"})
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
		`{"type":"info","name":"tokensPlayed","value":"x"}`, `{"type":"error","description":"bad"}`, `{`, `null`, `{"type":1}`} {
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
// reconnected from the stored state, twice at most; then a person takes over.
func TestRelayDoneReconnects(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA00000000000000000000000000000013"
	ws := relaySetup(t, f, sid)
	ws.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "Maria Garcia", "last": true})
	readText(t, ws)
	ws.Close()
	for i, want := range []string{"Connect", "Connect", "Dial", "Dial"} {
		doc := parseTwiML(t, f.post("/twilio/relay/done", callForm(sid, "SessionStatus", "failed", "ErrorCode", "64105"), nil))
		if got := doc.Verbs[0].XMLName.Local; got != want {
			t.Fatalf("callback %d: %s, want %s", i, got, want)
		}
		if i == 0 {
			// The new session resumes where the caller was.
			ws2, _, err := dialRelay(t, f, "")
			if err != nil {
				t.Fatal(err)
			}
			ws2.WriteJSON(map[string]any{"type": "setup", "callSid": sid})
			if got := readText(t, ws2); !strings.Contains(got, "date of birth") {
				t.Fatalf("resumed with %q", got)
			}
			ws2.Close()
		}
	}
	if _, st := f.state(sid); st.Reason != ReasonBackendDown {
		t.Errorf("reason %q", st.Reason)
	}
	// A callback for a call the caller already left changes nothing and hangs up.
	sid2 := "CA00000000000000000000000000000016"
	ws2 := relaySetup(t, f, sid2)
	ws2.Close()
	doc := parseTwiML(t, f.post("/twilio/relay/done", callForm(sid2, "CallStatus", "completed", "SessionStatus", "ended"), nil))
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
