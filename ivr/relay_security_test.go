package ivr

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voiceauth/voiceauth/session"
)

// expectRefused reads until the server closes ws and fails if anything was
// said first or the close is not a policy violation (1008).
func expectRefused(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	for {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
				t.Fatalf("want close 1008, got %v", err)
			}
			return
		}
		t.Fatalf("a refused socket heard %s", b)
	}
}

// attacker opens a relay socket with the one handshake signature anyone who
// saw a single handshake has (it covers only the fixed URL) and sends frames.
func attacker(t *testing.T, f *fixture, frames ...map[string]any) *websocket.Conn {
	t.Helper()
	ws, resp, err := dialRelay(t, f, "")
	if err != nil {
		t.Fatalf("replayed handshake: %v %v", err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	for _, m := range frames {
		ws.WriteJSON(m) // may fail once the server has closed: that is the point
	}
	return ws
}

func press(ws *websocket.Conn, digits string) {
	for _, d := range digits {
		ws.WriteJSON(map[string]any{"type": "dtmf", "digit": string(d)})
	}
}

func auditTypes(t *testing.T, f *fixture, typ string) []session.AuditEvent {
	t.Helper()
	evs, err := f.store.ListAudit(context.Background(), session.AuditFilter{Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// A setup for a CallSid no signed /twilio/voice announced starts nothing.
func TestRelaySetupUnannouncedCall(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA000000000000000000000000000000a1"
	for _, nonce := range []string{"", "guessed-nonce"} {
		ws := attacker(t, f, setupMsg(sid, "VXa1", nonce), map[string]any{"type": "prompt", "voicePrompt": "Maria Garcia", "last": true})
		expectRefused(t, ws)
	}
	if _, err := f.store.GetCall(context.Background(), sid); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a call record exists for an unannounced CallSid: %v", err)
	}
	evs := auditTypes(t, f, AuditRelayRefused)
	if len(evs) != 2 || evs[0].CallRef != f.srv.callRef(sid) || evs[0].Detail["reason"] != refuseUnknownCall {
		t.Fatalf("audit %+v", evs)
	}
}

// Each way a setup's nonce can be wrong is refused; wrong guesses do not
// burn the real nonce, which then works once and only once.
func TestRelaySetupNonce(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	f := newFixture(t, FrontendRelay, func(c *Config) { c.Now = clock })

	sid := "CA000000000000000000000000000000b1"
	nonce := announce(t, f, sid)
	other := announce(t, f, "CA000000000000000000000000000000b2")
	for name, n := range map[string]string{
		"missing":             "",
		"wrong":               nonce[:len(nonce)-2] + "xx",
		"another call's":      other,
		"prefix":              nonce[:10],
		"with trailing bytes": nonce + "=",
	} {
		t.Run(name, func(t *testing.T) { expectRefused(t, attacker(t, f, setupMsg(sid, "VX-"+name, n))) })
	}
	if _, st := f.state(sid); st.Turn != 0 || st.Relay.Owner != "" {
		t.Fatalf("a refused setup changed the call: %+v", st.Relay)
	}

	// The real nonce still works, once.
	ws := attacker(t, f, setupMsg(sid, "VX-real", nonce))
	if got := readText(t, ws); !strings.Contains(got, "first and last name") {
		t.Fatalf("greeting %q", got)
	}
	ws.Close()
	t.Run("reused after its socket closed", func(t *testing.T) {
		expectRefused(t, attacker(t, f, setupMsg(sid, "VX-again", nonce)))
	})

	// The other call's nonce was not burnt by being tried on this call; it
	// expires.
	advance(relayNonceTTL)
	t.Run("expired", func(t *testing.T) {
		expectRefused(t, attacker(t, f, setupMsg("CA000000000000000000000000000000b2", "VX-late", other)))
	})
	reasons := map[string]int{}
	for _, e := range auditTypes(t, f, AuditRelayRefused) {
		reasons[e.Detail["reason"]]++
	}
	if reasons[refuseNonce] != 6 || reasons[refuseExpired] != 1 {
		t.Fatalf("audit reasons %v", reasons)
	}
}

// A repeated /twilio/voice before any socket connected (Twilio retrying a
// lost answer) replaces the nonce: the old one no longer opens the call.
func TestRelayRepeatedVoiceBeforeSetup(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA000000000000000000000000000000b9"
	first := announce(t, f, sid)
	second := announce(t, f, sid)
	if first == second {
		t.Fatal("the same nonce twice")
	}
	expectRefused(t, attacker(t, f, setupMsg(sid, "VX-first", first)))
	ws := attacker(t, f, setupMsg(sid, "VX-second", second))
	if got := readText(t, ws); !strings.Contains(got, "first and last name") {
		t.Fatalf("greeting %q", got)
	}
}

// Someone who replays the signed /twilio/voice before Twilio's socket
// connects gets a nonce that displaces Twilio's; Twilio's setup is refused,
// and its <Connect action> for that session cuts the impostor off and hands
// the caller to a person.
func TestRelayForeignOwnerCutOff(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA000000000000000000000000000000b8"
	twilio := announce(t, f, sid)
	stolen := announce(t, f, sid) // the replay
	thief := attacker(t, f, setupMsg(sid, "VX-thief", stolen))
	readText(t, thief)
	expectRefused(t, attacker(t, f, setupMsg(sid, "VX-twilio", twilio)))
	doc := parseTwiML(t, f.post("/twilio/relay/done", callForm(sid, "SessionId", "VX-twilio", "SessionStatus", "failed"), nil))
	if got := doc.Verbs[0].XMLName.Local; got != "Dial" || relayNonce(doc) != "" {
		t.Fatalf("callback for Twilio's session: %s", got)
	}
	thief.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "Maria Garcia", "last": true})
	expectRefused(t, thief)
	if _, st := f.state(sid); st.Turn != 0 || st.Reason != ReasonBackendDown || st.Relay.Owner != "" {
		t.Fatalf("after the cut-off: turn %d reason %q owner %q", st.Turn, st.Reason, st.Relay.Owner)
	}
}

// A second socket cannot take over a live, verified call: not without a
// nonce, not with the nonce the call already used, not with one from a
// replayed /twilio/voice. It hears nothing and drives nothing; the caller's
// own socket carries on.
func TestRelayTakeoverRefused(t *testing.T) {
	f := newFixture(t, FrontendRelay, func(c *Config) { c.HoldAfter, c.GiveUpAfter = 5*time.Second, 10*time.Second })
	sid := "CA000000000000000000000000000000c1"
	nonce := announce(t, f, sid)
	victim, _, err := dialRelay(t, f, "")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	victim.WriteJSON(setupMsg(sid, "VX-victim", nonce))
	readText(t, victim)
	victim.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "Maria Garcia", "last": true})
	readText(t, victim)
	press(victim, "03031980#")
	readText(t, victim)
	press(victim, "4567")
	if got := readText(t, victim); !strings.Contains(got, "verified") {
		t.Fatalf("victim not verified: %q", got)
	}
	_, before := f.state(sid)

	replayed := relayNonce(parseTwiML(t, f.post("/twilio/voice", callForm(sid, "CallStatus", "ringing"), nil)))
	if replayed != "" {
		t.Fatal("a repeated /twilio/voice issued a second nonce for a live call")
	}
	other := announce(t, f, "CA000000000000000000000000000000c2")
	drive := []map[string]any{{"type": "prompt", "voicePrompt": "appointments", "last": true}, {"type": "dtmf", "digit": "1"}}
	for name, n := range map[string]string{"no nonce": "", "used nonce": nonce, "replayed voice": replayed, "another call's": other} {
		t.Run(name, func(t *testing.T) {
			expectRefused(t, attacker(t, f, append([]map[string]any{setupMsg(sid, "VX-thief", n)}, drive...)...))
		})
	}
	if _, after := f.state(sid); after.Turn != before.Turn || after.Pending != nil || after.Relay.Owner != before.Relay.Owner {
		t.Fatalf("the thief moved the call: turn %d→%d owner changed %v", before.Turn, after.Turn, after.Relay.Owner != before.Relay.Owner)
	}
	victim.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "appointments please", "last": true})
	if got := readText(t, victim); !strings.Contains(got, "2 upcoming appointments") {
		t.Fatalf("the caller's own socket no longer works: %q", got)
	}
}

