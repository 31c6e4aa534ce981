package ivr

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/ivr/spoken"
	"github.com/voiceauth/voiceauth/prompts"
)

// The greeting asks the first question at once; the Spanish offer is spoken
// by a Spanish voice after it, every prompt can be barged in on, and keyed
// gathers carry a digit count so a key ends the entry without a dead wait.
func TestWebhookPromptDesign(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	sid := "CA00000000000000000000000000000c01"
	doc := parseTwiML(t, f.post("/twilio/voice", callForm(sid), nil))
	g := doc.Verbs[0]
	if g.XMLName.Local != "Gather" || g.Attr("bargeIn") != "true" || g.Attr("numDigits") != "1" || g.Attr("finishOnKey") != "#" {
		t.Fatalf("name gather: %+v", g)
	}
	if len(g.Inner) != 2 {
		t.Fatalf("want the prompt and the offer as two <Say>s, got %+v", g.Inner)
	}
	en, es := g.Inner[0], g.Inner[1]
	if !strings.Contains(en.Text, "first and last name") || strings.Contains(en.Text, "español") || en.Attr("language") != "en-US" || en.Attr("voice") != lookupLang(spoken.English).Voice {
		t.Errorf("English prompt: %+v", en)
	}
	if len(strings.Fields(en.Text)) > 12 {
		t.Errorf("greeting + question is %d words: %q", len(strings.Fields(en.Text)), en.Text)
	}
	if es.Text != "Para español, oprima dos." || es.Attr("language") != "es-US" || es.Attr("voice") != lookupLang(spoken.Spanish).Voice {
		t.Errorf("Spanish offer: %+v", es)
	}
	// A re-prompt repeats the offer.
	doc = parseTwiML(t, f.post("/twilio/gather?turn=0", callForm(sid), nil))
	g = doc.Verbs[0]
	if len(g.Inner) != 2 || g.Inner[1].Text != "Para español, oprima dos." || !strings.Contains(g.Inner[0].Text, "didn't hear") {
		t.Errorf("re-prompt lost the offer: %+v", g.Inner)
	}
	// Once the name is given the offer is gone; the keyed date has a count.
	doc = parseTwiML(t, f.post("/twilio/gather?turn=1", callForm(sid, "SpeechResult", "Maria Garcia"), nil))
	g = doc.Verbs[0]
	if len(g.Inner) != 1 || g.Attr("numDigits") != "8" || g.Attr("bargeIn") != "true" || !strings.Contains(g.Inner[0].Text, "Or key 8 digits: month, day, year") {
		t.Errorf("date gather: %+v", g)
	}
}

// Saying "español" at the greeting switches like the key does; in Spanish
// the offer is the English one, in the English voice.
func TestLanguageChoiceBySpeech(t *testing.T) {
	e, st := newEngineState(t, spoken.English)
	if !e.handle(st, Input{Speech: "Español, por favor"}) || st.Lang != spoken.Spanish || st.Phase != phaseName {
		t.Fatalf("not switched: lang %s phase %s", st.Lang, st.Phase)
	}
	if len(st.Out.Offer) != 0 || st.LangOffer {
		t.Errorf("offer kept after the choice: %+v", st.Out.Offer)
	}
	e, st = newEngineState(t, spoken.Spanish)
	if len(st.Out.Offer) != 1 || st.Out.Offer[0].Lang != spoken.English || st.Out.Offer[0].Text != "For English, press one." {
		t.Errorf("Spanish call offer: %+v", st.Out.Offer)
	}
	// The key of the language already spoken is no name and no switch.
	if !e.handle(st, Input{Digits: "2"}) || st.Lang != spoken.Spanish || st.NoMatch != 0 || st.Phase != phaseName {
		t.Errorf("key 2 in a Spanish call: %+v", st)
	}
	// A name that is not a language is the name.
	e, st = newEngineState(t, spoken.English)
	e.handle(st, Input{Speech: "Maria Garcia"})
	if st.Lang != spoken.English || st.Phase != phaseBirthdate || len(st.Out.Offer) != 0 {
		t.Errorf("name turn: lang %s phase %s offer %+v", st.Lang, st.Phase, st.Out.Offer)
	}
}

