package app

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/twilio/twilio-go/twiml"
)

// busyText is all a caller turned away hears: short, in both languages the
// service speaks, then a person. Nothing was asked, so nothing is lost.
const busyText = "All our lines are busy. Please hold while I transfer you. " +
	"Todas nuestras líneas están ocupadas. Espere mientras le transfiero."

// admission caps the calls in progress on this instance. Above the cap a
// new call (a signed /twilio/voice for a CallSid not yet admitted) hears
// busyText and is transferred before any question; calls already admitted
// are never refused, so a caller who has authenticated is never dropped for
// load. A call stops counting when Twilio reports it final (status
// callback, relay action), when our answer ends it (<Dial>, <Hangup>), or
// after idleTTL without a request (a call whose end we never heard).
type admission struct {
	max      int
	check    signedCheck
	transfer string
	m        *opsMetrics
	now      func() time.Time
	idleTTL  time.Duration
	load     *loadGauge // nil: the count alone decides

	mu     sync.Mutex
	active map[string]time.Time // CallSid → last request
	swept  time.Time
}

// signedCheck reads a request's form and checks its Twilio signature
// (ivr.Server.CheckSigned): the request it returns carries the outcome to
// the voice handler, so a webhook is parsed and checked once, not once here
// and again there. form is nil unless the signature is valid.
type signedCheck func(w http.ResponseWriter, r *http.Request) (_ *http.Request, form url.Values)

func newAdmission(max int, check signedCheck, transfer string, m *opsMetrics, now func() time.Time) *admission {
	a := &admission{max: max, check: check, transfer: transfer, m: m, now: now,
		idleTTL: 15 * time.Minute, active: map[string]time.Time{}}
	m.callsLimit.Set(float64(max))
	return a
}

var finalCallStatus = map[string]bool{"completed": true, "busy": true, "failed": true, "no-answer": true, "canceled": true}

// wrap puts admission in front of the voice handler.
func (a *admission) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/twilio/") {
			next.ServeHTTP(w, r)
			return
		}
		r, form := a.check(w, r)
		sid := form.Get("CallSid")
		if sid == "" { // unsigned, unreadable or no call
			next.ServeHTTP(w, r) // the voice service answers (and refuses) it
			return
		}
		switch r.URL.Path {
		case "/twilio/voice":
			if reason := a.admit(sid); reason != "" {
				a.m.admission.WithLabelValues(reason).Inc()
				a.busy(w)
				return
			}
		case "/twilio/status":
			if finalCallStatus[form.Get("CallStatus")] {
				defer a.release(sid)
			}
		case "/twilio/relay/done":
			defer a.release(sid)
		default:
			a.touch(sid)
		}
		rec := &endSniffer{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.ended() {
			a.release(sid)
		}
	})
}

// admit counts sid in, or says why not ("max_calls", "overloaded"); a
// retried /twilio/voice for a call already admitted is always let through.
func (a *admission) admit(sid string) (refused string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.sweep(now)
	if _, ok := a.active[sid]; ok {
		a.active[sid] = now
		return ""
	}
	switch {
	case a.max > 0 && len(a.active) >= a.max:
		return "max_calls"
	case a.load != nil && a.load.overloaded():
		return "overloaded"
	}
	a.active[sid] = now
	a.m.callsNow.Set(float64(len(a.active)))
	return ""
}

func (a *admission) touch(sid string) {
	a.mu.Lock()
	if _, ok := a.active[sid]; ok {
		a.active[sid] = a.now()
	}
	a.mu.Unlock()
}

func (a *admission) release(sid string) {
	a.mu.Lock()
	delete(a.active, sid)
	a.m.callsNow.Set(float64(len(a.active)))
	a.mu.Unlock()
}

// sweep forgets calls idle for idleTTL, at most once a second.
func (a *admission) sweep(now time.Time) {
	if now.Sub(a.swept) < time.Second {
		return
	}
	a.swept = now
	for sid, last := range a.active {
		if now.Sub(last) > a.idleTTL {
			delete(a.active, sid)
		}
	}
	a.m.callsNow.Set(float64(len(a.active)))
}

func (a *admission) inProgress() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.active)
}

func (a *admission) busy(w http.ResponseWriter) {
	doc, err := twiml.Voice([]twiml.Element{
		&twiml.VoiceSay{Message: busyText},
		&twiml.VoiceDial{Number: a.transfer},
	})
	if err != nil {
		http.Error(w, "twiml", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	io.WriteString(w, doc)
}

// endSniffer remembers whether a TwiML answer ends the call here: whether
// the first sniffLimit bytes written hold "<Dial" or "<Hangup". It looks at
// each write as it passes, keeping only the last few bytes for a word split
// across two writes, instead of copying the answer.
type endSniffer struct {
	http.ResponseWriter
	seen  int // bytes looked at, up to sniffLimit
	tail  [sniffTail]byte
	ntail int
	end   bool
}

const (
	sniffLimit = 8192
	sniffTail  = len("<Hangup") - 1 // the longest word, less one byte
)

var endWords = [][]byte{[]byte("<Dial"), []byte("<Hangup")}

func (e *endSniffer) Write(p []byte) (int, error) {
	if !e.end && e.seen < sniffLimit {
		e.sniff(p[:min(len(p), sniffLimit-e.seen)])
	}
	return e.ResponseWriter.Write(p)
}

func (e *endSniffer) sniff(q []byte) {
	e.seen += len(q)
	// A word split across writes: the kept tail and q's first bytes.
	var joint [2 * sniffTail]byte
	n := copy(joint[:], e.tail[:e.ntail])
	n += copy(joint[n:], q[:min(len(q), sniffTail)])
	for _, word := range endWords {
		if bytes.Contains(joint[:n], word) || bytes.Contains(q, word) {
			e.end = true
			return
		}
	}
	// Keep the last sniffTail bytes of everything seen so far.
	if len(q) >= sniffTail {
		e.ntail = copy(e.tail[:], q[len(q)-sniffTail:])
		return
	}
	keep := joint[max(0, n-sniffTail):n]
	e.ntail = copy(e.tail[:], keep)
}

func (e *endSniffer) ended() bool { return e.end }

func (e *endSniffer) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// loadGauge sheds new calls while the backends answer slowly, whatever the
// count: an instance on a busy host (or behind a slow AS) carries fewer
// calls than its cap, and a call admitted then is a call that may be
// dropped after the caller has answered questions. It follows an EWMA of
// the time backend jobs (AS submissions, tool calls) take; above high it
// sheds, below low (or after quiet seconds with no job finishing) it admits
// again.
type loadGauge struct {
	high, low, quiet time.Duration
	now              func() time.Time

	mu       sync.Mutex
	ewma     float64 // seconds
	last     time.Time
	shedding bool
}

func newLoadGauge(giveUp time.Duration, now func() time.Time) *loadGauge {
	if giveUp <= 0 {
		giveUp = 6 * time.Second
	}
	return &loadGauge{high: giveUp / 3, low: giveUp / 6, quiet: 5 * time.Second, now: now}
}

func (g *loadGauge) observe(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	const alpha = 0.1
	g.ewma = (1-alpha)*g.ewma + alpha*d.Seconds()
	g.last = g.now()
	switch {
	case g.ewma > g.high.Seconds():
		g.shedding = true
	case g.ewma < g.low.Seconds():
		g.shedding = false
	}
}

func (g *loadGauge) overloaded() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shedding && g.now().Sub(g.last) > g.quiet {
		// Nothing finished for a while: the backlog is gone; start again gently.
		g.shedding, g.ewma = false, g.low.Seconds()
	}
	return g.shedding
}
