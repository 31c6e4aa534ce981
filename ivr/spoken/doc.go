// Package spoken turns what a phone caller said (an ASR transcript such as Twilio's SpeechResult or a
// ConversationRelay voicePrompt) or typed (DTMF Digits) into the exact values the authorization server
// expects: a YYYY-MM-DD birthdate, a fixed-length digit string, a cleaned full name, a yes/no answer or a
// menu intent.
//
// Every normalizer is deterministic and table driven, uses only the standard library and knows nothing about
// telephony transport. When input cannot be accepted the functions return a Reason instead of guessing, so the
// dialog engine can play a specific re-prompt ("I need the month, day and year"). Normalizers never log and
// never put the caller's input into an error: the values they handle (birthdates, SSN digits, codes) are PHI.
package spoken

// Lang selects the word tables a normalizer prefers. The other language's number words are still accepted
// as a fallback, because bilingual callers mix them. Any value other than Spanish behaves as English.
type Lang string

// Supported languages.
const (
	English Lang = "en"
	Spanish Lang = "es"
)

// Reason says why input was not accepted; the IVR turns each into a specific re-prompt.
type Reason string

// Reasons. OK is the zero value, so `if r != spoken.OK` reads naturally.
const (
	OK               Reason = ""
	NoInput          Reason = "no_input"            // empty or only filler words
	NeedMonthDayYear Reason = "need_month_day_year" // a partial date ("March third", "nineteen eighty")
	InvalidDate      Reason = "invalid_date"        // Feb 30, month 13, a future date, before 1900
	NeedDigits       Reason = "need_digits"         // wrong count of digits, or no digits at all
	NeedName         Reason = "need_name"           // nothing name-like (for example only digits)
	Unclear          Reason = "unclear"             // words present but no single reading
)

// Intent is a menu word or a global command recognized in speech.
type Intent string

// Intents. Keypad input is mapped by the dialog engine, not here.
const (
	IntentNone         Intent = ""
	IntentAgent        Intent = "agent"        // agent, representative, operator, human, "talk to a person"
	IntentRepeat       Intent = "repeat"       // repeat, "say that again", a bare "what?"
	IntentAppointments Intent = "appointments" // appointments, visits, citas
	IntentMedications  Intent = "medications"  // medications, medicines, prescriptions, medicamentos
	IntentRefill       Intent = "refill"       // refill, renew, resurtir
	IntentSpanish      Intent = "spanish"      // español, Spanish
	IntentNoCode       Intent = "no_code"      // "I didn't get it", "no code", "no me llegó"
	IntentCantReceive  Intent = "cant_receive" // "I can't get texts", "no cell phone", "landline"
	IntentGoodbye      Intent = "goodbye"      // goodbye, "that's all", adiós
	IntentHelp         Intent = "help"         // help, options, ayuda
	IntentDetails      Intent = "details"      // details, "tell me more", detalles: the rest of a summary
)