// When Twilio reports the owning session ended and a new one connects, the
// old socket (if somehow still open) can neither hear nor drive the call:
// only one socket drives a call at a time.
func TestRelayNewSessionFencesOld(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA000000000000000000000000000000d1"
	old := relaySetup(t, f, sid)
	doc := parseTwiML(t, f.post("/twilio/relay/done", callForm(sid, "SessionId", "VX"+sid, "SessionStatus", "failed"), nil))
	ws := attacker(t, f, setupMsg(sid, "VX-new", relayNonce(doc)))
	if got := readText(t, ws); !strings.Contains(got, "first and last name") {
		t.Fatalf("new session heard %q", got)
	}
	old.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "Maria Garcia", "last": true})
	expectRefused(t, old)
	if _, st := f.state(sid); st.Turn != 0 {
		t.Fatalf("the superseded socket moved the call to turn %d", st.Turn)
	}
	ws.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "Maria Garcia", "last": true})
	if got := readText(t, ws); !strings.Contains(got, "date of birth") {
		t.Fatalf("new session: %q", got)
	}
	if evs := auditTypes(t, f, AuditRelayRefused); len(evs) != 1 || evs[0].Detail["reason"] != refuseSuperseded {
		t.Fatalf("audit %+v", evs)
	}
}

// With the gather front end the relay endpoint does not exist.
func TestRelayRefusedOnGather(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	_, resp, err := dialRelay(t, f, "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("upgrade on the gather front end: err=%v resp=%v", err, resp)
	}
	// A call created by the gather front end gets no relay grant either.
	sid := "CA000000000000000000000000000000e1"
	f.post("/twilio/voice", callForm(sid, "CallStatus", "ringing"), nil).Body.Close()
	if _, st := f.state(sid); st.Relay != nil {
		t.Fatalf("gather call has a relay grant %+v", st.Relay)
	}
}

