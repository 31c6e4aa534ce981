package ivr

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/twilio/twilio-go/twiml"

	"github.com/voiceauth/voiceauth/ivr/spoken"
	"github.com/voiceauth/voiceauth/prompts"
	"github.com/voiceauth/voiceauth/session"
)

// parseSigned reads a Twilio form POST and checks its signature against the
// configured public URL + request URI. It writes the error response (413,
// 400, 403) itself and returns nil then.
func (s *Server) parseSigned(w http.ResponseWriter, r *http.Request) url.Values {
	c := s.checkForm(w, r) // signedform.go: at most once per request
	if err := c.err; err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.m.rejected.WithLabelValues("too_large").Inc()
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return nil
		}
		s.m.rejected.WithLabelValues("malformed").Inc()
		http.Error(w, "malformed form", http.StatusBadRequest)
		return nil
	}
	form := c.form
	if !c.signed {
		s.m.rejected.WithLabelValues("signature").Inc()
		s.log.Warn("webhook signature", "path", r.URL.Path, "call", s.pseudo("call", form.Get("CallSid")))
		s.audit(r.Context(), AuditSignatureRejected, r.URL.Path, form.Get("CallSid"), nil)
		http.Error(w, "forbidden", http.StatusForbidden)
		return nil
	}
	if form.Get("CallSid") == "" {
		http.Error(w, "missing CallSid", http.StatusBadRequest)
		return nil
	}
	return form
}

func langTag(l spoken.Lang) string { return lookupLang(l).Tag }

// writeTwiML renders verbs with appendTwiML (twimlfast.go), the same
// document twiml.Voice builds at a fraction of its cost, or with twiml.Voice
// for verbs it does not know.
func (s *Server) writeTwiML(w http.ResponseWriter, verbs []twiml.Element) {
	bp := twimlBufs.Get().(*[]byte)
	defer putTwiMLBuf(bp)
	doc, ok := appendTwiML((*bp)[:0], verbs)
	*bp = doc // keep what it grew to
	if !ok {
		d, err := twiml.Voice(verbs)
		if err != nil {
			http.Error(w, "twiml", http.StatusInternalServerError)
			return
		}
		doc = []byte(d)
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(doc) // the ResponseWriter copies (net/http's buffer): the buffer is free after
}

// twimlBufs holds the buffers documents are rendered into: a turn's TwiML
// is 1–3 KiB, and a fresh buffer per answer was the largest allocation of
// a gather turn.
var twimlBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// putTwiMLBuf returns a buffer unless a rare large document grew it.
func putTwiMLBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		twimlBufs.Put(bp)
	}
}

func (s *Server) sayVerb(st *State, text string) twiml.Element {
	return sayIn(st.Lang, text)
}

// sayIn speaks text with the language's own voice.
func sayIn(code spoken.Lang, text string) *twiml.VoiceSay {
	l := lookupLang(code)
	return &twiml.VoiceSay{Message: text, Language: l.Tag, Voice: l.Voice}
}

// transferVerbs hands the caller to a person. No PHI: the reason stays in
// our logs and metrics.
func (s *Server) transferVerbs() []twiml.Element {
	return []twiml.Element{&twiml.VoiceDial{Number: s.cfg.TransferNumber}}
}

