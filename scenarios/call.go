package scenarios

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voiceauth/voiceauth/ivr/twiliotest"
)

// Reply is what the caller heard in response to one action.
type Reply struct {
	Text         string        // the agent's words
	Status       int           // HTTP status (webhook) or handshake status (relay)
	FirstWords   time.Duration // action → first words (first reply / first text token)
	Complete     time.Duration // action → turn complete (redirects followed / last=true)
	Transfer     bool          // <Dial>/<Enqueue>, or relay end
	TransferInfo string        // handoffData, Dial attributes (reason hunting)
	Ended        bool          // the call is over (Hangup, transfer, socket closed)
	CloseCode    int           // relay: websocket close code seen
	Late         string        // relay: words that arrived after the previous turn ended
}

// Phone is one simulated caller leg: Twilio's side of a call.
type Phone interface {
	// Do performs one caller action (turn.Say etc. already substituted).
	Do(ctx context.Context, t *Turn) (Reply, error)
	// CallSid is the call's identifier.
	CallSid() string
	// Close releases the connection without hanging up politely.
	Close()
}

// PhoneConfig describes a call to place.
type PhoneConfig struct {
	Caller   Caller
	Language string        // en | es
	Timeout  time.Duration // max wait for the agent in one turn (default 10 s)
	CallSid  string        // default: random CA…
}

// Dial places a call on target using its transport.
func Dial(target *Target, cfg PhoneConfig) Phone {
	if cfg.CallSid == "" {
		cfg.CallSid = NewCallSid()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Caller.To == "" {
		cfg.Caller.To = "+15555550199"
	}
	w := &webhookPhone{t: target, cfg: cfg, account: "AC" + strings.Repeat("0", 31) + "1"}
	if target.Transport == TransportRelay {
		return &relayPhone{webhookPhone: w}
	}
	return w
}

// NewCallSid returns a fresh "CA" + 32 hex CallSid.
func NewCallSid() string {
	var b [16]byte
	rand.Read(b[:])
	return "CA" + hex.EncodeToString(b[:])
}

func randomToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---- webhook (<Gather> loop) ----

type webhookPhone struct {
	t       *Target
	cfg     PhoneConfig
	account string
	gather  *Gather
	next    string // Redirect after the current Gather (no-input path)
	docURL  string // public URL of the last TwiML document
	ended   bool
}

func (p *webhookPhone) CallSid() string { return p.cfg.CallSid }
func (p *webhookPhone) Close()          {}

func (p *webhookPhone) baseParams(status string) url.Values {
	v := url.Values{}
	v.Set("CallSid", p.cfg.CallSid)
	v.Set("AccountSid", p.account)
	v.Set("From", p.cfg.Caller.From)
	v.Set("To", p.cfg.Caller.To)
	v.Set("Caller", p.cfg.Caller.From)
	v.Set("Called", p.cfg.Caller.To)
	v.Set("CallStatus", status)
	v.Set("Direction", "inbound")
	v.Set("ApiVersion", "2010-04-01")
	if p.cfg.Caller.StirVerstat != "" {
		v.Set("StirVerstat", p.cfg.Caller.StirVerstat)
	}
	return v
}

// resolve turns an action/redirect URL (maybe relative) into the public URL
// Twilio would request and the URL the runner actually sends to.
func (p *webhookPhone) resolve(ref string) (public, send string, err error) {
	base := p.docURL
	if base == "" {
		base = p.t.publicURL() + "/twilio/voice"
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", "", err
	}
	r, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return "", "", fmt.Errorf("bad URL in TwiML %q: %w", ref, err)
	}
	public = b.ResolveReference(r).String()
	return public, p.sendURL(public), nil
}

// sendURL maps a public URL onto the target's listening address.
func (p *webhookPhone) sendURL(public string) string {
	pub := strings.TrimRight(p.t.publicURL(), "/")
	if strings.HasPrefix(public, pub) {
		return strings.TrimRight(p.t.VoiceURL, "/") + strings.TrimPrefix(public, pub)
	}
	return public
}

