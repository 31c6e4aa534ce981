package spoken

import "strings"

// Command is a caller's request to move in the dialog instead of answering.
type Command string

// Commands. CmdNone is the zero value.
const (
	CmdNone      Command = ""
	CmdWrong     Command = "wrong"      // "no", "that's wrong", "está mal": what was just heard back is wrong
	CmdBack      Command = "back"       // "go back", "regresar", "atrás"
	CmdStartOver Command = "start_over" // "start over", "empezar de nuevo"
)

var startOverPhrases = phrases("start over", "start again", "start from the beginning", "from the top", "restart",
	"begin again", "let's start over", "empezar de nuevo", "volver a empezar", "empezar otra vez", "comenzar de nuevo",
	"desde el principio", "desde el inicio", "empecemos de nuevo", "reiniciar")

var backPhrases = phrases("go back", "back up", "previous question", "the previous question", "last question",
	"take me back", "regresar", "regresa", "regrese", "volver atras", "vuelve atras", "atras", "pregunta anterior",
	"la anterior", "ir atras")

// wrongPhrases open an answer that rejects what the caller just heard ("no, that's wrong, …").
var wrongPhrases = phrases("no", "nope", "nah", "wrong", "that's wrong", "that is wrong", "that's not right",
	"that is not right", "that's not correct", "that is not correct", "not right", "not correct", "incorrect",
	"that's incorrect", "that's not it", "that's not what i said", "you got it wrong", "you misheard",
	"esta mal", "eso esta mal", "no es correcto", "eso no es correcto", "no esta bien", "eso no esta bien", "incorrecto", "equivocado", "no es asi", "eso no es",
	"no es eso", "se equivoco", "no dije eso")

// notRejections start with "no" but reject nothing.
var notRejections = phrases("no me acuerdo", "no recuerdo", "no lo recuerdo", "no lo se", "no tengo idea", "ni idea",
	"no idea", "no clue", "no problem", "no hay problema", "no puedo", "no tengo")

// softWords may surround a command without changing it ("uh, no, sorry, that's wrong").
var softWords = map[string]bool{"uh": true, "um": true, "umm": true, "uhh": true, "er": true, "ah": true, "oh": true,
	"well": true, "sorry": true, "actually": true, "wait": true, "hmm": true, "eh": true, "este": true, "pues": true,
	"bueno": true, "perdon": true, "disculpe": true, "please": true, "por": true, "favor": true, "can": true,
	"we": true, "i": true, "want": true, "to": true, "let's": true, "lets": true, "quiero": true, "vamos": true,
	"a": true, "can't": true, "i'd": true, "like": true, "could": true, "you": true, "podemos": true, "puede": true}

// ParseCommand reads a dialog command. "start over" and "go back" are
// recognized anywhere in a short utterance; a rejection ("no, that's
// wrong") only at its start, and then rest is whatever follows it (a new
// value, folded: "no, March 3rd" → CmdWrong, "march 3rd"). An utterance
// that is an answer with a stray "no" inside is not a command.
func ParseCommand(input string, lang Lang) (cmd Command, rest string) {
	ws := words(input)
	if len(ws) == 0 {
		return CmdNone, ""
	}
	for i := range ws {
		if n, _ := matchPhrase(ws[i:], unsurePhrases); n > 0 {
			return CmdNone, "" // "no sé", "I'm not sure": an answer, not a rejection
		}
		if n, _ := matchPhrase(ws[i:], notRejections); n > 0 {
			return CmdNone, "" // "no me acuerdo", "no problem"
		}
	}
	for i := range ws {
		if n, _ := matchPhrase(ws[i:], startOverPhrases); n > 0 && onlySoft(ws[:i]) {
			return CmdStartOver, ""
		}
		if n, _ := matchPhrase(ws[i:], backPhrases); n > 0 && onlySoft(ws[:i]) {
			return CmdBack, ""
		}
	}
	i, wrong := 0, false
	for i < len(ws) {
		if n, _ := matchPhrase(ws[i:], wrongPhrases); n > 0 {
			i, wrong = i+n, true
			continue
		}
		if softWords[ws[i]] || classify(ws[i], lang).kind == kFiller {
			i++
			continue
		}
		break
	}
	if !wrong {
		return CmdNone, ""
	}
	return CmdWrong, strings.Join(ws[i:], " ")
}

