package ivr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twilio/twilio-go/twiml"

	"github.com/voiceauth/voiceauth/ivr/spoken"
	"github.com/voiceauth/voiceauth/prompts"
	"github.com/voiceauth/voiceauth/session"
)

// Relay timing and limits.
const (
	relayReadTimeout  = 60 * time.Second // no frame (not even a pong) for this long: the call is gone
	relayWriteTimeout = 5 * time.Second
	relayPingEvery    = 20 * time.Second
	maxMalformed      = 10
)

// relayURL is the signed websocket address: the ws(s) form of PublicURL, no query.
func (s *Server) relayURL() string {
	u := s.publicURL
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u + "/twilio/relay"
}

// connectVerbs hands the call to ConversationRelay. No PHI goes into any
// attribute: Twilio logs them. nonce (relaygrant.go) rides as a <Parameter>
// and comes back in setup.customParameters; without one the socket is
// refused at setup.
func (s *Server) connectVerbs(st *State, nonce string) []twiml.Element {
	cr := &twiml.VoiceConversationRelay{
		Url:                          s.relayURL(),
		Language:                     langTag(st.Lang),
		DtmfDetection:                "true",
		Interruptible:                "any",
		ReportInputDuringAgentSpeech: "dtmf",
		Hints:                        lookupLang(st.Lang).MenuHints,
		InnerElements:                relayLanguages(),
	}
	if nonce != "" {
		cr.InnerElements = append(cr.InnerElements, &twiml.VoiceParameter{Name: relayNonceParam, Value: nonce})
	}
	return []twiml.Element{&twiml.VoiceConnect{
		Action:        "/twilio/relay/done",
		Method:        http.MethodPost,
		InnerElements: []twiml.Element{cr},
	}}
}

// relayLanguages maps each language to its voice, so a text token's lang
// (the language offer) and a language switch are spoken by that voice.
func relayLanguages() []twiml.Element {
	var out []twiml.Element
	for _, l := range languages {
		out = append(out, &twiml.VoiceLanguage{Code: l.Tag, TtsProvider: "Amazon", Voice: l.RelayVoice})
	}
	return out
}

// maxReconnects bounds how often a call whose relay session ended without a
// decision (a dropped socket, an instance shutting down) is reconnected
// before a person takes over.
const maxReconnects = 2

// handleRelayDone answers Twilio's <Connect action> callback after the relay
// session ended. The decision comes from the stored state, not from
// HandoffData: a transfer dials a person, a finished call hangs up, and a
// session that ended mid-dialog is reconnected with a fresh nonce (any
// instance can resume it from the store) or, after maxReconnects, handed to
// a person. A callback for a session already handled, or for a session other
// than the one that owns the call, is a replay: it changes nothing and gets
// no nonce.
func (s *Server) handleRelayDone(w http.ResponseWriter, r *http.Request) {
	form := s.parseSigned(w, r)
	if form == nil {
		return
	}
	sid := form.Get("CallSid")
	gone := finalStatuses[form.Get("CallStatus")] // the caller hung up: nothing to reconnect
	reconnect, stale, foreign, nonce := false, false, false, ""
	st, err := s.update(r.Context(), sid, func(c *session.Call, st *State) bool {
		reconnect, stale, foreign, nonce = false, false, false, ""
		if st.Out.End != "" || c.Ended || gone {
			return false
		}
		switch st.Relay.sessionDone(form.Get("SessionId")) {
		case sessionStale:
			stale = true
			return false
		case sessionForeign:
			// The socket that owns the call is not Twilio's: cut it off and
			// let a person take the caller.
			foreign = true
			s.eng.transfer(st, ReasonBackendDown)
			return true
		}
		if st.Reconnects < maxReconnects {
			st.Reconnects++
			reconnect = true
			nonce = st.Relay.issue(s.now())
			return true
		}
		s.eng.transfer(st, ReasonBackendDown)
		return true
	})
	switch {
	case err != nil:
		s.storeFailed(w, sid, err)
	case foreign:
		s.m.rejected.WithLabelValues("relay_foreign_owner").Inc()
		s.log.Warn("relay done: the call was owned by another session", "call", s.pseudo("call", sid))
		s.audit(r.Context(), AuditRelayRefused, r.URL.Path, sid, map[string]string{"reason": "foreign_owner"})
		s.writeTwiML(w, s.transferVerbs())
	case stale:
		s.m.rejected.WithLabelValues("relay_done_stale").Inc()
		s.log.Warn("relay done: stale session", "call", s.pseudo("call", sid))
		// Twilio never repeats a session's callback; if this one is real
		// after all, a person takes the caller.
		s.writeTwiML(w, s.transferVerbs())
	case reconnect:
		s.log.Info("relay reconnect", "call", s.pseudo("call", sid), "session_status", form.Get("SessionStatus"))
		s.writeTwiML(w, s.connectVerbs(st, nonce))
	case st.Out.End == endTransfer && !gone:
		s.writeTwiML(w, s.transferVerbs())
	default:
		s.writeTwiML(w, []twiml.Element{&twiml.VoiceHangup{}})
	}
}