// post sends one signed webhook and returns status and body.
func (p *webhookPhone) post(ctx context.Context, public string, form url.Values, sig string, idem string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.sendURL(public), strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("I-Twilio-Idempotency-Token", idem)
	switch sig {
	case "missing":
	case "forged":
		req.Header.Set("X-Twilio-Signature", twiliotest.Sign(p.t.AuthToken+"x", public, form))
	default:
		req.Header.Set("X-Twilio-Signature", twiliotest.Sign(p.t.AuthToken, public, form))
	}
	resp, err := p.t.client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

func (p *webhookPhone) Do(ctx context.Context, t *Turn) (Reply, error) {
	if t.Hangup {
		return p.hangup(ctx, t)
	}
	var public string
	form := p.baseParams("in-progress")
	switch {
	case t.Answer:
		public = p.t.publicURL() + "/twilio/voice"
		p.docURL = ""
		form = p.baseParams("ringing")
	case t.Say != "" || t.Press != "":
		if p.gather == nil {
			return Reply{}, errors.New("no open <Gather> to answer (the agent is not listening)")
		}
		public, _, _ = p.resolve(p.gather.Action)
		if p.gather.Action == "" {
			public = p.docURL
		}
		if t.Say != "" {
			form.Set("SpeechResult", t.Say)
			form.Set("Confidence", "0.91")
		} else {
			form.Set("Digits", strings.TrimSuffix(t.Press, "#"))
			if strings.HasSuffix(t.Press, "#") {
				form.Set("FinishedOnKey", "#")
			} else {
				form.Set("FinishedOnKey", "")
			}
		}
	case t.Silence:
		switch {
		case p.gather != nil && p.gather.ActionOnEmptyResult:
			public, _, _ = p.resolve(p.gather.Action)
		case p.next != "":
			public, _, _ = p.resolve(p.next)
		default:
			return Reply{}, errors.New("silence: the TwiML has neither actionOnEmptyResult nor a <Redirect> after <Gather> (Twilio would hang up)")
		}
	default:
		return Reply{}, fmt.Errorf("%s is not supported on the webhook transport", t.Action())
	}
	start := time.Now()
	idem := randomToken()
	status, body, err := p.post(ctx, public, form, t.Signature, idem)
	if err != nil {
		return Reply{}, err
	}
	rep := Reply{Status: status, FirstWords: time.Since(start)}
	if t.Duplicate {
		st2, body2, err := p.post(ctx, public, form, t.Signature, idem)
		if err != nil {
			return rep, fmt.Errorf("duplicate delivery: %w", err)
		}
		if st2 != status || CanonicalTwiML(body2) != CanonicalTwiML(body) {
			return rep, fmt.Errorf("duplicate delivery (same I-Twilio-Idempotency-Token) got a different reply: %d %q vs %d %q", status, clip(body), st2, clip(body2))
		}
	}
	if status != http.StatusOK {
		rep.Complete = rep.FirstWords
		return rep, nil // the runner compares with expect_status
	}
	p.docURL = public
	if err := p.follow(ctx, body, &rep, start); err != nil {
		return rep, err
	}
	return rep, nil
}

// follow reads a TwiML reply and follows <Redirect>s (hold phrases,
// continuations) until the agent listens again or the call ends.
func (p *webhookPhone) follow(ctx context.Context, body []byte, rep *Reply, start time.Time) error {
	var says []string
	deadline := start.Add(p.cfg.Timeout + 5*time.Second)
	for hops := 0; ; hops++ {
		tw, err := ParseTwiML(body)
		if err != nil {
			return fmt.Errorf("%w (body %q)", err, clip(body))
		}
		says = append(says, tw.Says...)
		p.gather, p.next = tw.Gather, ""
		if tw.Gather != nil {
			p.next = tw.Redirect
		}
		switch {
		case tw.Dial != nil || tw.Enqueue != "":
			rep.Transfer, rep.Ended = true, true
			rep.TransferInfo = tw.Raw
		case tw.Relay != nil:
			// handled by relayPhone
		case tw.Hangup:
			rep.Ended = true
		case tw.Gather == nil && tw.Redirect != "":
			if hops >= 200 || time.Now().After(deadline) {
				return fmt.Errorf("gave up after %d redirects in one turn", hops)
			}
			if len(tw.Says) > 0 {
				if rep.FirstWords == 0 {
					rep.FirstWords = time.Since(start)
				}
				// Twilio plays the hold phrase before redirecting; a short
				// pause keeps a continuation loop from spinning.
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			public, _, err := p.resolve(tw.Redirect)
			if err != nil {
				return err
			}
			status, b, err := p.post(ctx, public, p.baseParams("in-progress"), "", randomToken())
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("redirect to %s: HTTP %d", public, status)
			}
			p.docURL, body = public, b
			continue
		case tw.Gather == nil:
			// No verb left: Twilio hangs up.
			rep.Ended = true
		}
		rep.Text = strings.Join(says, " ")
		rep.Complete = time.Since(start)
		p.ended = rep.Ended
		return nil
	}
}

func (p *webhookPhone) hangup(ctx context.Context, t *Turn) (Reply, error) {
	form := p.baseParams("completed")
	form.Set("CallDuration", "42")
	form.Set("Duration", "1")
	form.Set("CallbackSource", "call-progress-events")
	form.Set("SequenceNumber", "0")
	form.Set("Timestamp", time.Now().UTC().Format(time.RFC1123Z))
	start := time.Now()
	status, _, err := p.post(ctx, p.t.publicURL()+"/twilio/status", form, t.Signature, randomToken())
	p.ended = true
	return Reply{Status: status, Ended: true, FirstWords: time.Since(start), Complete: time.Since(start)}, err
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// ---- relay (ConversationRelay websocket) ----

type relayPhone struct {
	*webhookPhone
	conn    *websocket.Conn
	events  chan relayEvent
	action  string // <Connect action>
	wsURL   string
	session string
	sttLang string // set by a `language` message: what Twilio now transcribes
}

type relayEvent struct {
	msg       relayMsg
	at        time.Time
	err       error
	closeCode int
}

type relayMsg struct {
	Type        string `json:"type"`
	Token       string `json:"token"`
	Last        bool   `json:"last"`
	HandoffData string `json:"handoffData"`
	// language: Twilio transcribes the caller in this language from now on.
	STTLanguage string `json:"transcriptionLanguage"`
}

func (p *relayPhone) Close() {
	if p.conn != nil {
		p.conn.Close()
	}
}

func (p *relayPhone) lang() string {
	if p.sttLang != "" {
		return p.sttLang
	}
	if p.cfg.Language == "es" {
		return "es-US"
	}
	return "en-US"
}

func (p *relayPhone) Do(ctx context.Context, t *Turn) (Reply, error) {
	if t.Answer {
		return p.answer(ctx, t)
	}
	if t.Hangup {
		if p.conn != nil {
			p.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			p.conn.Close()
		}
		return p.webhookPhone.hangup(ctx, t)
	}
	if p.conn == nil {
		return Reply{}, errors.New("relay socket is not open")
	}
	late := p.drain()
	start := time.Now()
	var err error
	switch {
	case t.Say != "":
		err = p.send(map[string]any{"type": "prompt", "voicePrompt": t.Say, "lang": p.lang(), "last": true})
	case t.Press != "":
		keys := t.Press
		if !strings.HasSuffix(keys, "#") && keys != "*" {
			keys += "#"
		}
		for _, d := range keys {
			if err = p.send(map[string]any{"type": "dtmf", "digit": string(d)}); err != nil {
				break
			}
		}
	case t.Interrupt != "":
		err = p.send(map[string]any{"type": "interrupt", "utteranceUntilInterrupt": t.Interrupt, "durationUntilInterruptMs": 800})
		return Reply{Status: http.StatusSwitchingProtocols, Late: late}, err
	case len(t.SendRaw) > 0:
		for _, f := range t.SendRaw {
			if err = p.conn.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
				break
			}
		}
	case t.Silence:
		// ConversationRelay sends nothing while the caller is silent; the
		// agent's own no-input timer must re-prompt.
	}
	if err != nil {
		return Reply{}, fmt.Errorf("relay send: %w", err)
	}
	rep, err := p.collect(ctx, t, start)
	rep.Late = late
	return rep, err
}

// noteLanguage follows a `language` message the way Twilio does: the
// caller's next words are transcribed (and tagged) in that language.
func (p *relayPhone) noteLanguage(m relayMsg) {
	if m.Type == "language" && m.STTLanguage != "" {
		p.sttLang = m.STTLanguage
	}
}

func (p *relayPhone) send(v any) error {
	p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return p.conn.WriteJSON(v)
}

func (p *relayPhone) answer(ctx context.Context, t *Turn) (Reply, error) {
	start := time.Now()
	public := p.t.publicURL() + "/twilio/voice"
	form := p.baseParams("ringing")
	status, body, err := p.post(ctx, public, form, "", randomToken())
	if err != nil {
		return Reply{}, err
	}
	if status != http.StatusOK {
		return Reply{Status: status}, fmt.Errorf("/twilio/voice: HTTP %d %q", status, clip(body))
	}
	tw, err := ParseTwiML(body)
	if err != nil {
		return Reply{}, err
	}
	if tw.Relay == nil && tw.Dial != nil {
		// Turned away before any question (all lines busy, or the service
		// could not start the call): said, then transferred.
		d := time.Since(start)
		return Reply{Status: status, Text: strings.Join(tw.Says, " "), Transfer: true, Ended: true, FirstWords: d, Complete: d}, nil
	}
	if tw.Relay == nil || tw.Relay.URL == "" {
		return Reply{}, fmt.Errorf("/twilio/voice did not connect a ConversationRelay (verbs %v); is the target in relay mode?", tw.Verbs)
	}
	p.docURL = public
	p.action = tw.Relay.Action
	p.wsURL = tw.Relay.URL
	hdr := http.Header{}
	switch t.Signature {
	case "missing":
	case "forged":
		hdr.Set("X-Twilio-Signature", twiliotest.Sign(p.t.AuthToken+"x", p.wsURL, nil))
	default:
		hdr.Set("X-Twilio-Signature", twiliotest.Sign(p.t.AuthToken, p.wsURL, nil))
	}
	dialURL := p.sendURL(p.wsURL)
	// The public URL may be ws(s):// of an https public base; map it.
	if pub := wsForm(p.t.publicURL()); strings.HasPrefix(p.wsURL, pub) {
		dialURL = wsForm(p.t.VoiceURL) + strings.TrimPrefix(p.wsURL, pub)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.DialContext(ctx, dialURL, hdr)
	if err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		return Reply{Status: st, FirstWords: time.Since(start), Complete: time.Since(start)}, nil
	}
	p.conn = conn
	conn.SetReadLimit(1 << 20)
	p.events = make(chan relayEvent, 512)
	go p.read()
	p.session = "VX" + randomToken() + randomToken()[:8]
	err = p.send(map[string]any{
		"type": "setup", "sessionId": p.session, "accountSid": p.account, "callSid": p.cfg.CallSid,
		"from": p.cfg.Caller.From, "to": p.cfg.Caller.To, "forwardedFrom": "", "callType": "PSTN",
		"callerName": "", "direction": "inbound", "callStatus": "RINGING", "applicationSid": "",
		"customParameters": tw.Relay.Parameters,
	})
	if err != nil {
		return Reply{}, err
	}
	rep, err := p.collect(ctx, t, start)
	rep.Status = http.StatusSwitchingProtocols
	return rep, err
}

func wsForm(u string) string {
	u = strings.TrimRight(u, "/")
	if strings.HasPrefix(u, "https://") {
		return "wss://" + strings.TrimPrefix(u, "https://")
	}
	return "ws://" + strings.TrimPrefix(u, "http://")
}

func (p *relayPhone) read() {
	defer close(p.events)
	for {
		_, data, err := p.conn.ReadMessage()
		if err != nil {
			ev := relayEvent{err: err, at: time.Now()}
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				ev.closeCode = ce.Code
			}
			p.events <- ev
			return
		}
		var m relayMsg
		if json.Unmarshal(data, &m) != nil {
			m.Type = "unparseable"
		}
		p.events <- relayEvent{msg: m, at: time.Now()}
	}
}

