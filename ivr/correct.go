package ivr

import (
	"github.com/voiceauth/voiceauth/ivr/spoken"
	"github.com/voiceauth/voiceauth/prompts"
)

// Corrections: a caller who made a mistake, or was misheard, fixes it
// without spending a failed attempt. Nothing here reaches the AS; only a
// complete set of answers is submitted (nextKBA).

// answerKBA reads the answer to a KBA question p and, when it parses,
// stores it and moves on. Speech may hold a self-correction ("four five six
// eight, sorry, four five six seven"): its readings are tried in order and
// the first that parses wins. A date that was corrected, or heard with low
// confidence, is confirmed with a question; a corrected name or SSN-4 is
// simply used (neither is ever read back).
func (e *engine) answerKBA(st *State, p phase, in Input, keyed bool) spoken.Reason {
	readings, corrected := []string{in.Digits}, false
	if !keyed {
		readings, corrected = spoken.Readings(in.Speech, st.Lang)
	}
	first := spoken.OK
	for i, r := range readings {
		v, why := e.parseKBA(st, p, r)
		if why != spoken.OK {
			if i == 0 {
				first = why
			}
			continue
		}
		switch p {
		case phaseName:
			st.Answers.Name = v
			e.nextKBA(st)
		case phaseBirthdate:
			st.Answers.Birthdate = v
			if corrected || (in.Confidence > 0 && in.Confidence < lowConfidence) {
				e.ask(st, phaseConfirmDate, prompts.ConfirmDateQ, map[string]any{"Date": spokenDate(v, st.Lang)})
				return spoken.OK
			}
			e.nextKBA(st, e.say(st, prompts.ConfirmDate, map[string]any{"Date": spokenDate(v, st.Lang)}))
		case phaseSSN4:
			st.Answers.SSNLast4 = v
			e.nextKBA(st)
		}
		return spoken.OK
	}
	return first
}

func (e *engine) parseKBA(st *State, p phase, input string) (string, spoken.Reason) {
	switch p {
	case phaseName:
		return spoken.Name(input, st.Lang)
	case phaseBirthdate:
		return spoken.Date(input, st.Lang, e.now())
	case phaseSSN4:
		return spoken.Digits(input, 4, st.Lang)
	}
	return "", spoken.Unclear
}

// previousKBA is the question before p, whose answer a "no, that's wrong"
// at p rejects (the date is read back just before the SSN-4 question).
func previousKBA(p phase) phase {
	switch p {
	case phaseBirthdate:
		return phaseName
	case phaseSSN4, phaseConfirmDate:
		return phaseBirthdate
	}
	return ""
}

func clearAnswer(st *State, p phase) {
	switch p {
	case phaseName:
		st.Answers.Name = ""
	case phaseBirthdate:
		st.Answers.Birthdate = ""
	case phaseSSN4:
		st.Answers.SSNLast4 = ""
	}
}

