package ivr

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/voiceauth/voiceauth/ivr/spoken"
	"github.com/voiceauth/voiceauth/prompts"
)

// Outcomes: every call ends with exactly one of these (ARCHITECTURE.md).
const (
	OutcomeAuthenticated = "authenticated"
	OutcomeTransferred   = "transferred"
	OutcomeHungUp        = "caller_hung_up"
	OutcomeFailed        = "failed"
)

// Transfer reason codes (handoff data and metrics; never PHI).
const (
	ReasonKBAFailed     = "kba_failed"
	ReasonCallerAsked   = "caller_asked"
	ReasonOTPFailed     = "otp_failed"
	ReasonBackendDown   = "backend_down"
	ReasonIdentityCheck = "identity_check_failed"
	ReasonNoInput       = "no_input"
	ReasonNoMatch       = "no_match"
)

type phase string

const (
	phaseName          phase = "name"
	phaseBirthdate     phase = "birthdate"
	phaseConfirmDate   phase = "confirm_date" // "Was that March 3rd, 1980?" when recognition was uncertain
	phaseSSN4          phase = "ssn4"
	phaseOTP           phase = "otp"
	phaseMenu          phase = "menu"
	phaseRefillPick    phase = "refill_pick"
	phaseRefillConfirm phase = "refill_confirm"
	phaseDone          phase = "done"
)

// End kinds of an Output.
const (
	endTransfer = "transfer"
	endHangup   = "hangup"
)