func onlySoft(ws []string) bool {
	for _, w := range ws {
		if !softWords[w] {
			return false
		}
	}
	return true
}

// correctionMarkers split a self-correction: what follows the last one
// replaces what came before ("March 4th, no, sorry, March 3rd").
var correctionMarkers = phrases("no sorry", "sorry", "i mean", "i meant", "no wait", "wait", "actually",
	"correction", "scratch that", "let me correct that", "rather", "oops", "my mistake", "no no",
	"perdon", "perdona", "perdone", "no perdon", "quiero decir", "quise decir", "mejor dicho", "digo",
	"no espere", "espere", "disculpe", "me equivoque", "o sea")

// Readings returns the ways to read an answer that may hold a
// self-correction, most likely first, and whether a correction was seen:
//   - after a correction marker the last part wins: "four five six eight,
//     sorry, four five six seven" → "four five six seven";
//   - an English "not" rejects the value after it: "November thirtieth, not
//     thirteenth, 1955" → "november thirtieth 1955";
//   - a "no" between two values is read both ways, correction first: "cuatro
//     de marzo, no, tres de marzo de 1980" and "el treinta, no el trece".
//
// The first reading that parses is the answer. Without a correction the
// only reading is the input itself. Readings are folded word strings.
func Readings(input string, lang Lang) ([]string, bool) {
	ws := words(input)
	if len(ws) == 0 {
		return []string{input}, false
	}
	// "not March 3rd, it's March 4th" / "no es el trece, es el treinta": a
	// leading rejection, then the value after the next "it's"/"es"/"but".
	if i := leadingNegation(ws); i >= 0 {
		start := i + 1
		if start < len(ws) && copulas[ws[start]] {
			start++
		}
		for j := start + 1; j < len(ws)-1; j++ {
			if copulas[ws[j]] || ws[j] == "but" || ws[j] == "sino" {
				r, _ := Readings(strings.Join(ws[j+1:], " "), lang)
				return r, true
			}
		}
	}
	// The last explicit marker wins.
	cut := -1
	for i := range ws {
		if n, _ := matchPhrase(ws[i:], correctionMarkers); n > 0 && i+n < len(ws) && i > 0 {
			cut = i + n
		}
	}
	if cut >= 0 {
		after := ws[cut:]
		if r, ok := Readings(strings.Join(after, " "), lang); ok {
			return r, true
		}
		return []string{strings.Join(after, " ")}, true
	}
	// "not X" drops X.
	for i := 1; i < len(ws)-1; i++ {
		if ws[i] == "not" {
			end := i + 1 + valueSpan(ws[i+1:], lang)
			kept := append(append([]string(nil), ws[:i]...), ws[end:]...)
			r, _ := Readings(strings.Join(kept, " "), lang)
			return r, true
		}
	}
	// A bare "no" between two values: the correction reading, then the "not" reading.
	for i := 1; i < len(ws)-1; i++ {
		if ws[i] == "no" {
			after := strings.Join(ws[i+1:], " ")
			end := i + 1 + valueSpan(ws[i+1:], lang)
			not := strings.Join(append(append([]string(nil), ws[:i]...), ws[end:]...), " ")
			return []string{after, not}, true
		}
	}
	return []string{input}, false
}

var copulas = map[string]bool{"it's": true, "its": true, "is": true, "es": true, "it'll": false}

// leadingNegation is the index of a "not"/"no" that opens the answer (only
// soft words before it), or -1.
func leadingNegation(ws []string) int {
	for i, w := range ws {
		switch {
		case w == "not" || w == "no":
			return i
		case softWords[w] || w == "it's" || w == "its" || w == "it":
			continue
		}
		return -1
	}
	return -1
}

// valueSpan is how many words at the start of ws make one rejected value:
// optional fillers ("the", "el"), then one number word, or a tens word with
// its unit ("twenty third"), or a month, or a numeral.
func valueSpan(ws []string, lang Lang) int {
	i := 0
	for i < len(ws)-1 && classify(ws[i], lang).kind == kFiller {
		i++
	}
	if i >= len(ws) {
		return len(ws)
	}
	t := classify(ws[i], lang)
	i++
	if t.kind == kTens && i < len(ws) {
		if k := classify(ws[i], lang).kind; k == kUnit || k == kOrdinal || k == kJoin {
			i++
			if k == kJoin && i < len(ws) {
				i++
			}
		}
	}
	return i
}