// command applies "start over", "go back" and "no, that's wrong" at any
// step. It reports false when text is not a command here (an answer).
func (e *engine) command(st *State, text string, intent spoken.Intent) bool {
	cmd, rest := spoken.ParseCommand(text, st.Lang)
	if cmd == spoken.CmdNone {
		return false
	}
	switch intent {
	case spoken.IntentNoCode, spoken.IntentCantReceive, spoken.IntentGoodbye:
		if cmd == spoken.CmdWrong {
			return false // "no, I didn't get it", "no thanks": the request wins
		}
	}
	okay := e.say(st, prompts.Okay, nil)
	switch st.Phase {
	case phaseName, phaseBirthdate, phaseSSN4, phaseConfirmDate:
		if cmd == spoken.CmdWrong && st.Phase == phaseConfirmDate {
			return false // a yes/no question: "no" is its answer
		}
		if cmd == spoken.CmdStartOver {
			st.Answers = Answers{}
			e.ask(st, phaseName, prompts.AskName, nil, e.say(st, prompts.StartOver, nil))
			return true
		}
		if cmd == spoken.CmdWrong && rest != "" {
			// "No es el trece, es el treinta…" corrects itself; "No, March
			// 3rd, 1980" is a value for this question, or a corrected answer
			// to the previous one.
			cur := st.Phase
			if _, self := spoken.Readings(text, st.Lang); self && e.answerKBA(st, cur, Input{Speech: text}, false) == spoken.OK {
				return true
			}
			in := Input{Speech: rest}
			if e.answerKBA(st, cur, in, false) == spoken.OK {
				return true
			}
			// Only a date is strict enough to be recognised as a corrected
			// earlier answer; any words could pass for a name.
			if prev := previousKBA(cur); prev == phaseBirthdate {
				saved := st.Answers
				clearAnswer(st, prev)
				if e.answerKBA(st, prev, in, false) == spoken.OK {
					return true
				}
				st.Answers = saved
			}
			// Words after the "no" that are no answer: read the whole
			// turn as an answer to this question (its own re-prompt).
			return false
		}
		prev := previousKBA(st.Phase)
		if prev == "" {
			e.ask(st, phaseName, prompts.AskName, nil, okay)
			return true
		}
		clearAnswer(st, prev)
		if st.Phase == phaseConfirmDate {
			clearAnswer(st, phaseBirthdate)
		}
		e.nextKBA(st, okay)
		return true
	case phaseOTP:
		// The answers are with the AS already; going back means entering
		// the code again, which costs nothing until it is submitted.
		st.Out = Output{Say: []string{okay}, Question: st.Out.Question, Expect: st.Out.Expect}
		return true
	case phaseMenu, phaseRefillPick, phaseRefillConfirm:
		if cmd == spoken.CmdWrong {
			if st.Phase == phaseRefillConfirm || (st.Phase == phaseMenu && rest != "") {
				return false
			}
			if st.Phase == phaseMenu && st.Out.Question == e.say(st, prompts.MenuAgain, nil) {
				e.goodbye(st) // "Anything else?" — "No."
				return true
			}
		}
		st.Meds = nil
		e.ask(st, phaseMenu, prompts.Menu, nil, okay)
		return true
	}
	return false
}

// confirmDate answers "Was that March 3rd, 1980?": yes moves on, no asks
// for the date again, and a new date said instead is taken (and read back).
func (e *engine) confirmDate(st *State, text, digits string) {
	var yes, ok bool
	switch digits {
	case "1":
		yes, ok = true, true
	case "2":
		yes, ok = false, true
	case "":
		yes, ok = spoken.YesNo(text, st.Lang)
	}
	if ok && yes {
		e.nextKBA(st, e.say(st, prompts.ConfirmDate, map[string]any{"Date": spokenDate(st.Answers.Birthdate, st.Lang)}))
		return
	}
	if text != "" {
		_, rest := spoken.ParseCommand(text, st.Lang)
		if rest == "" {
			rest = text
		}
		if v, why := spoken.Date(rest, st.Lang, e.now()); why == spoken.OK {
			st.Answers.Birthdate = v
			e.nextKBA(st, e.say(st, prompts.ConfirmDate, map[string]any{"Date": spokenDate(v, st.Lang)}))
			return
		}
	}
	if ok {
		st.Answers.Birthdate = ""
		e.ask(st, phaseBirthdate, prompts.AskBirthdate, nil, e.say(st, prompts.Okay, nil))
		return
	}
	e.reprompt(st, false, e.say(st, prompts.YesOrNo, nil))
}

// goodbye ends the call politely at the caller's request.
func (e *engine) goodbye(st *State) {
	st.Phase = phaseDone
	st.Answers = Answers{}
	st.Out = Output{Say: []string{e.say(st, prompts.Goodbye, nil)}, End: endHangup, Reason: "goodbye"}
}