// Output is what the caller hears next and what input is expected. Say are
// statements; Question is the part `*` repeats and re-prompts re-ask.
type Output struct {
	Say      []string `json:"say,omitempty"`
	Question string   `json:"q,omitempty"`
	Expect   expect   `json:"expect,omitempty"`
	End      string   `json:"end,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	// Offer follows the question: the other languages' offers, each spoken
	// by a voice of its own language ("Para español, oprima dos.").
	Offer []Aside `json:"offer,omitempty"`
}

// Aside is a sentence in another language than the call's.
type Aside struct {
	Lang spoken.Lang `json:"lang"`
	Text string      `json:"text"`
}

// Text is everything the caller hears for this output, in order.
func (o Output) Text() string {
	parts := append(append([]string(nil), o.Say...), o.Question)
	return strings.TrimSpace(strings.Join(parts, " "))
}

// expect describes the input the current question waits for.
type expect struct {
	NumDigits int    `json:"n,omitempty"`
	Hints     string `json:"hints,omitempty"`
}

// Job is one backend call the dialog is waiting for.
type Job struct {
	ID      int            `json:"id"`
	Kind    string         `json:"kind"` // jobSubmit or jobTool
	Tool    string         `json:"tool,omitempty"`
	Args    map[string]any `json:"args,omitempty"`
	Purpose string         `json:"purpose,omitempty"`
	StepUp  bool           `json:"step_up,omitempty"`
	Resend  bool           `json:"resend,omitempty"`
	Started time.Time      `json:"started"`
}

// maxReverify bounds re-verifications per call; maxStepUps the step-ups
// on one proof (the challenge client's own bound per flow).
const (
	maxReverify = 3
	maxStepUps  = 2
)

const (
	jobSubmit = "submit"
	jobTool   = "tool"
)

// jobResult is a finished Job, as plain data so it can be applied anywhere.
type jobResult struct {
	Step AuthStep
	Flow []byte
	Data json.RawMessage
	Err  error
}

type medication struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Dose        string `json:"dose"`
	Refillable  bool   `json:"refillable"`
	RefillsLeft int    `json:"refills_left"`
}

// State is the whole dialog state of one call, persisted (sealed) in
// session.Call.State after every step.
type State struct {
	Call          CallInfo     `json:"call"`
	Phase         phase        `json:"phase"`
	Lang          spoken.Lang  `json:"lang"`
	LangOffer     bool         `json:"lang_offer,omitempty"`
	Answers       Answers      `json:"answers"`
	Flow          []byte       `json:"flow,omitempty"`
	Turn          int          `json:"turn"`
	NoInput       int          `json:"no_input,omitempty"`
	NoMatch       int          `json:"no_match,omitempty"`
	StepUp        bool         `json:"step_up,omitempty"`
	SteppedUp     bool         `json:"stepped_up,omitempty"`
	StepUps       int          `json:"step_ups,omitempty"`   // step-ups completed on the current proof
	Reverified    int          `json:"reverified,omitempty"` // re-verifications this call (ErrReverify)
	OTPResent     bool         `json:"otp_resent,omitempty"`
	AfterAuth     *Job         `json:"after_auth,omitempty"`
	Carry         []string     `json:"carry,omitempty"`
	Meds          []medication `json:"meds,omitempty"`
	Pick          int          `json:"pick,omitempty"`
	Listed        string       `json:"listed,omitempty"` // the summary last read: "details" reads it in full
	Out           Output       `json:"out"`
	Pending       *Job         `json:"pending,omitempty"`
	JobSeq        int          `json:"job_seq,omitempty"`
	Authenticated bool         `json:"authenticated,omitempty"`
	Outcome       string       `json:"outcome,omitempty"`
	Reason        string       `json:"reason,omitempty"`
	LastIdem      string       `json:"idem,omitempty"`
	Reconnects    int          `json:"reconnects,omitempty"`
	Relay         *relayGrant  `json:"relay,omitempty"` // relay admission (relaygrant.go)
}

// Input is one caller turn: speech, keypad digits, or neither (silence).
type Input struct {
	Speech string
	Digits string
	// Confidence is the recognizer's confidence in Speech (0..1); 0 means
	// not reported (ConversationRelay reports none).
	Confidence float64
}

// lowConfidence: a date heard with less confidence than this is confirmed
// with a question before it is used.
const lowConfidence = 0.5

// engine holds the pure dialog rules; it never does I/O.
type engine struct {
	now func() time.Time
}

func (e *engine) say(st *State, id prompts.ID, data any) string {
	s, err := prompts.Render(string(st.Lang), id, data)
	if err != nil {
		// Templates are tested in both languages; this is a programming error.
		panic(err)
	}
	return s
}

// start opens the dialog. preauth skips KBA (the host registered a subject token).
func (e *engine) start(st *State, call CallInfo, preauth bool) {
	st.Call = call
	st.Lang = call.Lang
	if st.Lang == "" {
		st.Lang = spoken.English
	}
	if preauth {
		st.Authenticated = true
		st.Outcome = OutcomeAuthenticated
		st.Phase = phaseMenu
		st.Out = Output{Say: []string{e.say(st, prompts.Preverified, nil)}, Question: e.say(st, prompts.Menu, nil), Expect: e.expectIn(st, phaseMenu)}
		return
	}
	st.Phase = phaseName
	st.LangOffer = true
	st.Out = Output{Say: []string{e.say(st, prompts.Greeting, nil)}, Question: e.say(st, prompts.AskName, nil), Expect: e.expectFor(phaseName)}
	e.offer(st)
}

// offer adds the language offers to a question at the name prompt, until
// the caller has answered it or chosen a language, re-prompts included.
func (e *engine) offer(st *State) {
	st.Out.Offer = nil
	if !st.LangOffer || st.Phase != phaseName || st.Out.End != "" || st.Pending != nil {
		return
	}
	for _, l := range languages {
		if l.Code == st.Lang {
			continue
		}
		if s, err := prompts.Render(string(l.Code), prompts.LangOffer, nil); err == nil {
			st.Out.Offer = append(st.Out.Offer, Aside{Lang: l.Code, Text: s})
		}
	}
}

var menuExpect = expect{NumDigits: 1, Hints: "appointments,medications,refill,agent,goodbye"}

func (e *engine) expectFor(p phase) expect {
	switch p {
	case phaseName:
		// Keys here are the language choice, 0 or *: one key ends the entry.
		return expect{NumDigits: 1}
	case phaseBirthdate:
		return expect{NumDigits: 8} // MMDDYYYY, as the prompt says
	case phaseSSN4:
		return expect{NumDigits: 4, Hints: "$OOV_CLASS_DIGIT_SEQUENCE"}
	case phaseOTP:
		return expect{NumDigits: 6}
	case phaseMenu:
		return menuExpect
	case phaseRefillPick:
		return expect{NumDigits: 1}
	case phaseRefillConfirm, phaseConfirmDate:
		return expect{NumDigits: 1, Hints: "yes,no"}
	}
	return expect{}
}

// expectIn is expectFor with the menu words of the call's language as ASR hints.
func (e *engine) expectIn(st *State, p phase) expect {
	x := e.expectFor(p)
	if p == phaseMenu {
		x.Hints = lookupLang(st.Lang).MenuHints
	}
	return x
}

func (e *engine) ask(st *State, p phase, id prompts.ID, data any, say ...string) {
	st.Phase = p
	st.NoInput, st.NoMatch = 0, 0
	st.Out = Output{Say: append(st.Carry, say...), Question: e.say(st, id, data), Expect: e.expectIn(st, p)}
	st.Carry = nil
}

func (e *engine) transfer(st *State, reason string, prefix ...string) {
	st.Phase = phaseDone
	st.Answers = Answers{}
	st.Out = Output{Say: append(append(st.Carry, prefix...), e.say(st, prompts.Transfer, nil)), End: endTransfer, Reason: reason}
	st.Carry = nil
	if st.Outcome == "" {
		st.Outcome, st.Reason = OutcomeTransferred, reason
	}
}

func (e *engine) schedule(st *State, j Job) {
	st.JobSeq++
	j.ID = st.JobSeq
	j.Started = e.now()
	st.Pending = &j
}

// reprompt handles silence or an answer that did not parse: at most two
// re-prompts of each kind, then a transfer.
func (e *engine) reprompt(st *State, silent bool, why string) {
	n, reason, prefix := &st.NoMatch, ReasonNoMatch, why
	if silent {
		n, reason, prefix = &st.NoInput, ReasonNoInput, e.say(st, prompts.NoInput, nil)
	}
	*n++
	if *n > 2 {
		e.transfer(st, reason)
		return
	}
	if prefix == "" {
		prefix = e.say(st, prompts.NoMatch, nil)
	}
	st.Out = Output{Say: []string{prefix}, Question: st.Out.Question, Expect: st.Out.Expect}
}

// handle applies one caller turn. It reports false when the state does not
// take input (a job is pending or the call is over) and nothing changed.
func (e *engine) handle(st *State, in Input) bool {
	if !e.turn(st, in) {
		return false
	}
	if st.Phase != phaseName {
		st.LangOffer = false
	}
	e.offer(st)
	return true
}

func (e *engine) turn(st *State, in Input) bool {
	if st.Pending != nil || st.Out.End != "" || st.Phase == phaseDone || st.Phase == "" {
		return false
	}
	st.Turn++
	text := strings.TrimSpace(in.Speech)
	digits := strings.TrimSuffix(strings.TrimSpace(in.Digits), "#")
	if text == "" && digits == "" {
		e.reprompt(st, true, "")
		return true
	}
	intent := spoken.IntentNone
	if text != "" {
		intent = spoken.DetectIntent(text, st.Lang)
	}
	if digits == "0" || intent == spoken.IntentAgent {
		e.transfer(st, ReasonCallerAsked)
		return true
	}
	if text != "" && digits == "" && e.command(st, text, intent) {
		return true
	}
	if digits == "*" || intent == spoken.IntentRepeat {
		st.Out = Output{Question: st.Out.Question, Expect: st.Out.Expect}
		return true
	}
	if st.LangOffer && st.Phase == phaseName {
		if l := chosenLang(in); l != nil {
			if l.Code != st.Lang {
				st.LangOffer = false
				st.Lang = l.Code
				e.ask(st, phaseName, prompts.AskName, nil)
				return true
			}
			if digits != "" { // the key of the language already spoken: just ask again
				e.ask(st, phaseName, prompts.AskName, nil)
				return true
			}
		}
	}
	switch st.Phase {
	case phaseName, phaseBirthdate, phaseSSN4:
		if digits != "" && st.Phase == phaseName {
			e.reprompt(st, false, e.say(st, prompts.NeedName, nil))
			return true
		}
		why := e.answerKBA(st, st.Phase, Input{Speech: text, Digits: digits, Confidence: in.Confidence}, digits != "")
		switch {
		case why == spoken.OK:
		case intent == spoken.IntentGoodbye:
			e.goodbye(st)
		default:
			n := map[phase]int{phaseSSN4: 4}[st.Phase]
			e.reprompt(st, false, e.reason(st, why, n))
		}
	case phaseConfirmDate:
		e.confirmDate(st, text, digits)
	case phaseOTP:
		switch intent {
		case spoken.IntentGoodbye:
			e.goodbye(st)
			return true
		case spoken.IntentNoCode:
			if !st.OTPResent {
				st.OTPResent = true
				e.schedule(st, Job{Kind: jobSubmit, StepUp: st.StepUp, Resend: true})
				return true
			}
			e.transfer(st, ReasonOTPFailed)
			return true
		case spoken.IntentCantReceive:
			e.transfer(st, ReasonCallerAsked)
			return true
		}
		// The code is keypad only: a spoken code would sit in speech transcripts.
		v, why := spoken.Digits(digits, 6, st.Lang)
		if digits == "" {
			why = spoken.NeedDigits
		}
		if why != spoken.OK {
			e.reprompt(st, false, e.reason(st, why, 6))
			return true
		}
		st.Answers.OTP = v
		e.schedule(st, Job{Kind: jobSubmit, StepUp: st.StepUp})
	case phaseMenu:
		e.menu(st, intent, digits)
	case phaseRefillPick:
		pick := -1
		if n, err := strconv.Atoi(digits); err == nil && n >= 1 && n <= len(st.Meds) {
			pick = n - 1
		}
		for i, m := range st.Meds {
			if text != "" && strings.Contains(strings.ToLower(text), strings.ToLower(m.Name)) {
				pick = i
			}
		}
		if pick < 0 {
			e.reprompt(st, false, "")
			return true
		}
		st.Pick = pick
		e.ask(st, phaseRefillConfirm, prompts.RefillConfirm, map[string]any{"Name": st.Meds[pick].Name})
	case phaseRefillConfirm:
		var yes, ok bool
		switch digits {
		case "1":
			yes, ok = true, true
		case "2":
			yes, ok = false, true
		case "":
			yes, ok = spoken.YesNo(text, st.Lang)
		}
		if !ok {
			e.reprompt(st, false, e.say(st, prompts.YesOrNo, nil))
			return true
		}
		if !yes {
			e.ask(st, phaseMenu, prompts.MenuAgain, nil, e.say(st, prompts.RefillCancelled, nil))
			return true
		}
		m := st.Meds[st.Pick]
		e.schedule(st, Job{Kind: jobTool, Tool: "request_refill", Args: map[string]any{"medication_id": m.ID}, Purpose: "refill"})
	}
	return true
}

// reason turns a normalizer's reason into the specific re-prompt sentence.
func (e *engine) reason(st *State, why spoken.Reason, n int) string {
	switch why {
	case spoken.NeedMonthDayYear:
		return e.say(st, prompts.NeedMonthDayYear, nil)
	case spoken.InvalidDate:
		return e.say(st, prompts.InvalidDate, nil)
	case spoken.NeedDigits:
		return e.say(st, prompts.NeedDigits, map[string]any{"N": n})
	case spoken.NeedName:
		return e.say(st, prompts.NeedName, nil)
	case spoken.NoInput:
		return e.say(st, prompts.NoInput, nil)
	}
	return e.say(st, prompts.NoMatch, nil)
}

// nextKBA asks the next missing answer, or submits when all are present.
func (e *engine) nextKBA(st *State, say ...string) {
	switch {
	case st.Answers.Name == "":
		e.ask(st, phaseName, prompts.AskName, nil, say...)
	case st.Answers.Birthdate == "":
		e.ask(st, phaseBirthdate, prompts.AskBirthdate, nil, say...)
	case st.Answers.SSNLast4 == "":
		e.ask(st, phaseSSN4, prompts.AskSSN4, nil, say...)
	default:
		st.Carry = append(st.Carry, say...)
		e.schedule(st, Job{Kind: jobSubmit})
	}
}

func (e *engine) menu(st *State, intent spoken.Intent, digits string) {
	switch {
	case intent == spoken.IntentAppointments || digits == "1":
		e.schedule(st, Job{Kind: jobTool, Tool: "list_appointments", Args: map[string]any{}, Purpose: "appointments"})
	case intent == spoken.IntentMedications || digits == "2":
		e.schedule(st, Job{Kind: jobTool, Tool: "list_medications", Args: map[string]any{}, Purpose: "medications"})
	case intent == spoken.IntentRefill || digits == "3":
		e.schedule(st, Job{Kind: jobTool, Tool: "list_medications", Args: map[string]any{}, Purpose: "refill_list"})
	case intent == spoken.IntentGoodbye || digits == "9":
		e.goodbye(st)
	case intent == spoken.IntentDetails && st.Listed != "":
		e.schedule(st, Job{Kind: jobTool, Tool: "list_" + st.Listed, Args: map[string]any{}, Purpose: st.Listed + "_details"})
	case intent == spoken.IntentHelp:
		e.ask(st, phaseMenu, prompts.Menu, nil, e.say(st, prompts.Help, nil))
	default:
		e.reprompt(st, false, "")
	}
}

// finish applies a finished job to the state. It may schedule another job
// (a tool call after a step-up).
func (e *engine) finish(st *State, j *Job, r jobResult) {
	st.Pending = nil
	if j.Kind == jobSubmit {
		e.finishSubmit(st, j, r)
		return
	}
	e.finishTool(st, j, r)
}

func (e *engine) finishSubmit(st *State, j *Job, r jobResult) {
	if r.Err != nil {
		e.transfer(st, ReasonBackendDown, e.say(st, prompts.Apology, nil))
		return
	}
	st.Flow = r.Flow
	otpStage := st.Phase == phaseOTP || j.StepUp
	failReason := ReasonKBAFailed
	if otpStage {
		failReason = ReasonOTPFailed
	}
	switch r.Step.Kind {
	case AuthAuthenticated:
		st.Answers = Answers{}
		st.Authenticated = true
		if j.StepUp {
			st.SteppedUp = true
			st.StepUps++
		}
		st.StepUp = false
		if st.Outcome == "" {
			st.Outcome = OutcomeAuthenticated
		}
		if !j.StepUp {
			// A step-up caller was told they are verified already.
			st.Carry = append(st.Carry, e.say(st, prompts.Verified, nil))
		}
		if next := st.AfterAuth; next != nil {
			st.AfterAuth = nil
			e.schedule(st, *next)
			return
		}
		e.ask(st, phaseMenu, prompts.Menu, nil)
	case AuthNeedMore:
		for _, n := range r.Step.Need {
			switch n {
			case "kba_name":
				st.Answers.Name = ""
			case "kba_birthdate":
				st.Answers.Birthdate = ""
			case "kba_ssn_last4":
				st.Answers.SSNLast4 = ""
			}
		}
		if st.Answers.Name != "" && st.Answers.Birthdate != "" && st.Answers.SSNLast4 != "" {
			e.transfer(st, ReasonBackendDown, e.say(st, prompts.Apology, nil)) // the AS asked for nothing we know
			return
		}
		e.nextKBA(st)
	case AuthRetryKBA:
		st.Answers = Answers{}
		e.ask(st, phaseName, prompts.AskName, nil, e.say(st, prompts.RetryKBA, nil))
	case AuthNeedOTP:
		st.Answers = Answers{}
		id := prompts.OTPSent
		switch {
		case j.Resend:
			id = prompts.OTPResent
		case j.StepUp && st.Authenticated:
			id = prompts.OTPStepUp
		}
		e.ask(st, phaseOTP, id, nil)
	case AuthRetryOTP:
		st.Answers.OTP = ""
		e.ask(st, phaseOTP, prompts.OTPRetry, nil)
	case AuthDenied, AuthTransfer:
		e.transfer(st, failReason)
	default:
		e.transfer(st, ReasonBackendDown, e.say(st, prompts.Apology, nil))
	}
}

func (e *engine) finishTool(st *State, j *Job, r jobResult) {
	switch {
	case errors.Is(r.Err, ErrStepUp):
		// Each step-up asks for what this tool's refusal named (a scope, a
		// stronger proof), so a later tool may need another; bounded, so a
		// server that is never satisfied ends in "can't do that".
		if st.StepUps >= maxStepUps {
			e.ask(st, phaseMenu, prompts.MenuAgain, nil, e.say(st, prompts.ToolDenied, nil))
			return
		}
		st.StepUp = true
		again := *j
		st.AfterAuth = &again
		e.schedule(st, Job{Kind: jobSubmit, StepUp: true})
		return
	case errors.Is(r.Err, ErrReverify):
		// A fresh proof: the step-up of the token it replaces is spent, and
		// a step-up after it is allowed again. Bounded: a server that keeps
		// asking gets the caller a person.
		if st.Reverified >= maxReverify {
			e.transfer(st, ReasonBackendDown, e.say(st, prompts.Apology, nil))
			return
		}
		st.Reverified++
		st.SteppedUp, st.StepUps = false, 0
		again := *j
		st.AfterAuth = &again
		st.Carry = append(st.Carry, e.say(st, prompts.Reverify, nil))
		e.schedule(st, Job{Kind: jobSubmit, StepUp: true})
		return
	case errors.Is(r.Err, ErrToolDenied):
		e.ask(st, phaseMenu, prompts.MenuAgain, nil, e.say(st, prompts.ToolDenied, nil))
		return
	case errors.Is(r.Err, ErrIdentity):
		e.transfer(st, ReasonIdentityCheck, e.say(st, prompts.Apology, nil))
		return
	case r.Err != nil:
		e.transfer(st, ReasonBackendDown, e.say(st, prompts.Apology, nil))
		return
	}
	switch j.Purpose {
	case "appointments", "appointments_details":
		e.speakAppointments(st, r.Data, j.Purpose != "appointments")
	case "medications", "medications_details":
		e.speakMedications(st, r.Data, j.Purpose != "medications")
	case "refill_list":
		e.offerRefill(st, r.Data)
	case "refill":
		var res struct {
			Status, Medication string
			ReadyOn            string `json:"ready_on"`
		}
		if err := json.Unmarshal(r.Data, &res); err != nil || res.Status != "requested" {
			e.ask(st, phaseMenu, prompts.MenuAgain, nil, e.say(st, prompts.ToolFailed, nil))
			return
		}
		done := e.say(st, prompts.RefillDone, map[string]any{"Name": res.Medication, "ReadyOn": spokenDate(res.ReadyOn, st.Lang)})
		st.Meds = nil
		e.ask(st, phaseMenu, prompts.MenuAgain, nil, done)
	default:
		e.transfer(st, ReasonBackendDown, e.say(st, prompts.Apology, nil))
	}
}

// speakAppointments reads the count and the next appointment; the rest
// only when the caller asks for details.
func (e *engine) speakAppointments(st *State, data json.RawMessage, details bool) {
	var res struct {
		Appointments []struct {
			ID, Start, Clinician, Department, Location string
		}
	}
	if err := json.Unmarshal(data, &res); err != nil {
		e.ask(st, phaseMenu, prompts.MenuAgain, nil, e.say(st, prompts.ToolFailed, nil))
		return
	}
	var say []string
	if len(res.Appointments) == 0 {
		say = append(say, e.say(st, prompts.NoAppointments, nil))
	} else {
		say = append(say, e.say(st, prompts.AppointmentCount, map[string]any{"N": len(res.Appointments)}))
	}
	limit := 1
	if details {
		limit = 5 // keep the turn short even then
	}
	for i, a := range res.Appointments {
		if i == limit {
			break
		}
		id := prompts.AppointmentFirst
		if i > 0 {
			id = prompts.AppointmentNext
		}
		say = append(say, e.say(st, id, map[string]any{"When": spokenDateTime(a.Start, st.Lang), "Clinician": a.Clinician,
			"Department": localTerm(a.Department, st.Lang)}))
	}
	st.Listed = ""
	if !details && len(res.Appointments) > 1 {
		st.Listed = "appointments"
		say = append(say, e.say(st, prompts.DetailsHint, map[string]any{"Doses": false}))
	}
	e.ask(st, phaseMenu, prompts.MenuAgain, nil, say...)
}

func decodeMeds(data json.RawMessage) ([]medication, error) {
	var res struct {
		Medications []medication `json:"medications"`
	}
	err := json.Unmarshal(data, &res)
	return res.Medications, err
}

// speakMedications names the medications; doses only on request.
func (e *engine) speakMedications(st *State, data json.RawMessage, details bool) {
	meds, err := decodeMeds(data)
	if err != nil {
		e.ask(st, phaseMenu, prompts.MenuAgain, nil, e.say(st, prompts.ToolFailed, nil))
		return
	}
	st.Listed = ""
	var say []string
	switch {
	case len(meds) == 0:
		say = []string{e.say(st, prompts.NoMedications, nil)}
	case details:
		for _, m := range meds {
			say = append(say, e.say(st, prompts.MedicationItem, map[string]any{"Name": m.Name, "Dose": localTerm(m.Dose, st.Lang)}))
		}
	default:
		names := make([]string, len(meds))
		for i, m := range meds {
			names[i] = m.Name
		}
		st.Listed = "medications"
		say = []string{e.say(st, prompts.MedicationCount, map[string]any{"N": len(meds), "Names": names}),
			e.say(st, prompts.DetailsHint, map[string]any{"Doses": true})}
	}
	e.ask(st, phaseMenu, prompts.MenuAgain, nil, say...)
}

type refillOption struct {
	Key  int
	Name string
}

func (e *engine) offerRefill(st *State, data json.RawMessage) {
	meds, err := decodeMeds(data)
	if err != nil {
		e.ask(st, phaseMenu, prompts.MenuAgain, nil, e.say(st, prompts.ToolFailed, nil))
		return
	}
	st.Meds = st.Meds[:0]
	for _, m := range meds {
		if m.Refillable && m.RefillsLeft > 0 {
			st.Meds = append(st.Meds, m)
		}
	}
	switch len(st.Meds) {
	case 0:
		e.ask(st, phaseMenu, prompts.MenuAgain, nil, e.say(st, prompts.NoRefillable, nil))
	case 1:
		st.Pick = 0
		e.ask(st, phaseRefillConfirm, prompts.RefillConfirm, map[string]any{"Name": st.Meds[0].Name})
	default:
		opts := make([]refillOption, 0, len(st.Meds))
		for i, m := range st.Meds {
			opts = append(opts, refillOption{i + 1, m.Name})
		}
		e.ask(st, phaseRefillPick, prompts.RefillPick, map[string]any{"Options": opts})
	}
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return strconv.Itoa(n) + suffix
}

// spokenDate renders YYYY-MM-DD for speech ("March 3rd, 1980"); anything
// unparsable is returned unchanged.
func spokenDate(ymd string, lang spoken.Lang) string {
	t, err := time.Parse(time.DateOnly, ymd)
	if err != nil {
		return ymd
	}
	return renderDate(prompts.SpokenDate, t, lang)
}

// spokenDateTime renders an RFC 3339 time in its own offset (the clinic's
// local time): "Wednesday, December 2nd at 9:30 AM".
func spokenDateTime(rfc3339 string, lang spoken.Lang) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	return renderDate(prompts.SpokenDateTime, t, lang)
}

func renderDate(id prompts.ID, t time.Time, lang spoken.Lang) string {
	l := lookupLang(lang)
	s, err := prompts.Render(string(lang), id, map[string]any{
		"Weekday": l.Weekdays[t.Weekday()], "Month": l.Months[t.Month()-1], "Day": t.Day(), "Ordinal": ordinal(t.Day()),
		"Year": t.Year(), "Time12": t.Format("3:04 PM"), "Time24": t.Format("15:04"),
		"Hour": t.Hour(), "Minute": t.Format("04"),
	})
	if err != nil {
		return t.Format(time.DateOnly)
	}
	return s
}

// SpokenDate renders a calendar date the way the agent says it to a caller of
// language lang ("en", "es"): "November 27th, 2026". Scenario expectations use
// it so they can be written relative to the clock ({{date +2d}}).
func SpokenDate(t time.Time, lang string) string {
	return renderDate(prompts.SpokenDate, t, spoken.Lang(lang))
}