// Relay: every token is interruptible and the offer token names its language,
// and the relay declares a voice per language.
func TestRelayPromptDesign(t *testing.T) {
	f := newFixture(t, FrontendRelay, nil)
	const sid = "CA00000000000000000000000000000c02"
	doc := parseTwiML(t, f.post("/twilio/voice", callForm(sid), nil))
	nonce := relayNonce(doc)
	cr := doc.Verbs[0].Inner[0]
	var langs []twimlVerb
	for _, in := range cr.Inner {
		if in.XMLName.Local == "Language" {
			langs = append(langs, in)
		}
	}
	if cr.XMLName.Local != "ConversationRelay" || len(langs) != len(languages) || cr.Attr("hints") != lookupLang(spoken.English).MenuHints || nonce == "" {
		t.Fatalf("relay TwiML: %+v", doc.Verbs[0])
	}
	for i, l := range languages {
		if langs[i].Attr("code") != l.Tag || langs[i].Attr("voice") != l.RelayVoice || langs[i].Attr("ttsProvider") != "Amazon" {
			t.Errorf("<Language> %d: %+v", i, langs[i])
		}
	}
	ws, _, err := dialRelay(t, f, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.WriteJSON(setupMsg(sid, "VX"+sid, nonce))
	type tok struct {
		Type          string `json:"type"`
		Token         string `json:"token"`
		Last          bool   `json:"last"`
		Lang          string `json:"lang"`
		Interruptible bool   `json:"interruptible"`
	}
	var toks []tok
	for {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m tok
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		toks = append(toks, m)
		if m.Last {
			break
		}
	}
	for _, m := range toks {
		if !m.Interruptible {
			t.Errorf("token %q is not interruptible", m.Token)
		}
	}
	last := toks[len(toks)-1]
	if strings.TrimSpace(last.Token) != "Para español, oprima dos." || last.Lang != "es-US" {
		t.Errorf("offer token: %+v", last)
	}
	if toks[0].Lang != "" {
		t.Errorf("prompt token has a language: %+v", toks[0])
	}
}

// A step-up caller is already verified: the code sentence says why, and
// the answer after the code does not say "verified" again.
func TestStepUpNoDoubleVerified(t *testing.T) {
	e, st := newEngineState(t, spoken.English)
	st.Authenticated, st.Phase, st.StepUp = true, phaseMenu, true
	st.AfterAuth = &Job{Kind: jobTool, Tool: "list_medications", Purpose: "medications"}
	e.schedule(st, Job{Kind: jobSubmit, StepUp: true})
	j := *st.Pending
	e.finish(st, &j, jobResult{Step: AuthStep{Kind: AuthNeedOTP}})
	if txt := st.Out.Text(); !strings.Contains(txt, "one more check") || strings.Contains(txt, "If the details match") {
		t.Errorf("step-up code sentence: %q", txt)
	}
	e.handle(st, Input{Digits: "123456"})
	j = *st.Pending
	e.finish(st, &j, jobResult{Step: AuthStep{Kind: AuthAuthenticated}})
	j = *st.Pending
	data, _ := json.Marshal(map[string]any{"medications": []medication{{ID: "rx-1", Name: "Lisinopril", Dose: "10 mg once daily"}}})
	e.finish(st, &j, jobResult{Data: data})
	if txt := st.Out.Text(); strings.Contains(txt, "verified") || !strings.Contains(txt, "1 medication on file: Lisinopril.") {
		t.Errorf("after the code: %q", txt)
	}
}

// Menus pair every key with its item.
func TestMenuPairsKeysWithItems(t *testing.T) {
	for _, lang := range prompts.Languages {
		for _, id := range []prompts.ID{prompts.Menu, prompts.MenuAgain} {
			s, _ := prompts.Render(lang, id, nil)
			for _, pair := range map[string][]string{"en": {"1 for appointments", "2 for medications", "3 for a refill"},
				"es": {"1 para citas", "2 para medicamentos", "3 para un resurtido"}}[lang] {
				if !strings.Contains(s, pair) {
					t.Errorf("%s/%s lacks %q: %q", lang, id, pair, s)
				}
			}
		}
	}
}

// Everything read to a Spanish caller is Spanish: times without a leading
// zero ("a las 9:30", "a la 1:05"), departments, doses.
func TestSpanishRendering(t *testing.T) {
	cases := map[string]string{
		"2026-12-02T09:30:00-05:00": "miércoles 2 de diciembre a las 9:30",
		"2026-12-03T13:05:00-05:00": "jueves 3 de diciembre a las 13:05",
		"2026-12-04T01:05:00-05:00": "viernes 4 de diciembre a la 1:05",
	}
	for in, want := range cases {
		if got := spokenDateTime(in, spoken.Spanish); got != want {
			t.Errorf("spokenDateTime(%s) = %q, want %q", in, got, want)
		}
	}
	terms := map[string]string{
		"Cardiology":                     "Cardiología",
		"Primary Care":                   "Atención Primaria",
		"10 mg once daily":               "10 mg una vez al día",
		"500 mg three times daily":       "500 mg tres veces al día",
		"20 mg at bedtime":               "20 mg al acostarse",
		"1 tablet by mouth twice daily.": "1 tableta por vía oral dos veces al día.",
		"400 mg as needed, with food":    "400 mg según sea necesario, con comida",
		"Lisinopril":                     "Lisinopril",
	}
	for in, want := range terms {
		if got := localTerm(in, spoken.Spanish); got != want {
			t.Errorf("localTerm(%q) = %q, want %q", in, got, want)
		}
		if got := localTerm(in, spoken.English); got != in {
			t.Errorf("English changed %q to %q", in, got)
		}
	}
}

// kbaAt returns an engine and a state at phase p with the answers before it given.
func kbaAt(t *testing.T, lang spoken.Lang, p phase) (*engine, *State) {
	e, st := newEngineState(t, lang)
	st.LangOffer = false
	steps := map[spoken.Lang][]string{spoken.English: {"Maria Garcia", "March 3rd, 1980"}, spoken.Spanish: {"María García", "tres de marzo de 1980"}}[lang]
	for _, s := range steps {
		if st.Phase == p {
			break
		}
		e.handle(st, Input{Speech: s})
	}
	if st.Phase != p {
		t.Fatalf("could not reach %s (at %s)", p, st.Phase)
	}
	return e, st
}

// Every correction moves the dialog without a submission (a failed
// attempt at the AS) and without counting as a no-match.
func TestCorrectionsCostNoAttempt(t *testing.T) {
	tests := []struct {
		name   string
		lang   spoken.Lang
		at     phase
		say    string
		phase  phase
		answer Answers
		hear   string
	}{
		{"wrong at the name prompt is not a name", spoken.English, phaseName, "no, that's wrong", phaseName, Answers{}, "Okay. Your first and last name"},
		{"wrong at the date rejects the name", spoken.English, phaseBirthdate, "No, that's wrong", phaseName, Answers{}, "Okay."},
		{"wrong at the SSN rejects the date", spoken.English, phaseSSN4, "no that's wrong", phaseBirthdate, Answers{Name: "Maria Garcia"}, "date of birth"},
		{"wrong with the right date", spoken.English, phaseSSN4, "no, March 4th, 1980", phaseSSN4, Answers{Name: "Maria Garcia", Birthdate: "1980-03-04"}, "Got it, March 4th, 1980."},
		{"go back", spoken.English, phaseSSN4, "go back", phaseBirthdate, Answers{Name: "Maria Garcia"}, "date of birth"},
		{"start over", spoken.English, phaseSSN4, "can we start over", phaseName, Answers{}, "start over"},
		{"self-corrected date is confirmed", spoken.English, phaseBirthdate, "March 4th — no, sorry, March 3rd, 1980", phaseConfirmDate, Answers{Name: "Maria Garcia", Birthdate: "1980-03-03"}, "Was that March 3rd, 1980?"},
		{"not-corrected date", spoken.English, phaseBirthdate, "March thirtieth, not thirteenth, nineteen eighty", phaseConfirmDate, Answers{Name: "Maria Garcia", Birthdate: "1980-03-30"}, "Was that March 30th, 1980?"},
		{"no, then the name", spoken.English, phaseName, "No, Maria Garcia", phaseBirthdate, Answers{Name: "Maria Garcia"}, "date of birth"},
		{"Spanish leading negation", spoken.Spanish, phaseBirthdate, "no es el trece, es el treinta de marzo de 1980", phaseConfirmDate, Answers{Name: "María García", Birthdate: "1980-03-30"}, "¿Fue el 30 de marzo de 1980?"},
		{"English leading negation", spoken.English, phaseBirthdate, "not March 3rd, it's March 4th, 1980", phaseConfirmDate, Answers{Name: "Maria Garcia", Birthdate: "1980-03-04"}, "Was that March 4th, 1980?"},
		{"as-in spelling", spoken.English, phaseName, "Maria, M as in Mary, A R I A, Garcia", phaseBirthdate, Answers{Name: "Maria Garcia"}, "date of birth"},
		{"está mal", spoken.Spanish, phaseSSN4, "no, está mal", phaseBirthdate, Answers{Name: "María García"}, "De acuerdo. ¿Su fecha de nacimiento?"},
		{"regresar", spoken.Spanish, phaseBirthdate, "regresar", phaseName, Answers{}, "nombre y apellido"},
		{"empezar de nuevo", spoken.Spanish, phaseSSN4, "empezar de nuevo", phaseName, Answers{}, "empecemos de nuevo"},
		{"autocorrección", spoken.Spanish, phaseBirthdate, "cuatro de marzo, no, perdón, tres de marzo de 1980", phaseConfirmDate, Answers{Name: "María García", Birthdate: "1980-03-03"}, "¿Fue el 3 de marzo de 1980?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, st := kbaAt(t, tc.lang, tc.at)
			if !e.handle(st, Input{Speech: tc.say}) {
				t.Fatal("not taken")
			}
			if st.Pending != nil {
				t.Fatal("a correction was submitted to the AS")
			}
			if st.NoMatch != 0 || st.NoInput != 0 {
				t.Errorf("counted as a failed turn: no_match %d", st.NoMatch)
			}
			if st.Phase != tc.phase || st.Answers != tc.answer {
				t.Errorf("phase %s answers %+v; want %s %+v", st.Phase, st.Answers, tc.phase, tc.answer)
			}
			if txt := st.Out.Text(); !strings.Contains(txt, tc.hear) {
				t.Errorf("heard %q, want %q", txt, tc.hear)
			}
		})
	}
}