// render turns the current state into TwiML for the gather front end.
func (s *Server) render(st *State) []twiml.Element {
	turn := strconv.Itoa(st.Turn)
	if st.Pending != nil {
		return []twiml.Element{
			s.sayVerb(st, s.eng.say(st, prompts.Hold, nil)),
			&twiml.VoiceRedirect{Url: "/twilio/continue?turn=" + turn, Method: http.MethodPost},
		}
	}
	o := st.Out
	switch o.End {
	case endTransfer:
		return append([]twiml.Element{s.sayVerb(st, o.Text())}, s.transferVerbs()...)
	case endHangup:
		return []twiml.Element{s.sayVerb(st, o.Text()), &twiml.VoiceHangup{}}
	}
	action := "/twilio/gather?turn=" + turn
	inner := []twiml.Element{s.sayVerb(st, o.Text())}
	for _, a := range o.Offer {
		inner = append(inner, sayIn(a.Lang, a.Text))
	}
	g := &twiml.VoiceGather{
		Input:               "dtmf speech",
		Action:              action,
		Method:              http.MethodPost,
		Timeout:             "5",
		SpeechTimeout:       "auto",
		FinishOnKey:         "#",
		BargeIn:             "true", // the caller may answer over any prompt
		Language:            langTag(st.Lang),
		Hints:               o.Expect.Hints,
		ActionOnEmptyResult: "true",
		InnerElements:       inner,
	}
	if o.Expect.NumDigits > 0 {
		g.NumDigits = strconv.Itoa(o.Expect.NumDigits)
	}
	// A Gather that ends without input falls through: always redirect.
	return []twiml.Element{g, &twiml.VoiceRedirect{Url: action, Method: http.MethodPost}}
}

func (s *Server) callInfo(form url.Values) CallInfo {
	sid := form.Get("CallSid")
	return CallInfo{CallSid: sid, From: callerPhone(form.Get("From")), To: form.Get("To"), StirVerstat: form.Get("StirVerstat"),
		CallRef: s.callRef(sid), Lang: spoken.English}
}

func (s *Server) storeFailed(w http.ResponseWriter, sid string, err error) {
	s.log.Error("call state", "call", s.pseudo("call", sid), "err", errKind(err), "err_kind", errKind(err), "error", err.Error())
	// The call ends here without a state write to count it: count it now.
	s.m.calls.WithLabelValues(OutcomeTransferred, "store_error", s.cfg.Frontend).Inc()
	s.m.transfers.WithLabelValues("store_error", s.cfg.Frontend).Inc()
	// The caller hears why, then a person takes over (the call state, and
	// so the caller's language, may be what could not be read or written).
	st := &State{Lang: spoken.English}
	text := s.eng.say(st, prompts.Apology, nil) + " " + s.eng.say(st, prompts.Transfer, nil)
	s.writeTwiML(w, append([]twiml.Element{s.sayVerb(st, text)}, s.transferVerbs()...))
}

func (s *Server) handleVoice(w http.ResponseWriter, r *http.Request) {
	form := s.parseSigned(w, r)
	if form == nil {
		return
	}
	info := s.callInfo(form)
	st, nonce, err := s.newCall(r.Context(), info)
	if err != nil {
		s.storeFailed(w, info.CallSid, err)
		return
	}
	if s.cfg.Frontend == FrontendRelay {
		if nonce == "" {
			// A repeated /twilio/voice: a new nonce only while no socket has
			// used one (relaygrant.go).
			if nonce, err = s.reissueRelayNonce(r.Context(), info.CallSid); err != nil {
				s.storeFailed(w, info.CallSid, err)
				return
			}
		}
		s.writeTwiML(w, s.connectVerbs(st, nonce))
		return
	}
	s.writeTwiML(w, s.render(st))
}

// handleGather applies one caller turn. A retried delivery (same
// I-Twilio-Idempotency-Token, or a turn number that is no longer current)
// gets the current TwiML without advancing the dialog.
func (s *Server) handleGather(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	form := s.parseSigned(w, r)
	if form == nil {
		return
	}
	sid := form.Get("CallSid")
	turn, _ := strconv.Atoi(queryGet(r.URL.RawQuery, "turn"))
	idem := r.Header.Get("I-Twilio-Idempotency-Token")
	in := Input{Speech: form.Get("SpeechResult"), Digits: form.Get("Digits")}
	if c, err := strconv.ParseFloat(form.Get("Confidence"), 64); err == nil && c > 0 && c <= 1 {
		in.Confidence = c
	}
	applied := false
	st, err := s.update(r.Context(), sid, func(c *session.Call, st *State) bool {
		applied = false
		if c.Ended || st.Turn != turn || (idem != "" && idem == st.LastIdem) {
			return false
		}
		if !s.eng.handle(st, in) {
			return false
		}
		st.LastIdem = idem
		applied = true
		return true
	})
	if err != nil {
		s.storeFailed(w, sid, err)
		return
	}
	if applied {
		s.m.turns.WithLabelValues(FrontendGather).Inc()
	}
	if st.Pending != nil {
		if s.awaitJob(sid, s.cfg.HoldAfter) {
			if _, st2, err := s.load(r.Context(), sid); err == nil {
				st = st2
			}
		}
	}
	s.writeTwiML(w, s.render(st))
	s.m.turnTime.WithLabelValues(FrontendGather).Observe(time.Since(start).Seconds())
}

