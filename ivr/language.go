package ivr

import (
	"strings"

	"github.com/voiceauth/voiceauth/ivr/spoken"
	"github.com/voiceauth/voiceauth/prompts"
)

// language is everything the IVR needs to serve a caller in one language.
// Adding a language is a prompts/<code>/ folder, the spoken word tables and
// one row in languages.
type language struct {
	Code  spoken.Lang // prompt folder and spoken word tables
	Tag   string      // BCP-47: <Say language>, <Gather language>, relay TTS and transcription
	Voice string      // Twilio <Say voice> (Polly.<name>)
	// RelayVoice is the same voice for ConversationRelay's <Language>, whose
	// provider is named separately (ttsProvider="Amazon").
	RelayVoice string
	// Key is the keypad key that selects this language at the greeting;
	// Names are the words that select it by voice ("español").
	Key   string
	Names []string
	// MenuHints bias speech recognition towards the menu's words.
	MenuHints string
	// Months and Weekdays are single words, read to the caller in dates.
	Months   [12]string
	Weekdays [7]string
}

// languages: the first is the default of a call.
var languages = []language{
	{
		Code: spoken.English, Tag: "en-US", Voice: "Polly.Joanna-Neural", RelayVoice: "Joanna-Neural", Key: "1",
		Names:     []string{"english", "ingles", "en ingles"},
		MenuHints: "appointments,medications,refill,details,agent,goodbye",
		Months:    [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		Weekdays:  [7]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
	},
	{
		Code: spoken.Spanish, Tag: "es-US", Voice: "Polly.Lupe-Neural", RelayVoice: "Lupe-Neural", Key: "2",
		Names:     []string{"espanol", "spanish", "en espanol", "castellano"},
		MenuHints: "citas,medicamentos,resurtido,detalles,agente,adiós",
		Months:    [12]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"},
		Weekdays:  [7]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"},
	},
}

// localTerm renders a record value (a department, a dose, an instruction)
// in lang with the language's term table (prompts/<lang>/terms.txt).
func localTerm(v string, lang spoken.Lang) string { return prompts.Localize(string(lang), v) }

// lookupLang returns the descriptor of code, or the default language.
func lookupLang(code spoken.Lang) *language {
	for i := range languages {
		if languages[i].Code == code {
			return &languages[i]
		}
	}
	return &languages[0]
}

// langByTag maps a BCP-47 tag ("es-US", "es") to a language, or the default.
func langByTag(tag string) *language {
	tag = strings.ToLower(tag)
	for i := range languages {
		l := &languages[i]
		if strings.EqualFold(l.Tag, tag) || strings.HasPrefix(tag, string(l.Code)) {
			return l
		}
	}
	return &languages[0]
}

// chosenLang reports the language a caller asked for at the greeting, by
// key or by naming it; nil when the turn does not choose one.
func chosenLang(in Input) *language {
	digits := strings.TrimSuffix(strings.TrimSpace(in.Digits), "#")
	for i := range languages {
		l := &languages[i]
		if digits != "" && digits == l.Key {
			return l
		}
		if digits == "" && spoken.Mentions(in.Speech, l.Names...) {
			return l
		}
	}
	return nil
}

// LanguageKey returns the keypad key that selects language code ("es") at
// the greeting: what a caller presses, and what `voiceauth call --lang`
// presses for them.
func LanguageKey(code string) (string, bool) {
	for _, l := range languages {
		if string(l.Code) == code {
			return l.Key, true
		}
	}
	return "", false
}