// The last value of a self-correction is the one submitted.
func TestSelfCorrectedSSNIsSubmitted(t *testing.T) {
	e, st := kbaAt(t, spoken.English, phaseSSN4)
	e.handle(st, Input{Speech: "four five six eight, sorry, four five six seven"})
	if st.Pending == nil || st.Answers.SSNLast4 != "4567" {
		t.Fatalf("pending %v answers %+v", st.Pending, st.Answers)
	}
}

func TestConfirmDateQuestion(t *testing.T) {
	e, st := kbaAt(t, spoken.English, phaseBirthdate)
	e.handle(st, Input{Speech: "March 3rd 1980", Confidence: 0.3})
	if st.Phase != phaseConfirmDate || !strings.Contains(st.Out.Question, "Was that March 3rd, 1980?") {
		t.Fatalf("low confidence not confirmed: %s %q", st.Phase, st.Out.Text())
	}
	e.handle(st, Input{Speech: "yes"})
	if st.Phase != phaseSSN4 || st.Answers.Birthdate != "1980-03-03" || !strings.Contains(st.Out.Text(), "Got it, March 3rd, 1980.") {
		t.Fatalf("yes: %s %+v %q", st.Phase, st.Answers, st.Out.Text())
	}
	e, st = kbaAt(t, spoken.English, phaseBirthdate)
	e.handle(st, Input{Speech: "March 3rd 1980", Confidence: 0.3})
	e.handle(st, Input{Speech: "no"})
	if st.Phase != phaseBirthdate || st.Answers.Birthdate != "" || st.NoMatch != 0 {
		t.Fatalf("no: %s %+v", st.Phase, st.Answers)
	}
	e, st = kbaAt(t, spoken.English, phaseBirthdate)
	e.handle(st, Input{Speech: "March 3rd 1980", Confidence: 0.3})
	e.handle(st, Input{Speech: "no, March 13th 1980"})
	if st.Phase != phaseSSN4 || st.Answers.Birthdate != "1980-03-13" {
		t.Fatalf("new date at the question: %s %+v", st.Phase, st.Answers)
	}
	// High confidence and no correction: no question.
	e, st = kbaAt(t, spoken.English, phaseBirthdate)
	e.handle(st, Input{Speech: "March 3rd 1980", Confidence: 0.9})
	if st.Phase != phaseSSN4 {
		t.Fatalf("confident date asked again: %s", st.Phase)
	}
}

