package spoken

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameBytes is the AS limit for kba_name.
const maxNameBytes = 200

// Name returns the caller's full name as said or spelled, cleaned for the AS's kba_name:
// "my name is uh Maria Garcia" → "Maria Garcia"; spelled letters "M A R I A   G A R C I A" or "M-A-R-I-A"
// are joined into words (two or more spaces separate spelled words). Accents, apostrophes and hyphens stay
// ("José O'Brien-López"); words said all in one case are capitalized, mixed case is kept ("McDonald").
// Lead-ins ("my name is", "this is", "it's", "me llamo", "soy", "mi nombre es") and fillers ("uh", "um")
// are dropped. The AS matches names loosely (case, accents, spelling variants), so this only has to remove
// what is clearly not the name. A word said twice in a row, or spelled after it was said, is kept once.
// Digits are never part of a name; only digits, or a sentence that is not a name ("I'm calling about my
// appointment"), is NeedName. A result over 200 bytes is Unclear.
func Name(input string, lang Lang) (string, Reason) {
	toks := asInLetters(nameTokens(truncate(input)))
	hadDigits := false
	kept := toks[:0]
	for _, t := range toks {
		if strings.IndexFunc(t.text, unicode.IsDigit) >= 0 {
			hadDigits = true
			continue
		}
		kept = append(kept, t)
	}
	toks = stripNameFiller(kept)
	if len(toks) == 0 {
		if hadDigits {
			return "", NeedName
		}
		return "", NoInput
	}
	var parts []nameWord
	for i := 0; i < len(toks); {
		// A run of single letters (not separated by a wide gap) is a spelled word.
		j := i
		for j < len(toks) && isSingleLetter(toks[j].text) && (j == i || !toks[j].wideGap) {
			j++
		}
		if j-i == 1 && toks[i].asIn && initialOfNeighbour(toks[i].key, parts, toks[j:]) {
			i = j // "Garcia, G as in George": the letter confirms a word already said
			continue
		}
		if j-i >= 2 {
			var b strings.Builder
			for _, t := range toks[i:j] {
				b.WriteString(t.text)
			}
			// Letters that spell a filler or a lead-in ("U M", "H I") are not part of a name.
			if k := fold(b.String()); !nameFillers[k] && !(len(parts) == 0 && nameLeadIns[k]) {
				parts = append(parts, nameWord{capitalize(b.String()), true})
			}
			i = j
			continue
		}
		joined := spelledHyphens(toks[i].text)
		parts = append(parts, nameWord{capitalize(joined), joined != toks[i].text})
		i++
	}
	out := dropRepeats(parts)
	for _, w := range out {
		if notNameWords[fold(w)] {
			return "", NeedName // "I'm calling about my appointment"
		}
	}
	if spokenNumber(out, lang) {
		return "", NeedName // an answer to a different question ("March third nineteen eighty")
	}
	name := strings.Join(out, " ")
	if strings.IndexFunc(name, unicode.IsLetter) < 0 {
		return "", NeedName
	}
	if len(name) > maxNameBytes {
		return "", Unclear
	}
	return name, OK
}

// nameWord is one output word and whether the caller spelled it.
type nameWord struct {
	text    string
	spelled bool
}

// dropRepeats removes a word said twice in a row and a spelled word that repeats one already said
// ("Robert. Robert Brown", "Maria Garcia, M A R I A"): callers restart, and spell to confirm.
func dropRepeats(ws []nameWord) []string {
	out := make([]string, 0, len(ws))
	seen := map[string]bool{}
	prev := ""
	for _, w := range ws {
		k := fold(w.text)
		if k == prev || (w.spelled && seen[k]) {
			continue
		}
		seen[k], prev = true, k
		out = append(out, w.text)
	}
	return out
}

type nameTok struct {
	text    string
	key     string // folded text, for matching lead-ins
	wideGap bool   // preceded by two or more whitespace characters
	asIn    bool   // a letter spelled with a word: "M as in Mary"
}

// asInWords introduce the word a letter is spelled with: "M as in Mary",
// "M for Mike", "M like Mary", "M de María", "M como (en) Manuel".
var asInWords = [][]string{{"as", "in"}, {"as"}, {"for"}, {"like"}, {"of"}, {"de"}, {"como", "en"}, {"como"}, {"con"}}

