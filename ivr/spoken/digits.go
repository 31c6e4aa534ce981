package spoken

import "strings"

// Digits returns exactly n ASCII digits from speech or keypad input: "four five six seven", "forty five
// sixty seven", ASR homophones ("for five six seven", "won", "to", "ate", "oh"), "double five", "triple two",
// "four thousand five hundred sixty seven", keypad "4567", "4 5 6 7", Spanish "cuatro cinco seis siete",
// "cuarenta y cinco sesenta y siete". Homophones that are ordinary Spanish words ("o" = or) count only in
// English. Any other count, or a month or ordinal word, is NeedDigits: the IVR asks again and never reads
// the digits back.
func Digits(input string, n int, lang Lang) (string, Reason) {
	if n <= 0 {
		return "", Unclear
	}
	ws := stripPhrases(words(input), digitPhrases)
	items, _ := scan(ws, lang)
	if len(ws) == 0 {
		return "", NoInput
	}
	var b strings.Builder
	for _, it := range items {
		if it.month != 0 || it.p.ordinal {
			return "", NeedDigits // "March", "third": not a digit string
		}
		b.WriteString(it.p.digits)
		if b.Len() > n {
			return "", NeedDigits
		}
	}
	if b.Len() != n {
		if b.Len() == 0 && onlyFiller(ws, lang) {
			return "", NoInput
		}
		return "", NeedDigits
	}
	return b.String(), OK
}

// digitPhrases are said around digit strings but contain number words themselves.
var digitPhrases = [][]string{
	{"last", "four"}, {"last", "4"}, {"last", "four", "digits"}, {"ultimos", "cuatro"}, {"ultimos", "4"},
	{"six", "digit"}, {"6", "digit"},
}

// stripPhrases removes every occurrence of the given word sequences.
func stripPhrases(ws []string, phrases [][]string) []string {
	out := make([]string, 0, len(ws))
	for i := 0; i < len(ws); {
		matched := 0
		for _, ph := range phrases {
			if len(ph) > matched && hasPrefixWords(ws[i:], ph) {
				matched = len(ph)
			}
		}
		if matched > 0 {
			i += matched
			continue
		}
		out = append(out, ws[i])
		i++
	}
	return out
}

func hasPrefixWords(ws, prefix []string) bool {
	if len(ws) < len(prefix) {
		return false
	}
	for i, p := range prefix {
		if ws[i] != p {
			return false
		}
	}
	return true
}

func onlyFiller(ws []string, lang Lang) bool {
	for _, w := range ws {
		if classify(w, lang).kind != kFiller {
			return false
		}
	}
	return true
}