// "goodbye"/"adiós" where a code or an answer is expected ends the call
// politely instead of "I need 6 digits".
func TestGoodbyeBeforeVerification(t *testing.T) {
	for _, tc := range []struct {
		lang spoken.Lang
		say  string
		at   phase
		want string
	}{
		{spoken.English, "goodbye", phaseOTP, "Goodbye."},
		{spoken.Spanish, "adiós", phaseOTP, "Adiós."},
		{spoken.English, "never mind, goodbye", phaseSSN4, "Goodbye."},
	} {
		var e *engine
		var st *State
		if tc.at == phaseOTP {
			e, st = newEngineState(t, tc.lang)
			e.ask(st, phaseOTP, prompts.OTPSent, nil)
		} else {
			e, st = kbaAt(t, tc.lang, tc.at)
		}
		e.handle(st, Input{Speech: tc.say})
		if st.Out.End != endHangup || !strings.Contains(st.Out.Text(), tc.want) || st.Answers != (Answers{}) {
			t.Errorf("%s at %s: %+v", tc.say, tc.at, st.Out)
		}
	}
	// A date that contains "that's it" is a date, not a goodbye.
	e, st := kbaAt(t, spoken.English, phaseBirthdate)
	e.handle(st, Input{Speech: "March 3rd 1980, that's it"})
	if st.Out.End != "" || st.Answers.Birthdate != "1980-03-03" {
		t.Errorf("date with a goodbye phrase: %+v", st.Out)
	}
}