// asInLetters replaces "M as in Mary" with the letter M. The spelling word
// must start with the letter (NATO words and names do), so "J de la Cruz"
// or a real name after "de" is left alone.
func asInLetters(toks []nameTok) []nameTok {
	out := toks[:0:0]
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if isSingleLetter(t.text) {
			if n := asInAt(toks[i+1:], t.key); n > 0 {
				t.asIn = true
				out = append(out, t)
				i += n
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// asInAt returns how many tokens of ws form "as in <word starting with letter>".
func asInAt(ws []nameTok, letter string) int {
	for _, ph := range asInWords {
		if len(ws) <= len(ph) || !foldedEqual(ws, ph) {
			continue
		}
		if w := ws[len(ph)].key; len(w) > 1 && strings.HasPrefix(w, letter) {
			return len(ph) + 1
		}
	}
	return 0
}

// initialOfNeighbour reports whether a lone spelled letter is the initial of
// the word said just before or just after it.
func initialOfNeighbour(letter string, before []nameWord, after []nameTok) bool {
	if len(before) > 0 && strings.HasPrefix(fold(before[len(before)-1].text), letter) {
		return true
	}
	return len(after) > 0 && !isSingleLetter(after[0].text) && strings.HasPrefix(after[0].key, letter)
}

// nameTokens splits on anything that is not a letter, mark, digit, apostrophe or hyphen. Only whitespace
// counts towards a wide gap, so "M, A, R, I, A" is still one spelled word.
func nameTokens(s string) []nameTok {
	var toks []nameTok
	var cur strings.Builder
	spaces := 0
	flush := func() {
		if cur.Len() == 0 {
			return
		}
		t := strings.Trim(cur.String(), "'-")
		cur.Reset()
		if t != "" {
			toks = append(toks, nameTok{text: t, key: fold(t), wideGap: spaces >= 2})
		}
		spaces = 0
	}
	for _, r := range s {
		switch {
		case r == '’' || r == '‘' || r == 'ʼ' || r == '`':
			cur.WriteByte('\'')
		case r == '‐' || r == '‑' || r == '–':
			cur.WriteByte('-')
		case unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r) || r == '\'' || r == '-':
			cur.WriteRune(r)
		default:
			flush()
			if unicode.IsSpace(r) {
				spaces++
			}
		}
	}
	flush()
	return toks
}

// nameIntros introduce the name and are searched anywhere: everything up to the last one is dropped
// ("oh hi yes my name is Maria Garcia"). They are all multi-word, so they cannot be part of a name.
var nameIntros = [][]string{
	{"my", "name", "is"}, {"my", "full", "name", "is"}, {"my", "name's"}, {"the", "name", "is"}, {"name", "is"},
	{"this", "is"}, {"it", "is"}, {"i", "am"}, {"i'm"},
	{"me", "llamo"}, {"mi", "nombre", "es"}, {"mi", "nombre", "completo", "es"}, {"yo", "soy"}, {"habla"},
}

// nameLeadIns are single words removed only from the front, repeatedly.
var nameLeadIns = map[string]bool{
	"it's": true, "its": true, "im": true, "hi": true, "hello": true, "hey": true, "yes": true, "yeah": true,
	"ok": true, "okay": true, "sure": true, "so": true, "well": true, "soy": true, "hola": true, "si": true,
	"bueno": true, "pues": true, "sorry": true,
}

var nameTrailers = [][]string{
	{"thank", "you"}, {"thanks"}, {"please"}, {"gracias"}, {"por", "favor"}, {"calling"}, {"speaking"},
	{"here"}, {"al", "habla"},
}

// notNameWords never occur in a personal name but do occur in sentences callers say instead of one.
var notNameWords = map[string]bool{
	"my": true, "your": true, "about": true, "calling": true, "call": true, "appointment": true,
	"appointments": true, "medication": true, "medications": true, "prescription": true, "refill": true,
	"want": true, "need": true, "help": true, "what": true, "why": true, "how": true, "is": true, "are": true,
	"the": true, "to": true, "for": true, "with": true, "don't": true, "know": true, "agent": true,
	"representative": true, "operator": true, "phone": true, "number": true, "birthday": true,
	"mi": true, "cita": true, "citas": true, "quiero": true, "necesito": true, "sobre": true, "para": true,
	"llamo": true, "llamando": true, "agente": true, "representante": true, "ayuda": true,
	"didn't": true, "can't": true, "not": true, "it": true, "that": true, "was": true, "get": true,
}

// nameSafeNumberWords are number-word homophones that are also surnames or name particles (Oh, Won, Una).
var nameSafeNumberWords = map[string]bool{"o": true, "oh": true, "won": true, "to": true, "too": true,
	"for": true, "fore": true, "ate": true, "tree": true, "una": true, "un": true, "may": true, "mar": true}

// spokenNumber reports whether every word is a number, month or date filler word and at least one is a
// number that is not also a name: such an answer is a date or digits said at the name question.
func spokenNumber(ws []string, lang Lang) bool {
	numbers := 0
	for _, w := range ws {
		for _, part := range strings.Split(fold(w), "-") {
			t := classify(part, lang)
			switch t.kind {
			case kUnit, kTeen, kTens, kTwoDigit, kHundred, kHundreds, kThousand, kOrdinal, kRepeat:
				if !nameSafeNumberWords[part] {
					numbers++
				}
			case kMonth, kFiller, kJoin:
			default:
				return false
			}
		}
	}
	return numbers > 0
}

var nameFillers = map[string]bool{
	"uh": true, "uhh": true, "um": true, "umm": true, "er": true, "erm": true, "ah": true, "hmm": true,
	"mm": true, "eh": true, "ehh": true, "mmm": true,
}

func stripNameFiller(toks []nameTok) []nameTok {
	kept := toks[:0]
	for _, t := range toks {
		if !nameFillers[t.key] {
			kept = append(kept, t)
		}
	}
	toks = kept
	for i := len(toks) - 1; i >= 0; i-- {
		if n := introAt(toks[i:]); n > 0 {
			toks = toks[i+n:]
			break
		}
	}
	for len(toks) > 0 {
		w := toks[0].key
		// "Oh" is also a surname; treat it as an interjection only before a full name.
		if nameLeadIns[w] || (w == "oh" && len(toks) >= 3) {
			toks = toks[1:]
			continue
		}
		break
	}
	if len(toks) > 0 {
		toks[0].wideGap = false
	}
	for changed := true; changed; {
		changed = false
		for _, ph := range nameTrailers {
			if len(toks) >= len(ph) && foldedEqual(toks[len(toks)-len(ph):], ph) {
				toks, changed = toks[:len(toks)-len(ph)], true
			}
		}
	}
	return toks
}

func introAt(toks []nameTok) int {
	best := 0
	for _, ph := range nameIntros {
		if len(ph) > best && len(toks) >= len(ph) && foldedEqual(toks[:len(ph)], ph) {
			best = len(ph)
		}
	}
	return best
}

func foldedEqual(toks []nameTok, words []string) bool {
	for i, w := range words {
		if toks[i].key != w {
			return false
		}
	}
	return true
}

func isSingleLetter(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size == len(s) && unicode.IsLetter(r)
}

// spelledHyphens joins "M-A-R-I-A" into "MARIA"; real hyphenated names ("Garcia-Lopez") are left alone.
func spelledHyphens(s string) string {
	parts := strings.Split(s, "-")
	if len(parts) < 2 {
		return s
	}
	for _, p := range parts {
		if !isSingleLetter(p) {
			return s
		}
	}
	return strings.Join(parts, "")
}

// capitalize gives a word said in one case ("maria", "GARCIA") an initial capital and one after each hyphen
// or name-prefix apostrophe ("o'brien" → "O'Brien"); a mixed-case word is kept as the caller or ASR gave it.
func capitalize(w string) string {
	if w != strings.ToLower(w) && w != strings.ToUpper(w) {
		return w
	}
	var b strings.Builder
	b.Grow(len(w))
	start, run := true, 0 // run counts letters since the last boundary
	for _, r := range w {
		if start {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		// A capital follows a hyphen, and an apostrophe after one letter (O'Brien, D'Angelo) but not a
		// contraction (didn't).
		start = r == '-' || (r == '\'' && run == 1)
		if r == '-' || r == '\'' {
			run = 0
		} else {
			run++
		}
	}
	return b.String()
}
