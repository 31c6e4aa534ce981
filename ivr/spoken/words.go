package spoken

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxInput bounds the work done on one transcript. Real answers are a few dozen bytes; anything longer is
// noise, and cutting it keeps every normalizer linear in a small constant.
const maxInput = 1024

// fold lower-cases s and removes the Spanish/Latin accents (precomposed or combining) that ASR engines add or drop inconsistently
// ("español"/"espanol", "sí"/"si"), so table lookups need one key per word.
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToLower(s) {
		switch r {
		case 'á', 'à', 'ä', 'â', 'ã':
			r = 'a'
		case 'é', 'è', 'ë', 'ê':
			r = 'e'
		case 'í', 'ì', 'ï', 'î':
			r = 'i'
		case 'ó', 'ò', 'ö', 'ô', 'õ':
			r = 'o'
		case 'ú', 'ù', 'ü', 'û':
			r = 'u'
		case 'ñ':
			r = 'n'
		case 'ç':
			r = 'c'
		case '’', '‘', '`', 'ʼ':
			r = '\''
		}
		if unicode.Is(unicode.Mn, r) {
			continue // a combining accent from decomposed input ("e" + U+0301)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// truncate cuts s to at most maxInput bytes on a rune boundary and replaces invalid UTF-8.
func truncate(s string) string {
	s = strings.ToValidUTF8(s, " ")
	if len(s) <= maxInput {
		return s
	}
	cut := maxInput
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// words splits a transcript into folded word tokens for the number, date, yes/no and intent normalizers.
// Punctuation becomes a separator, "-" and "/" too ("twenty-fifth", "3/3/80"), except that a comma between two
// digits is dropped ("4,567"). Apostrophes stay inside words ("that's") but not at their edges ("'80").
func words(s string) []string {
	s = fold(truncate(s))
	var b strings.Builder
	b.Grow(len(s))
	prev := rune(0)
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == ',' && i > 0 && i+1 < len(rs) && isASCIIDigit(prev) && isASCIIDigit(rs[i+1]):
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '\'':
			b.WriteRune(r)
		default:
			b.WriteByte(' ')
		}
		prev = r
	}
	f := strings.Fields(b.String())
	out := f[:0]
	for _, w := range f {
		w = strings.Trim(w, "'")
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

func isASCIIDigit(r rune) bool { return r >= '0' && r <= '9' }

func allASCIIDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// tokKind classifies one word for the number grammar.
type tokKind uint8

const (
	kUnknown  tokKind = iota
	kFiller           // ignorable in dates and digit strings
	kJoin             // "and" / "y": optional glue inside a number ("two thousand and five", "cuarenta y cinco")
	kUnit             // 0-9 spoken
	kTeen             // 10-19
	kTens             // 20, 30 … 90
	kTwoDigit         // a complete 21-99 word (Spanish "veinticinco")
	kHundred          // "hundred": multiplies what precedes it
	kHundreds         // Spanish "novecientos": a complete hundreds value
	kThousand         // "thousand" / "mil"
	kOrdinal          // first … thirty-first, 1st, 25th, primero
	kNumeral          // ASCII digits as typed or formatted by ASR
	kMonth            // month name or abbreviation
	kRepeat           // "double" / "triple": val is the repeat count
)

type tok struct {
	kind tokKind
	val  int
	text string // the digits of a kNumeral
}

var enWords = map[string]tok{
	"zero": {kUnit, 0, ""}, "oh": {kUnit, 0, ""}, "o": {kUnit, 0, ""},
	"one": {kUnit, 1, ""}, "won": {kUnit, 1, ""},
	"two": {kUnit, 2, ""}, "to": {kUnit, 2, ""}, "too": {kUnit, 2, ""},
	"three": {kUnit, 3, ""}, "tree": {kUnit, 3, ""},
	"four": {kUnit, 4, ""}, "for": {kUnit, 4, ""}, "fore": {kUnit, 4, ""},
	"five": {kUnit, 5, ""}, "six": {kUnit, 6, ""}, "seven": {kUnit, 7, ""},
	"eight": {kUnit, 8, ""}, "ate": {kUnit, 8, ""},
	"nine": {kUnit, 9, ""}, "niner": {kUnit, 9, ""},
	"ten": {kTeen, 10, ""}, "eleven": {kTeen, 11, ""}, "twelve": {kTeen, 12, ""}, "thirteen": {kTeen, 13, ""},
	"fourteen": {kTeen, 14, ""}, "fifteen": {kTeen, 15, ""}, "sixteen": {kTeen, 16, ""},
	"seventeen": {kTeen, 17, ""}, "eighteen": {kTeen, 18, ""}, "nineteen": {kTeen, 19, ""},
	"twenty": {kTens, 20, ""}, "thirty": {kTens, 30, ""}, "forty": {kTens, 40, ""}, "fourty": {kTens, 40, ""},
	"fifty": {kTens, 50, ""}, "sixty": {kTens, 60, ""}, "seventy": {kTens, 70, ""},
	"eighty": {kTens, 80, ""}, "ninety": {kTens, 90, ""},
	"hundred": {kHundred, 100, ""}, "thousand": {kThousand, 1000, ""},
	"first": {kOrdinal, 1, ""}, "second": {kOrdinal, 2, ""}, "third": {kOrdinal, 3, ""},
	"fourth": {kOrdinal, 4, ""}, "fifth": {kOrdinal, 5, ""}, "sixth": {kOrdinal, 6, ""},
	"seventh": {kOrdinal, 7, ""}, "eighth": {kOrdinal, 8, ""}, "ninth": {kOrdinal, 9, ""},
	"tenth": {kOrdinal, 10, ""}, "eleventh": {kOrdinal, 11, ""}, "twelfth": {kOrdinal, 12, ""},
	"thirteenth": {kOrdinal, 13, ""}, "fourteenth": {kOrdinal, 14, ""}, "fifteenth": {kOrdinal, 15, ""},
	"sixteenth": {kOrdinal, 16, ""}, "seventeenth": {kOrdinal, 17, ""}, "eighteenth": {kOrdinal, 18, ""},
	"nineteenth": {kOrdinal, 19, ""}, "twentieth": {kOrdinal, 20, ""}, "thirtieth": {kOrdinal, 30, ""},
	"double": {kRepeat, 2, ""}, "triple": {kRepeat, 3, ""},
	"and":     {kJoin, 0, ""},
	"january": {kMonth, 1, ""}, "jan": {kMonth, 1, ""}, "february": {kMonth, 2, ""}, "feb": {kMonth, 2, ""},
	"march": {kMonth, 3, ""}, "mar": {kMonth, 3, ""}, "april": {kMonth, 4, ""}, "apr": {kMonth, 4, ""},
	"may": {kMonth, 5, ""}, "june": {kMonth, 6, ""}, "jun": {kMonth, 6, ""},
	"july": {kMonth, 7, ""}, "jul": {kMonth, 7, ""}, "august": {kMonth, 8, ""}, "aug": {kMonth, 8, ""},
	"september": {kMonth, 9, ""}, "sept": {kMonth, 9, ""}, "sep": {kMonth, 9, ""},
	"october": {kMonth, 10, ""}, "oct": {kMonth, 10, ""}, "november": {kMonth, 11, ""}, "nov": {kMonth, 11, ""},
	"december": {kMonth, 12, ""}, "dec": {kMonth, 12, ""},
	// Filler around dates and digit strings ("I was born on the third of March", "it's four five six seven").
	"the": {kFiller, 0, ""}, "of": {kFiller, 0, ""}, "on": {kFiller, 0, ""}, "in": {kFiller, 0, ""},
	"um": {kFiller, 0, ""}, "umm": {kFiller, 0, ""}, "uh": {kFiller, 0, ""}, "uhh": {kFiller, 0, ""},
	"er": {kFiller, 0, ""}, "erm": {kFiller, 0, ""}, "ah": {kFiller, 0, ""}, "hmm": {kFiller, 0, ""},
	"it's": {kFiller, 0, ""}, "its": {kFiller, 0, ""}, "it": {kFiller, 0, ""}, "is": {kFiller, 0, ""},
	"my": {kFiller, 0, ""}, "born": {kFiller, 0, ""}, "was": {kFiller, 0, ""}, "i": {kFiller, 0, ""},
	"birthday": {kFiller, 0, ""}, "birth": {kFiller, 0, ""}, "date": {kFiller, 0, ""}, "dob": {kFiller, 0, ""},
	"i'm": {kFiller, 0, ""}, "are": {kFiller, 0, ""}, "number": {kFiller, 0, ""}, "digits": {kFiller, 0, ""},
	"code": {kFiller, 0, ""}, "social": {kFiller, 0, ""}, "ssn": {kFiller, 0, ""}, "okay": {kFiller, 0, ""},
	"ok": {kFiller, 0, ""}, "so": {kFiller, 0, ""}, "yes": {kFiller, 0, ""}, "sure": {kFiller, 0, ""},
}

var esWords = map[string]tok{
	"cero": {kUnit, 0, ""}, "uno": {kUnit, 1, ""}, "un": {kUnit, 1, ""}, "una": {kUnit, 1, ""},
	"dos": {kUnit, 2, ""}, "tres": {kUnit, 3, ""}, "cuatro": {kUnit, 4, ""}, "cinco": {kUnit, 5, ""},
	"seis": {kUnit, 6, ""}, "siete": {kUnit, 7, ""}, "ocho": {kUnit, 8, ""}, "nueve": {kUnit, 9, ""},
	"diez": {kTeen, 10, ""}, "once": {kTeen, 11, ""}, "doce": {kTeen, 12, ""}, "trece": {kTeen, 13, ""},
	"catorce": {kTeen, 14, ""}, "quince": {kTeen, 15, ""}, "dieciseis": {kTeen, 16, ""},
	"diecisiete": {kTeen, 17, ""}, "dieciocho": {kTeen, 18, ""}, "diecinueve": {kTeen, 19, ""},
	"veinte": {kTens, 20, ""}, "veintiuno": {kTwoDigit, 21, ""}, "veintiun": {kTwoDigit, 21, ""},
	"veintiuna": {kTwoDigit, 21, ""}, "veintidos": {kTwoDigit, 22, ""}, "veintitres": {kTwoDigit, 23, ""},
	"veinticuatro": {kTwoDigit, 24, ""}, "veinticinco": {kTwoDigit, 25, ""}, "veintiseis": {kTwoDigit, 26, ""},
	"veintisiete": {kTwoDigit, 27, ""}, "veintiocho": {kTwoDigit, 28, ""}, "veintinueve": {kTwoDigit, 29, ""},
	"treinta": {kTens, 30, ""}, "cuarenta": {kTens, 40, ""}, "cincuenta": {kTens, 50, ""},
	"sesenta": {kTens, 60, ""}, "setenta": {kTens, 70, ""}, "ochenta": {kTens, 80, ""}, "noventa": {kTens, 90, ""},
	"cien": {kHundreds, 100, ""}, "ciento": {kHundreds, 100, ""}, "doscientos": {kHundreds, 200, ""},
	"trescientos": {kHundreds, 300, ""}, "cuatrocientos": {kHundreds, 400, ""}, "quinientos": {kHundreds, 500, ""},
	"seiscientos": {kHundreds, 600, ""}, "setecientos": {kHundreds, 700, ""}, "ochocientos": {kHundreds, 800, ""},
	"novecientos": {kHundreds, 900, ""}, "mil": {kThousand, 1000, ""},
	"primero": {kOrdinal, 1, ""}, "primer": {kOrdinal, 1, ""},
	"doble": {kRepeat, 2, ""},
	"y":     {kJoin, 0, ""},
	"enero": {kMonth, 1, ""}, "febrero": {kMonth, 2, ""}, "marzo": {kMonth, 3, ""}, "abril": {kMonth, 4, ""},
	"mayo": {kMonth, 5, ""}, "junio": {kMonth, 6, ""}, "julio": {kMonth, 7, ""}, "agosto": {kMonth, 8, ""},
	"septiembre": {kMonth, 9, ""}, "setiembre": {kMonth, 9, ""}, "octubre": {kMonth, 10, ""},
	"noviembre": {kMonth, 11, ""}, "diciembre": {kMonth, 12, ""},
	"de": {kFiller, 0, ""}, "del": {kFiller, 0, ""}, "el": {kFiller, 0, ""}, "la": {kFiller, 0, ""},
	"los": {kFiller, 0, ""}, "en": {kFiller, 0, ""}, "mi": {kFiller, 0, ""}, "es": {kFiller, 0, ""},
	"naci": {kFiller, 0, ""}, "fecha": {kFiller, 0, ""}, "nacimiento": {kFiller, 0, ""}, "son": {kFiller, 0, ""},
	"este": {kFiller, 0, ""}, "eh": {kFiller, 0, ""}, "pues": {kFiller, 0, ""}, "bueno": {kFiller, 0, ""},
	"numero": {kFiller, 0, ""}, "codigo": {kFiller, 0, ""}, "seguro": {kFiller, 0, ""}, "si": {kFiller, 0, ""},
}

// Words whose meaning depends on the language are only read in their own language: in Spanish "o" means
// "or" and "to"/"for" are not homophones of digits; in English "once" is not eleven.
var esOnlyInSpanish = map[string]bool{"once": true, "un": true, "una": true, "son": true, "este": true, "es": true}
var enOnlyInEnglish = map[string]bool{"o": true, "to": true, "too": true, "for": true, "fore": true, "won": true, "ate": true, "tree": true, "mar": true, "i": true, "is": true, "in": true}

// wordTable is one language's number, month and filler words. Adding a
// language is one more row in wordTables (plus its intent and yes/no
// phrases in intent.go, which accept every language at once).
type wordTable struct {
	lang  Lang
	words map[string]tok
	// only holds words read only in this language: elsewhere they are
	// ordinary words ("o" is "or" in Spanish, "once" is not eleven in English).
	only map[string]bool
	// dayFirst: numeric dates said or written day/month/year ("3/4/1980" is
	// the 3rd of April in Spanish).
	dayFirst bool
}

// wordTables: the first is the default for an unknown Lang.
var wordTables = []wordTable{
	{lang: English, words: enWords, only: enOnlyInEnglish},
	{lang: Spanish, words: esWords, only: esOnlyInSpanish, dayFirst: true},
}

func tableFor(lang Lang) *wordTable {
	for i := range wordTables {
		if wordTables[i].lang == lang {
			return &wordTables[i]
		}
	}
	return &wordTables[0]
}

// classify maps one folded word to its token, preferring the caller's
// language; the other languages' words count too (bilingual callers mix
// them) unless they are words only of their own language.
func classify(w string, lang Lang) tok {
	if allASCIIDigits(w) {
		return tok{kind: kNumeral, text: w}
	}
	if n, ok := numeralOrdinal(w); ok {
		return tok{kind: kOrdinal, val: n}
	}
	primary := tableFor(lang)
	if t, ok := primary.words[w]; ok {
		return t
	}
	for i := range wordTables {
		other := &wordTables[i]
		if other == primary {
			continue
		}
		if t, ok := other.words[w]; ok && !other.only[w] {
			return t
		}
	}
	return tok{kind: kUnknown}
}

// numeralOrdinal reads "1st", "2nd", "3rd", "25th" (and the ASR slip "3th").
func numeralOrdinal(w string) (int, bool) {
	if len(w) < 3 || len(w) > 4 {
		return 0, false
	}
	num, suf := w[:len(w)-2], w[len(w)-2:]
	if !allASCIIDigits(num) {
		return 0, false
	}
	switch suf {
	case "st", "nd", "rd", "th":
	default:
		return 0, false
	}
	n := 0
	for i := 0; i < len(num); i++ {
		n = n*10 + int(num[i]-'0')
	}
	return n, true
}