// drain returns text that arrived after the previous turn was complete.
func (p *relayPhone) drain() string {
	var b strings.Builder
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				return b.String()
			}
			if ev.err != nil {
				p.events = closedEvents(ev)
				return b.String()
			}
			if ev.msg.Type == "text" {
				b.WriteString(ev.msg.Token)
			}
			p.noteLanguage(ev.msg)
		default:
			return b.String()
		}
	}
}

// closedEvents keeps reporting a terminal event after the reader has stopped.
func closedEvents(ev relayEvent) chan relayEvent {
	ch := make(chan relayEvent, 1)
	ch <- ev
	close(ch)
	return ch
}

// collect reads the agent's turn: text tokens up to last=true, continuing
// (up to the timeout) while the turn's expect entries have not all matched,
// since a hold phrase may come first. An end message is a transfer.
func (p *relayPhone) collect(ctx context.Context, t *Turn, start time.Time) (Reply, error) {
	rep := Reply{Status: http.StatusSwitchingProtocols}
	var text, utterance strings.Builder
	timeout := p.cfg.Timeout
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	finish := func() Reply {
		rep.Text = strings.TrimSpace(text.String())
		rep.Complete = time.Since(start)
		return rep
	}
	for {
		select {
		case <-ctx.Done():
			return finish(), ctx.Err()
		case <-timer.C:
			if t.ExpectClose != 0 {
				return finish(), fmt.Errorf("socket still open after %s, want close %d", timeout, t.ExpectClose)
			}
			if text.Len() == 0 {
				return finish(), fmt.Errorf("the agent said nothing within %s", timeout)
			}
			return finish(), nil
		case ev, ok := <-p.events:
			if !ok {
				rep.Ended = true
				return finish(), nil
			}
			if ev.err != nil {
				p.events = closedEvents(ev)
				rep.Ended, rep.CloseCode = true, ev.closeCode
				if rep.CloseCode == 0 {
					rep.CloseCode = websocket.CloseAbnormalClosure
				}
				return finish(), nil
			}
			p.noteLanguage(ev.msg)
			switch ev.msg.Type {
			case "text":
				if rep.FirstWords == 0 {
					rep.FirstWords = ev.at.Sub(start)
				}
				text.WriteString(ev.msg.Token)
				utterance.WriteString(ev.msg.Token)
				if ev.msg.Last {
					held := t.hold != nil && t.hold.MatchString(utterance.String())
					utterance.Reset()
					if t.ExpectClose == 0 && !held && allMatch(text.String(), t.Expect) {
						return finish(), nil
					}
					text.WriteString(" ")
				}
			case "end":
				if rep.FirstWords == 0 {
					rep.FirstWords = ev.at.Sub(start)
				}
				rep.Transfer, rep.Ended = true, true
				rep.TransferInfo = ev.msg.HandoffData
				if err := p.connectAction(ctx, ev.msg.HandoffData, &rep, &text); err != nil {
					return finish(), err
				}
				return finish(), nil
			}
		}
	}
}

