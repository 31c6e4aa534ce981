package authserver

import (
	"slices"
	"strings"
	"unicode"
)

// foldRune maps accented Latin letters to their base letter (NFD without the
// tables: the common Latin-1 / Latin Extended-A letters names use).
var foldTable = map[rune]string{
	'à': "a", 'á': "a", 'â': "a", 'ã': "a", 'ä': "a", 'å': "a", 'ā': "a", 'ă': "a", 'ą': "a", 'æ': "ae",
	'ç': "c", 'ć': "c", 'č': "c", 'ĉ': "c", 'ċ': "c",
	'ď': "d", 'đ': "d", 'ð': "d",
	'è': "e", 'é': "e", 'ê': "e", 'ë': "e", 'ē': "e", 'ė': "e", 'ę': "e", 'ě': "e",
	'ğ': "g", 'ĝ': "g", 'ġ': "g", 'ģ': "g",
	'ì': "i", 'í': "i", 'î': "i", 'ï': "i", 'ī': "i", 'į': "i", 'ı': "i",
	'ł': "l", 'ľ': "l", 'ĺ': "l", 'ļ': "l",
	'ñ': "n", 'ń': "n", 'ň': "n", 'ņ': "n",
	'ò': "o", 'ó': "o", 'ô': "o", 'õ': "o", 'ö': "o", 'ø': "o", 'ō': "o", 'ő': "o", 'œ': "oe", 'ơ': "o",
	'ŕ': "r", 'ř': "r",
	'ś': "s", 'š': "s", 'ş': "s", 'ș': "s", 'ß': "ss",
	'ť': "t", 'ţ': "t", 'ț': "t", 'þ': "th",
	'ù': "u", 'ú': "u", 'û': "u", 'ü': "u", 'ū': "u", 'ů': "u", 'ű': "u", 'ų': "u", 'ư': "u",
	'ý': "y", 'ÿ': "y",
	'ź': "z", 'ż': "z", 'ž': "z",
	'ạ': "a", 'ả': "a", 'ấ': "a", 'ầ': "a", 'ẩ': "a", 'ẫ': "a", 'ậ': "a", 'ắ': "a", 'ằ': "a", 'ẳ': "a", 'ẵ': "a", 'ặ': "a",
	'ẹ': "e", 'ẻ': "e", 'ẽ': "e", 'ế': "e", 'ề': "e", 'ể': "e", 'ễ': "e", 'ệ': "e",
	'ỉ': "i", 'ị': "i", 'ọ': "o", 'ỏ': "o", 'ố': "o", 'ồ': "o", 'ổ': "o", 'ỗ': "o", 'ộ': "o",
	'ớ': "o", 'ờ': "o", 'ở': "o", 'ỡ': "o", 'ợ': "o", 'ụ': "u", 'ủ': "u", 'ứ': "u", 'ừ': "u", 'ử': "u", 'ữ': "u", 'ự': "u",
	'ỳ': "y", 'ỵ': "y", 'ỷ': "y", 'ỹ': "y",
}

// NormalizeName folds case and accents, drops apostrophes, turns other
// punctuation into spaces and sorts the tokens, so that "O'Brien, James",
// "james obrien" and "JAMES O BRIEN"-style inputs meet. Token order is
// ignored because callers and ASR put family names first or last.
func NormalizeName(s string) string {
	return strings.Join(nameTokens(s), " ")
}

// nameTokens is NormalizeName before joining.
func nameTokens(s string) []string {
	toks := rawTokens(s)
	slices.Sort(toks)
	return toks
}

// rawTokens are the folded tokens in spoken order.
func rawTokens(s string) []string {
	if len(s) > 400 {
		s = s[:400]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r)
		case r == '\'' || r == '’' || r == '‘' || r == '`' || r == 'ʼ':
			// O'Brien → obrien
		case foldTable[r] != "":
			b.WriteString(foldTable[r])
		case unicode.IsLetter(r):
			b.WriteRune(r) // other scripts kept as they are
		default:
			b.WriteByte(' ') // digits, hyphens, dots, commas, spaces
		}
	}
	return strings.Fields(b.String())
}

// phoneticInitial rewrites word beginnings whose spelling hides the sound.
var phoneticInitial = []struct{ from, to string }{
	{"ngu", "w"}, // Nguyen ≈ "win"
	{"ng", "n"}, {"kn", "n"}, {"gn", "n"}, {"pn", "n"}, {"wr", "r"}, {"ps", "s"}, {"wh", "w"}, {"x", "s"},
}

// phoneticInner rewrites letter groups anywhere in a word (longest first).
var phoneticInner = []struct{ from, to string }{
	{"sch", "s"}, {"tch", "c"}, {"ph", "f"}, {"ck", "k"}, {"gh", "g"}, {"dg", "j"}, {"sh", "s"},
	{"ch", "c"}, {"th", "t"}, {"qu", "k"}, {"q", "k"}, {"x", "ks"}, {"z", "s"}, {"v", "f"}, {"ce", "se"},
	{"ci", "si"}, {"cy", "sy"}, {"c", "k"}, {"dt", "t"}, {"mb", "m"},
}

// Phonetic is a small Metaphone-like key for one normalized token: initial
// letter (vowels fold to "a"), consonant skeleton, doubled letters collapsed.
// It is deliberately coarse: the DOB and SSN-4 do the discriminating, the
// name only has to find the right few candidates despite ASR spelling.
func Phonetic(tok string) string {
	if tok == "" {
		return ""
	}
	w := tok
	for _, p := range phoneticInitial {
		if strings.HasPrefix(w, p.from) {
			w = p.to + w[len(p.from):]
			break
		}
	}
	for i := 0; i < len(w); {
		hit := false
		for _, p := range phoneticInner {
			if strings.HasPrefix(w[i:], p.from) {
				w = w[:i] + p.to + w[i+len(p.from):]
				i += len(p.to)
				hit = true
				break
			}
		}
		if !hit {
			i++
		}
	}
	var b strings.Builder
	var last byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if i == 0 {
			if strings.IndexByte("aeiouy", c) >= 0 {
				c = 'a'
			}
			b.WriteByte(c)
			last = c
			continue
		}
		if strings.IndexByte("aeiouyhw", c) >= 0 {
			last = 0
			continue
		}
		if c == last {
			continue
		}
		b.WriteByte(c)
		last = c
	}
	return b.String()
}

// NameKeys are the directory keys of a name: the normalized form and its
// phonetic form (both token-order independent), plus a phonetic form with
// one-letter tokens glued to the next. Lookup uses the same function, so a
// spoken name finds a registration when any key is shared. The phonetic key
// is coarse on purpose (John ≈ Jean); DOB and SSN-4 discriminate.
func NameKeys(name string) []string {
	toks := nameTokens(name)
	if len(toks) == 0 {
		return nil
	}
	ph := make([]string, len(toks))
	for i, t := range toks {
		ph[i] = Phonetic(t)
	}
	slices.Sort(ph)
	keys := []string{"n:" + strings.Join(toks, " "), "p:" + strings.Join(ph, " ")}
	// ASR splits prefixes off ("o brien", "d angelo"): glue one-letter
	// tokens to the next token, in spoken order.
	raw := rawTokens(name)
	var glued []string
	for i := 0; i < len(raw); i++ {
		if len(raw[i]) == 1 && i+1 < len(raw) {
			raw[i+1] = raw[i] + raw[i+1]
			continue
		}
		glued = append(glued, Phonetic(raw[i]))
	}
	slices.Sort(glued)
	if g := "p:" + strings.Join(glued, " "); g != keys[1] {
		keys = append(keys, g)
	}
	return keys
}