// relayIn is every message ConversationRelay sends; unused fields stay empty.
type relayIn struct {
	Type        string            `json:"type"`
	CallSid     string            `json:"callSid"`
	SessionID   string            `json:"sessionId"`
	Params      map[string]string `json:"customParameters"` // setup: our <Parameter>s
	VoicePrompt string            `json:"voicePrompt"`
	Lang        string            `json:"lang"`
	Last        *bool             `json:"last"`
	Digit       string            `json:"digit"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Utterance   string            `json:"utteranceUntilInterrupt"`
}

// relayOut is every message we send.
type relayOut struct {
	Type        string `json:"type"`
	Token       string `json:"token,omitempty"`
	Last        bool   `json:"last,omitempty"`
	Lang        string `json:"lang,omitempty"`
	HandoffData string `json:"handoffData,omitempty"`
	TTSLanguage string `json:"ttsLanguage,omitempty"`
	STTLanguage string `json:"transcriptionLanguage,omitempty"`
	utterance   int64
	flushed     chan struct{} // a marker, not a message: closed when reached
	// Interruptible lets the caller barge in on this token (every prompt).
	Interruptible bool `json:"interruptible,omitempty"`
}

var errMalformed = errors.New("ivr: malformed")

// decodeRelay parses one inbound frame. Known types must carry their fields.
func decodeRelay(b []byte) (relayIn, error) {
	var m relayIn
	if err := json.Unmarshal(b, &m); err != nil || m.Type == "" {
		return m, errMalformed
	}
	switch m.Type {
	case "setup":
		if m.CallSid == "" {
			return m, errMalformed
		}
	case "dtmf":
		if len(m.Digit) != 1 || !strings.Contains("0123456789*#", m.Digit) {
			return m, errMalformed
		}
	}
	return m, nil
}

// Small buffers and a shared write-buffer pool: a relay call spends nearly
// all its life idle, and 10,000 idle calls must fit in a few hundred MiB.
// Messages larger than a buffer still work (gorilla reads and writes them in
// pieces).
var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	WriteBufferPool: &sync.Pool{},
	CheckOrigin:     func(*http.Request) bool { return true }, // Twilio sends no Origin; the signature is the check
}

type relayEvent struct {
	msg     relayIn
	kind    string // "msg", "digits_timeout", "job_done", "hold", "closed"
	gen     int
	at      time.Time
	jobID   int
	payload string
	run     *driveRun
}

// relayCall is one ConversationRelay session: a reader, a writer, and the
// call goroutine that owns the dialog.
type relayCall struct {
	s      *Server
	ws     *websocket.Conn
	owner  string // this socket's id in relayGrant.Owner
	sid    string // set once setup is admitted
	events chan relayEvent
	out    chan relayOut
	done   chan struct{}

	utterance atomic.Int64 // id of the utterance being sent
	cancelled atomic.Int64 // utterances ≤ this were barged in on

	digits    strings.Builder
	digitGen  int
	digitStop func() bool
	holdGen   int
	lang      spoken.Lang // language Twilio is speaking and transcribing

	// The call goroutine's copy of the stored call. A turn writes it back with
	// one compare-and-swap; anyone else's write (a job, a status callback)
	// makes that fail and the turn re-reads. Never read without re-checking.
	call      *session.Call
	st        *State
	ended     bool
	quit      bool // the socket was refused or lost the call: loop returns
	closeOnce sync.Once
}

func (s *Server) handleRelay(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Frontend != FrontendRelay {
		// The gather front end never hands a call to the relay.
		s.m.rejected.WithLabelValues("frontend").Inc()
		http.NotFound(w, r)
		return
	}
	if !s.validSignature(s.relayURL(), map[string]string{}, r.Header.Get("X-Twilio-Signature")) {
		s.m.rejected.WithLabelValues("signature").Inc()
		s.log.Warn("relay signature")
		s.audit(r.Context(), AuditSignatureRejected, r.URL.Path, "", nil)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	// Count the session before upgrading, under the lock Shutdown takes, so
	// Shutdown never waits on a group that is still growing.
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.relays.Add(1)
	s.mu.Unlock()
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.relays.Done()
		return // Upgrade wrote the error
	}
	s.m.relayConns.Inc()
	c := &relayCall{s: s, ws: ws, owner: newOwnerID(), events: make(chan relayEvent, 4), out: make(chan relayOut, 16), done: make(chan struct{})}
	go c.write()
	go c.read()
	go func() {
		defer s.relays.Done()
		defer s.m.relayConns.Dec()
		c.loop()
	}()
}

func (c *relayCall) post(ev relayEvent) {
	select {
	case c.events <- ev:
	case <-c.done:
	}
}

func (c *relayCall) read() {
	ws := c.ws
	ws.SetReadLimit(maxBody)
	_ = ws.SetReadDeadline(time.Now().Add(relayReadTimeout))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(relayReadTimeout)) })
	malformed := 0
	for {
		kind, b, err := ws.ReadMessage()
		if err != nil {
			c.post(relayEvent{kind: "closed"})
			return
		}
		_ = ws.SetReadDeadline(time.Now().Add(relayReadTimeout))
		m, err := decodeRelay(b)
		if kind != websocket.TextMessage || err != nil {
			if malformed++; malformed >= maxMalformed {
				c.close(websocket.CloseInvalidFramePayloadData, "malformed messages")
				c.post(relayEvent{kind: "closed"})
				return
			}
			continue
		}
		malformed = 0
		if m.Type == "interrupt" {
			// Barge-in: drop what is still queued of the current utterance now,
			// not after the call goroutine gets to it.
			c.cancelled.Store(c.utterance.Load())
		}
		c.post(relayEvent{kind: "msg", msg: m, at: time.Now()})
	}
}

func (c *relayCall) close(code int, text string) {
	c.closeOnce.Do(func() {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
		close(c.done)
		_ = c.ws.Close()
	})
}

// write is the only goroutine writing data frames (gorilla allows one writer).
func (c *relayCall) write() {
	ping := time.NewTicker(relayPingEvery)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(relayWriteTimeout)); err != nil {
				c.close(websocket.CloseGoingAway, "")
				return
			}
		case m := <-c.out:
			if m.flushed != nil {
				close(m.flushed)
				continue
			}
			if c.dropped(m) {
				continue
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(relayWriteTimeout))
			if err := c.ws.WriteJSON(m); err != nil {
				c.close(websocket.CloseGoingAway, "")
				return
			}
		}
	}
}

// current returns the call's state, from the cache when it is valid.
func (c *relayCall) current() (*State, error) {
	if c.st != nil {
		return c.st, nil
	}
	call, st, err := c.s.load(c.s.base, c.sid)
	if err != nil {
		return nil, err
	}
	c.call, c.st = call, st
	return st, nil
}

// invalidate drops the cache after another goroutine wrote the call.
func (c *relayCall) invalidate() { c.call, c.st = nil, nil }

// apply runs fn on the cached state and writes it with the cached version;
// on a conflict (someone else wrote) it falls back to Server.update
// (writeCached).
func (c *relayCall) apply(fn func(*session.Call, *State) bool) (*State, error) {
	if _, err := c.current(); err != nil {
		return nil, err
	}
	lost := false
	fn = c.owned(fn, &lost)
	before := *c.st
	if !fn(c.call, c.st) {
		if lost {
			return nil, errNotOwner
		}
		return c.st, nil
	}
	fresh, err := c.s.writeCached(c.s.base, c.sid, c.call, &before, c.st, fn)
	if fresh {
		return c.st, nil
	}
	c.invalidate()
	if err != nil {
		return nil, err
	}
	if lost {
		return nil, errNotOwner
	}
	return c.current()
}

var errNotOwner = errors.New("ivr: relay socket no longer owns the call")

// owned wraps a state change so it applies only while this socket owns the
// call; *lost reports that it did not.
func (c *relayCall) owned(fn func(*session.Call, *State) bool, lost *bool) func(*session.Call, *State) bool {
	return func(cl *session.Call, st *State) bool {
		*lost = !owns(st, c.owner)
		if *lost {
			return false
		}
		return fn(cl, st)
	}
}

// refuse closes a socket that may not drive the call: a setup that failed
// admission, or a socket whose call was handed to a newer session. It
// writes nothing to the call and says nothing on the socket.
func (c *relayCall) refuse(sid, reason string) {
	c.s.m.rejected.WithLabelValues("relay_" + reason).Inc()
	c.s.log.Warn("relay refused", "call", c.s.pseudo("call", sid), "reason", reason)
	c.s.audit(c.s.base, AuditRelayRefused, "/twilio/relay", sid, map[string]string{"reason": reason})
	c.ended, c.quit = true, true
	c.close(websocket.ClosePolicyViolation, "refused")
}

// flush waits (at most a second) until the writer has sent everything
// queued before it.
func (c *relayCall) flush() {
	ack := make(chan struct{})
	c.send(relayOut{flushed: ack})
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-ack:
	case <-c.done:
	case <-t.C:
	}
}

// dropped reports whether m belongs to an utterance the caller barged in on.
func (c *relayCall) dropped(m relayOut) bool {
	return m.utterance != 0 && m.utterance <= c.cancelled.Load()
}

func (c *relayCall) send(m relayOut) {
	select {
	case c.out <- m:
	case <-c.done:
	}
}

// speak sends text as one utterance, one token per sentence, so a barge-in
// can cut the rest. Asides (the language offer) follow in their own
// language's voice.
func (c *relayCall) speak(parts []string, asides ...Aside) {
	id := c.utterance.Add(1)
	var toks []relayOut
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			toks = append(toks, relayOut{Type: "text", Token: p})
		}
	}
	for _, a := range asides {
		if t := strings.TrimSpace(a.Text); t != "" {
			toks = append(toks, relayOut{Type: "text", Token: t, Lang: langTag(a.Lang)})
		}
	}
	for i, t := range toks {
		if i < len(toks)-1 {
			t.Token += " "
		}
		t.Last, t.Interruptible, t.utterance = i == len(toks)-1, true, id
		c.send(t)
	}
}

// loop is the call goroutine: it owns the dialog for this socket.
func (c *relayCall) loop() {
	defer c.close(websocket.CloseNormalClosure, "")
	for {
		var ev relayEvent
		select {
		case ev = <-c.events:
		case <-c.s.closing:
			// Shutdown: the current turn is done; end the session so Twilio
			// asks /twilio/relay/done, which reconnects the caller to an
			// instance that is still up (the state is in the store).
			if !c.ended {
				c.finish("reconnect")
			}
			c.flush()
			return
		}
		switch ev.kind {
		case "closed":
			return
		case "digits_timeout":
			if ev.gen == c.digitGen && c.digits.Len() > 0 {
				c.flushDigits(ev.at)
			}
		case "job_done":
			c.invalidate()
			if ev.run != nil && ev.run.st != nil {
				c.call, c.st = ev.run.call, ev.run.st // what the driver last wrote
			}
			c.show(ev.at)
		case "hold":
			c.hold(ev)
		case "msg":
			c.message(ev)
		}
		if c.quit {
			return
		}
	}
}

func (c *relayCall) message(ev relayEvent) {
	m := ev.msg
	switch m.Type {
	case "setup":
		if c.sid != "" {
			return
		}
		// Only a call a signed /twilio/voice created for the relay, with its
		// one-time nonce; the caller's number and attestation are the stored
		// ones, never setup's from.
		reason, err := c.s.admitRelay(c.s.base, m.CallSid, m.Params[relayNonceParam], m.SessionID, c.owner)
		if err != nil {
			// Unverifiable is refused; Twilio's <Connect action> decides next.
			c.s.log.Error("relay setup", "call", c.s.pseudo("call", m.CallSid), "err", errKind(err))
			c.ended, c.quit = true, true
			c.close(websocket.CloseInternalServerErr, "")
			return
		}
		if reason != "" {
			c.refuse(m.CallSid, reason)
			return
		}
		c.sid = m.CallSid
		c.show(ev.at)
	case "prompt":
		if c.sid == "" || (m.Last != nil && !*m.Last) {
			return // partial transcripts: wait for the final one
		}
		c.input(Input{Speech: m.VoicePrompt}, ev.at)
	case "dtmf":
		if c.sid == "" {
			return
		}
		c.digit(m.Digit, ev.at)
	case "interrupt":
		// The writer already drops the rest; the caller's words follow as a prompt.
	case "error":
		c.s.log.Warn("relay error", "call", c.s.pseudo("call", c.sid))
	}
}

// digit assembles keypad input: `#` ends it, the expected length ends it, a
// 3 s pause ends it; a lone `*` repeats at once.
func (c *relayCall) digit(d string, at time.Time) {
	if c.digitStop != nil {
		c.digitStop()
	}
	c.digitGen++
	if d == "#" {
		if c.digits.Len() > 0 { // a bare # (after a length-complete entry) means nothing
			c.flushDigits(at)
		}
		return
	}
	c.digits.WriteString(d)
	if d == "*" && c.digits.Len() == 1 {
		c.flushDigits(at)
		return
	}
	st, err := c.current()
	if err == nil && st.Out.Expect.NumDigits > 0 && c.digits.Len() >= st.Out.Expect.NumDigits {
		c.flushDigits(at)
		return
	}
	gen := c.digitGen
	t := time.AfterFunc(c.s.interDigit, func() { c.post(relayEvent{kind: "digits_timeout", gen: gen, at: time.Now()}) })
	c.digitStop = t.Stop
}

func (c *relayCall) flushDigits(at time.Time) {
	if c.digitStop != nil {
		c.digitStop()
		c.digitStop = nil
	}
	d := c.digits.String()
	c.digits.Reset()
	c.input(Input{Digits: d}, at)
}

func (c *relayCall) input(in Input, at time.Time) {
	if c.ended {
		return
	}
	applied := false
	_, err := c.apply(func(cl *session.Call, st *State) bool {
		applied = !cl.Ended && c.s.eng.handle(st, in)
		return applied
	})
	if errors.Is(err, errNotOwner) {
		c.refuse(c.sid, refuseSuperseded)
		return
	}
	if err != nil {
		c.s.log.Error("relay turn", "call", c.s.pseudo("call", c.sid), "err", errKind(err))
		c.endWith(ReasonBackendDown)
		return
	}
	if !applied {
		return
	}
	c.s.m.turns.WithLabelValues(FrontendRelay).Inc()
	c.show(at)
}

// show speaks the current state, or starts its pending job with a hold timer.
func (c *relayCall) show(at time.Time) {
	st, err := c.current()
	if err != nil {
		c.endWith(ReasonBackendDown)
		return
	}
	if !owns(st, c.owner) {
		c.refuse(c.sid, refuseSuperseded)
		return
	}
	if st.Pending != nil {
		c.holdGen++
		gen, jobID := c.holdGen, st.Pending.ID
		run := c.s.startDrive(c.sid, c.call, c.st) // the driver owns the snapshot now
		c.invalidate()
		go func() {
			t := time.NewTimer(c.s.cfg.HoldAfter)
			defer t.Stop()
			select {
			case <-run.done:
				c.post(relayEvent{kind: "job_done", at: at, run: run})
			case <-t.C:
				c.post(relayEvent{kind: "hold", gen: gen, jobID: jobID, payload: prompts.Hold, at: at})
				<-run.done
				c.post(relayEvent{kind: "job_done", at: at, run: run})
			case <-c.done:
			}
		}()
		return
	}
	if !at.IsZero() {
		c.s.m.turnTime.WithLabelValues(FrontendRelay).Observe(time.Since(at).Seconds())
	}
	if st.Lang != c.lang {
		if c.lang != "" {
			tag := langTag(st.Lang)
			c.send(relayOut{Type: "language", TTSLanguage: tag, STTLanguage: tag})
		}
		c.lang = st.Lang
	}
	c.speak(append(append([]string(nil), st.Out.Say...), st.Out.Question), st.Out.Offer...)
	if st.Out.End != "" {
		c.finish(st.Out.Reason)
	}
}

// hold speaks a hold phrase while a job runs, and again every continueWait,
// so the caller never hears more than 3 s of silence.
func (c *relayCall) hold(ev relayEvent) {
	if ev.gen != c.holdGen || c.ended {
		return
	}
	c.invalidate()
	st, err := c.current()
	if err != nil || st.Pending == nil || st.Pending.ID != ev.jobID {
		return
	}
	if !owns(st, c.owner) {
		c.refuse(c.sid, refuseSuperseded)
		return
	}
	c.speak([]string{c.s.eng.say(st, ev.payload, nil)})
	gen := ev.gen
	time.AfterFunc(continueWait, func() {
		c.post(relayEvent{kind: "hold", gen: gen, jobID: ev.jobID, payload: prompts.StillWorking})
	})
}

// endWith transfers after a failure outside the dialog (store down).
func (c *relayCall) endWith(reason string) {
	if c.sid != "" {
		c.invalidate()
		lost := false
		st, err := c.s.update(c.s.base, c.sid, func(_ *session.Call, st *State) bool {
			if lost = !owns(st, c.owner); lost || st.Out.End != "" {
				return false
			}
			c.s.eng.transfer(st, reason, c.s.eng.say(st, prompts.Apology, nil))
			return true
		})
		if err == nil && lost {
			c.refuse(c.sid, refuseSuperseded)
			return
		}
		if err == nil {
			c.speak([]string{st.Out.Text()})
		}
	}
	c.finish(reason)
}

// finish sends `end`; Twilio then calls /twilio/relay/done for the next TwiML.
func (c *relayCall) finish(reason string) {
	if c.ended {
		return
	}
	c.ended = true
	data, _ := json.Marshal(map[string]string{"reasonCode": reason})
	c.send(relayOut{Type: "end", HandoffData: string(data)})
}