// connectAction plays Twilio's <Connect action> callback after end.
func (p *relayPhone) connectAction(ctx context.Context, handoff string, rep *Reply, text *strings.Builder) error {
	if p.action == "" {
		return nil
	}
	public, _, err := p.resolve(p.action)
	if err != nil {
		return err
	}
	form := p.baseParams("in-progress")
	form.Set("SessionId", p.session)
	form.Set("SessionStatus", "ended")
	form.Set("SessionDuration", "12")
	if handoff != "" {
		form.Set("HandoffData", handoff)
	}
	status, body, err := p.post(ctx, public, form, "", randomToken())
	if err != nil {
		return fmt.Errorf("<Connect action>: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("<Connect action> %s: HTTP %d", public, status)
	}
	tw, err := ParseTwiML(body)
	if err != nil {
		return err
	}
	if len(tw.Says) > 0 {
		text.WriteString(" " + tw.Speech())
	}
	if tw.Dial != nil || tw.Enqueue != "" {
		rep.TransferInfo += " " + tw.Raw
	} else if !tw.Hangup {
		rep.Transfer = rep.Transfer && tw.Gather == nil
	}
	return nil
}

// settle reads whatever the agent still sends until quiet passes with
// nothing new, or the call ends (e.g. an end message after the last words).
func (p *relayPhone) settle(ctx context.Context, quiet time.Duration) Reply {
	var rep Reply
	if p.conn == nil {
		return rep
	}
	var text strings.Builder
	for {
		select {
		case <-ctx.Done():
			rep.Text = text.String()
			return rep
		case <-time.After(quiet):
			rep.Text = text.String()
			return rep
		case ev, ok := <-p.events:
			if !ok || ev.err != nil {
				if ok {
					p.events = closedEvents(ev)
				}
				rep.Ended = true
				rep.Text = text.String()
				return rep
			}
			switch ev.msg.Type {
			case "text":
				text.WriteString(ev.msg.Token)
			case "end":
				rep.Transfer, rep.Ended, rep.TransferInfo = true, true, ev.msg.HandoffData
				p.connectAction(ctx, ev.msg.HandoffData, &rep, &text)
				rep.Text = text.String()
				return rep
			}
		}
	}
}