// The caller's number and attestation are the signed webhook's, never setup's.
func TestRelayStoredCallerWins(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA000000000000000000000000000000f1"
	nonce := announce(t, f, sid, "From", "+15555550101", "StirVerstat", "TN-Validation-Passed-A")
	m := setupMsg(sid, "VXf1", nonce)
	m["from"], m["stirVerstat"] = "+15555550999", "TN-Validation-Passed-A"
	ws := attacker(t, f, m)
	readText(t, ws)
	if _, st := f.state(sid); st.Call.From != "+15555550101" || st.Call.StirVerstat != "TN-Validation-Passed-A" {
		t.Fatalf("stored caller %+v", st.Call)
	}
}

// A From that is not an E.164 number (SIP and Client legs, anonymous, none)
// reaches the AS as no caller_phone at all, on both front ends.
func TestNonE164FromOmitted(t *testing.T) {
	for _, fe := range []string{FrontendGather, FrontendRelay} {
		f := newFixture(t, fe, nil)
		for i, from := range []string{"sip:alice@example.com", "client:bob", "anonymous", "", "+1 555 555 0101", "15555550101", "+15555550101"} {
			sid := "CA0000000000000000000000000000" + fe[:1] + string(rune('a'+i)) + "00"
			doc := parseTwiML(t, f.post("/twilio/voice", callForm(sid, "CallStatus", "ringing", "From", from), nil))
			if fe == FrontendRelay {
				ws := attacker(t, f, setupMsg(sid, "VX"+sid, relayNonce(doc)))
				readText(t, ws)
			}
			want := ""
			if from == "+15555550101" {
				want = from
			}
			if _, st := f.state(sid); st.Call.From != want {
				t.Errorf("%s From %q: caller number %q, want %q", fe, from, st.Call.From, want)
			}
		}
	}
}

