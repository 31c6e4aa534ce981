// Package prompts holds every sentence a caller hears, per language, as
// embedded text/template files. Keeping them out of code lets a reviewer read
// the whole conversation in one place and makes sure nothing a caller hears
// is assembled ad hoc next to PHI.
package prompts

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"sync"
	"text/template"
)

// ID names one caller-facing sentence.
type ID = string

// The closed set of prompt IDs. Every ID exists in every language (tested).
const (
	Greeting         ID = "greeting"      // welcome; the question follows at once
	AskName          ID = "ask_name"      // first and last name
	AskBirthdate     ID = "ask_birthdate" // date of birth, speech or keypad
	ConfirmDate      ID = "confirm_date"  // .Date: the date as the caller said it
	AskSSN4          ID = "ask_ssn4"      // last four of SSN
	Checking         ID = "checking"      // short filler before a backend call
	Hold             ID = "hold"          // backend slower than HoldAfter
	StillWorking     ID = "still_working" // continuation still waiting
	RetryKBA         ID = "retry_kba"     // details did not verify, try again (never says which)
	OTPSent          ID = "otp_sent"      // same sentence whether or not details matched
	OTPResent        ID = "otp_resent"    // after "I didn't get it"
	OTPRetry         ID = "otp_retry"     // code did not work
	Verified         ID = "verified"      // reached the menu
	Preverified      ID = "preverified"   // host registered a subject token
	Menu             ID = "menu"          // what can I help with
	MenuAgain        ID = "menu_again"    // anything else
	NoInput          ID = "no_input"      // silence re-prompt prefix
	NoMatch          ID = "no_match"      // generic not-understood prefix
	NeedMonthDayYear ID = "need_month_day_year"
	InvalidDate      ID = "invalid_date"
	NeedDigits       ID = "need_digits" // .N: how many digits
	NeedName         ID = "need_name"
	Transfer         ID = "transfer" // connecting to a person
	Apology          ID = "apology"  // something went wrong, then transfer
	Goodbye          ID = "goodbye"  // end of call
	Help             ID = "help"     // menu help
	NoAppointments   ID = "no_appointments"
	AppointmentCount ID = "appointment_count" // .N
	AppointmentFirst ID = "appointment_first" // .When .Clinician .Department
	AppointmentNext  ID = "appointment_next"  // .When .Clinician .Department
	NoMedications    ID = "no_medications"
	MedicationCount  ID = "medication_count" // .N .Names
	MedicationItem   ID = "medication_item"  // .Name .Dose
	NoRefillable     ID = "no_refillable"
	RefillPick       ID = "refill_pick"    // .Options []string "1 for Lisinopril"
	RefillConfirm    ID = "refill_confirm" // .Name
	RefillDone       ID = "refill_done"    // .Name .ReadyOn (spoken date)
	RefillCancelled  ID = "refill_cancelled"
	ToolDenied       ID = "tool_denied"
	ToolFailed       ID = "tool_failed" // short non-PHI reason from the server is not spoken
	YesOrNo          ID = "yes_or_no"
	SpokenDate       ID = "spoken_date"     // .Month .Day .Ordinal .Year
	SpokenDateTime   ID = "spoken_datetime" // .Weekday .Month .Day .Ordinal .Time12 .Time24
)

// Prompt IDs of the caller-experience work (issue 17).
const (
	LangOffer    ID = "lang_offer"     // "Para español, oprima dos." — rendered in the offered language
	OTPStepUp    ID = "otp_stepup"     // a verified caller asked for something that needs the texted code
	DetailsHint  ID = "details_hint"   // .Doses: after a summary, how to hear the rest
	ConfirmDateQ ID = "confirm_date_q" // .Date: asked when recognition was uncertain
	Okay         ID = "okay"           // acknowledges "go back" / "that's wrong"
	StartOver    ID = "start_over"     // acknowledges "start over"
)

// Reverify is said when the authorization server wants a long-verified
// caller to prove who they are again before the next tool (issue 19).
const Reverify ID = "reverify"

// All lists every ID; tests check each renders in every language.
var All = []ID{Greeting, LangOffer, Reverify, ConfirmDateQ, Okay, StartOver, OTPStepUp, DetailsHint, AskName, AskBirthdate, ConfirmDate, AskSSN4, Checking, Hold, StillWorking, RetryKBA,
	OTPSent, OTPResent, OTPRetry, Verified, Preverified, Menu, MenuAgain, NoInput, NoMatch, NeedMonthDayYear,
	InvalidDate, NeedDigits, NeedName, Transfer, Apology, Goodbye, Help, NoAppointments, AppointmentCount,
	AppointmentFirst, AppointmentNext, NoMedications, MedicationCount, MedicationItem, NoRefillable, RefillPick,
	RefillConfirm, RefillDone, RefillCancelled, ToolDenied, ToolFailed, YesOrNo, SpokenDate, SpokenDateTime}

// Languages served. The first is the fallback.
var Languages = []string{"en", "es"}

//go:embed */*.tmpl */terms.txt
var files embed.FS

// funcs are the template helpers: inc for "a, b and c" lists.
var funcs = template.FuncMap{"inc": func(i int) int { return i + 1 }}

var (
	loadOnce sync.Once
	sets     map[string]*template.Template
	terms    map[string]termTable
	loadErr  error
)

func load() {
	sets = map[string]*template.Template{}
	terms = map[string]termTable{}
	for _, lang := range Languages {
		tt, err := loadTerms(lang)
		if err != nil {
			loadErr = fmt.Errorf("prompts: %s terms: %w", lang, err)
			return
		}
		terms[lang] = tt
		t, err := template.New(lang).Option("missingkey=error").Funcs(funcs).ParseFS(files, lang+"/*.tmpl")
		if err != nil {
			loadErr = fmt.Errorf("prompts: %s: %w", lang, err)
			return
		}
		sets[lang] = t
	}
}

// Render returns the plain text of prompt id in lang (a BCP-47 tag or its
// primary subtag; unknown languages fall back to English), with runs of
// whitespace collapsed so templates can be laid out freely.
func Render(lang string, id ID, data any) (string, error) {
	loadOnce.Do(load)
	if loadErr != nil {
		return "", loadErr
	}
	t := sets[primary(lang)]
	if t == nil {
		t = sets[Languages[0]]
	}
	if t.Lookup(id) == nil {
		return "", fmt.Errorf("prompts: unknown id %q", id)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, id, data); err != nil {
		return "", fmt.Errorf("prompts: %s/%s: %w", primary(lang), id, err)
	}
	return strings.Join(strings.Fields(b.String()), " "), nil
}

// Has reports whether id is defined for lang (exactly, without fallback).
func Has(lang string, id ID) bool {
	loadOnce.Do(load)
	t := sets[primary(lang)]
	return t != nil && t.Lookup(id) != nil
}

func primary(lang string) string {
	if i := strings.IndexAny(lang, "-_"); i >= 0 {
		lang = lang[:i]
	}
	return strings.ToLower(lang)
}