// "No" after "Anything else?" ends the call; "go back" in a refill returns to the menu.
func TestMenuCorrections(t *testing.T) {
	e, st := newEngineState(t, spoken.English)
	st.Authenticated = true
	e.ask(st, phaseMenu, prompts.MenuAgain, nil)
	e.handle(st, Input{Speech: "no"})
	if st.Out.End != endHangup {
		t.Errorf("no at anything else: %+v", st.Out)
	}
	e, st = newEngineState(t, spoken.English)
	st.Authenticated = true
	st.Meds = []medication{{ID: "rx-1", Name: "A"}, {ID: "rx-2", Name: "B"}}
	e.ask(st, phaseRefillConfirm, prompts.RefillConfirm, map[string]any{"Name": "A"})
	e.handle(st, Input{Speech: "go back"})
	if st.Phase != phaseMenu || st.Meds != nil || st.Pending != nil {
		t.Errorf("go back in a refill: %s %+v", st.Phase, st.Out)
	}
}

// A rejection that carries a request is the request: "no, I didn't get it"
// resends the code, "no, goodbye" ends the call, and words after "no" at
// the date question are never taken as a corrected name.
func TestRejectionWithARequest(t *testing.T) {
	e, st := newEngineState(t, spoken.English)
	e.ask(st, phaseOTP, prompts.OTPSent, nil)
	e.handle(st, Input{Speech: "no, I didn't get it"})
	if st.Pending == nil || !st.Pending.Resend {
		t.Errorf("no resend: %+v", st.Pending)
	}
	e, st = kbaAt(t, spoken.English, phaseSSN4)
	e.handle(st, Input{Speech: "no, goodbye"})
	if st.Out.End != endHangup {
		t.Errorf("no, goodbye: %+v", st.Out)
	}
	e, st = kbaAt(t, spoken.English, phaseBirthdate)
	e.handle(st, Input{Speech: "no, that's wrong, call me Bob"})
	if st.Phase != phaseBirthdate || st.Answers.Name != "Maria Garcia" {
		t.Errorf("a name was taken from a rejection: %s %+v", st.Phase, st.Answers)
	}
	// "no" then a partial date at the date question: the date's own re-prompt, the name kept.
	e, st = kbaAt(t, spoken.Spanish, phaseBirthdate)
	e.handle(st, Input{Speech: "no, el tres de marzo"})
	if st.Phase != phaseBirthdate || st.Answers.Name == "" || !strings.Contains(st.Out.Text(), "Necesito el mes, el día y el año") {
		t.Errorf("partial date after no: %s %+v %q", st.Phase, st.Answers, st.Out.Text())
	}
	e, st = kbaAt(t, spoken.Spanish, phaseBirthdate)
	e.handle(st, Input{Speech: "no me acuerdo"})
	if st.Phase != phaseBirthdate || st.Answers.Name == "" || st.NoMatch != 1 {
		t.Errorf("'no me acuerdo' treated as a rejection: %s %+v", st.Phase, st.Answers)
	}
}