// handleContinue answers the Redirect after a hold phrase: the job's result
// if it is in the store by now, otherwise another short hold phrase; a job
// whose owner vanished is handed to a person.
func (s *Server) handleContinue(w http.ResponseWriter, r *http.Request) {
	form := s.parseSigned(w, r)
	if form == nil {
		return
	}
	sid := form.Get("CallSid")
	ctx := r.Context()
	_, st, err := s.load(ctx, sid)
	if err != nil {
		s.storeFailed(w, sid, err)
		return
	}
	if st.Pending != nil {
		st, err = s.waitPending(ctx, sid, st)
		if err != nil {
			s.storeFailed(w, sid, err)
			return
		}
	}
	if st.Pending != nil {
		if s.now().Sub(st.Pending.Started) > s.cfg.GiveUpAfter+staleJob {
			st, err = s.update(ctx, sid, func(_ *session.Call, st *State) bool {
				if st.Pending == nil {
					return false
				}
				job := *st.Pending
				s.eng.finish(st, &job, jobResult{Err: context.DeadlineExceeded})
				return true
			})
			if err != nil {
				s.storeFailed(w, sid, err)
				return
			}
		} else {
			s.writeTwiML(w, []twiml.Element{
				s.sayVerb(st, s.eng.say(st, prompts.StillWorking, nil)),
				&twiml.VoiceRedirect{Url: "/twilio/continue?turn=" + strconv.Itoa(st.Turn), Method: http.MethodPost},
			})
			return
		}
	}
	s.writeTwiML(w, s.render(st))
}

// waitPending waits up to continueWait for the pending job: on the local
// driver when this instance runs it, else by polling the shared store.
func (s *Server) waitPending(ctx context.Context, sid string, st *State) (*State, error) {
	s.mu.Lock()
	run := s.inflight[sid]
	s.mu.Unlock()
	deadline := time.NewTimer(continueWait)
	defer deadline.Stop()
	if run != nil {
		select {
		case <-run.done:
		case <-deadline.C:
			return st, nil
		case <-ctx.Done():
			return st, ctx.Err()
		}
		_, st, err := s.load(ctx, sid)
		return st, err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			return st, nil
		case <-ctx.Done():
			return st, ctx.Err()
		case <-tick.C:
		}
		_, cur, err := s.load(ctx, sid)
		if err != nil {
			return st, err
		}
		if st = cur; st.Pending == nil {
			return st, nil
		}
	}
}

// finalStatuses are CallStatus values after which the call is gone.
var finalStatuses = map[string]bool{"completed": true, "busy": true, "failed": true, "no-answer": true, "canceled": true}

// handleStatus ends the call on its final status callback: tokens revoked,
// outcome caller_hung_up unless one was already reached.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	form := s.parseSigned(w, r)
	if form == nil {
		return
	}
	sid := form.Get("CallSid")
	if !finalStatuses[form.Get("CallStatus")] {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := s.Driver().Hangup(r.Context(), sid); err != nil {
		s.log.Error("status callback", "call", s.pseudo("call", sid), "err", errKind(err))
		http.Error(w, "store", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