// Every rejected Twilio signature, webhook or relay handshake, is an audit
// record with the path and the call_ref, never the body.
func TestSignatureRejectionsAudited(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA00000000000000000000000000000091"
	paths := []string{"/twilio/voice", "/twilio/gather?turn=1", "/twilio/continue?turn=1", "/twilio/status", "/twilio/relay/done"}
	for _, p := range paths {
		form := callForm(sid, "SpeechResult", "Maria Garcia", "Digits", "4567")
		req, _ := http.NewRequest(http.MethodPost, f.base+p, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", sign("not-the-token", f.base+p, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	if _, resp, err := dialRelay(t, f, sign("not-the-token", "ws"+strings.TrimPrefix(f.base, "http")+"/twilio/relay", url.Values{})); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged handshake: %v", err)
	}
	evs := auditTypes(t, f, AuditSignatureRejected)
	if len(evs) != len(paths)+1 {
		t.Fatalf("%d audit records for %d rejections: %+v", len(evs), len(paths)+1, evs)
	}
	for i, e := range evs {
		want := "/twilio/relay"
		if i < len(paths) {
			want = strings.Split(paths[i], "?")[0]
			if e.CallRef != f.srv.callRef(sid) {
				t.Errorf("%s: call_ref %q", want, e.CallRef)
			}
		}
		if e.Detail["path"] != want || e.Outcome != "rejected" {
			t.Errorf("record %d: %+v", i, e)
		}
		for _, v := range e.Detail {
			if strings.Contains(v, "Maria") || strings.Contains(v, "4567") || strings.Contains(v, "5555550101") || strings.Contains(v, sid) {
				t.Errorf("record %d carries request data: %v", i, e.Detail)
			}
		}
	}
	if v, err := f.store.VerifyAudit(context.Background()); err != nil || v.Problem != "" {
		t.Fatalf("audit chain: %+v %v", v, err)
	}
}

// Sockets racing with the same valid nonce: exactly one gets the call.
func TestRelayNonceRace(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	sid := "CA000000000000000000000000000000b7"
	nonce := announce(t, f, sid)
	const n = 6
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = attacker(t, f)
	}
	var wg sync.WaitGroup
	for i, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws.WriteJSON(setupMsg(sid, "VX-race-"+string(rune('a'+i)), nonce))
		}()
	}
	wg.Wait()
	heard, refused := 0, 0
	for _, ws := range conns {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m outMsg
		err := ws.ReadJSON(&m)
		var ce *websocket.CloseError
		switch {
		case err == nil && m.Type == "text":
			heard++
		case errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation:
			refused++
		default:
			t.Fatalf("unexpected %+v %v", m, err)
		}
	}
	if heard != 1 || refused != n-1 {
		t.Fatalf("%d sockets got the call, %d were refused", heard, refused)
	}
}

// A socket that owns one call cannot pick up another with a second setup;
// the other call's nonce stays unused.
func TestRelaySecondSetupIgnored(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	first, second := "CA000000000000000000000000000000b5", "CA000000000000000000000000000000b6"
	ws := relaySetup(t, f, first)
	other := announce(t, f, second)
	ws.WriteJSON(setupMsg(second, "VX-second", other))
	ws.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": "Maria Garcia", "last": true})
	if got := readText(t, ws); !strings.Contains(got, "date of birth") {
		t.Fatalf("first call: %q", got)
	}
	if _, st := f.state(second); st.Relay.Owner != "" || st.Turn != 0 {
		t.Fatalf("the second setup took the other call: %+v", st.Relay)
	}
	ws2 := attacker(t, f, setupMsg(second, "VX-own", other))
	if got := readText(t, ws2); !strings.Contains(got, "first and last name") {
		t.Fatalf("the other call's own socket: %q", got)
	}
}