// The menu's ASR hints are the words of the call's language.
func TestMenuHintsPerLanguage(t *testing.T) {
	for lang, want := range map[spoken.Lang]string{spoken.English: "appointments", spoken.Spanish: "citas"} {
		e, st := newEngineState(t, lang)
		e.ask(st, phaseMenu, prompts.Menu, nil)
		if !strings.Contains(st.Out.Expect.Hints, want) || (lang == spoken.Spanish && strings.Contains(st.Out.Expect.Hints, "appointments")) {
			t.Errorf("%s menu hints %q", lang, st.Out.Expect.Hints)
		}
	}
}

// Every language row is complete: its prompt folder, a unique key, a tag,
// a voice, month and weekday words, menu hints.
func TestLanguageDescriptors(t *testing.T) {
	keys := map[string]bool{}
	for _, l := range languages {
		for _, id := range prompts.All {
			if !prompts.Has(string(l.Code), id) {
				t.Errorf("%s: no prompt %s", l.Code, id)
			}
		}
		if l.Key == "" || keys[l.Key] || l.Key == "0" || l.Key == "*" {
			t.Errorf("%s: key %q", l.Code, l.Key)
		}
		keys[l.Key] = true
		if l.Tag == "" || l.Voice == "" || l.RelayVoice == "" || l.MenuHints == "" || len(l.Names) == 0 || l.Months[11] == "" || l.Weekdays[6] == "" {
			t.Errorf("%s: incomplete %+v", l.Code, l)
		}
		if got := langByTag(l.Tag); got.Code != l.Code {
			t.Errorf("langByTag(%s) = %s", l.Tag, got.Code)
		}
		if k, ok := LanguageKey(string(l.Code)); !ok || k != l.Key {
			t.Errorf("LanguageKey(%s) = %q", l.Code, k)
		}
	}
}
