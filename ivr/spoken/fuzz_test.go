package spoken

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

var knownReasons = map[Reason]bool{OK: true, NoInput: true, NeedMonthDayYear: true, InvalidDate: true, NeedDigits: true, NeedName: true, Unclear: true}

// seeds gives every fuzz target the same realistic corpus plus hostile bytes.
var seeds = []string{
	"March third nineteen eighty", "3/3/80", "03031980", "oh three oh three eighty", "the 3rd of March, 1980.",
	"tres de marzo de mil novecientos ochenta", "veinticinco de diciembre del dos mil uno", "1980-03-03",
	"four five six seven", "forty five sixty seven", "double five six seven", "cuarenta y cinco sesenta y siete",
	"my name is uh Maria Garcia", "M A R I A   G A R C I A", "M-A-R-I-A", "me llamo José Pérez", "O'Brien-López",
	"yes", "no es correcto", "agent", "no me llegó", "I can't get texts", "", " ", "#", "*", "\xff\xfe", "1st 2nd 3rd",
	"nine hundred ninety nine thousand nine hundred ninety nine", "mil mil mil", "double double double",
	strings.Repeat("9", 2000), strings.Repeat("twenty ", 300), "\u0301\u0301a", "ǅ ß İ", "- ' - '",
}

func FuzzDate(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, false)
	}
	now := testNow
	f.Fuzz(func(t *testing.T, in string, es bool) {
		lang := English
		if es {
			lang = Spanish
		}
		got, r := Date(in, lang, now)
		if !knownReasons[r] {
			t.Fatalf("unknown reason %q", r)
		}
		if r != OK {
			if got != "" {
				t.Fatalf("value %q with reason %q", got, r)
			}
			return
		}
		d, err := time.Parse(time.DateOnly, got)
		if err != nil || d.Format(time.DateOnly) != got {
			t.Fatalf("Date(%q) = %q: not a valid YYYY-MM-DD", in, got)
		}
		if d.Year() < 1900 || got > now.Format(time.DateOnly) {
			t.Fatalf("Date(%q) = %q: out of range", in, got)
		}
		if again, r2 := Date(in, lang, now); again != got || r2 != r {
			t.Fatal("not deterministic")
		}
	})
}

func FuzzDigits(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, 4, false)
		f.Add(s, 6, true)
	}
	f.Fuzz(func(t *testing.T, in string, n int, es bool) {
		lang := English
		if es {
			lang = Spanish
		}
		n %= 12
		got, r := Digits(in, n, lang)
		if !knownReasons[r] {
			t.Fatalf("unknown reason %q", r)
		}
		if r != OK {
			if got != "" {
				t.Fatalf("value %q with reason %q", got, r)
			}
			return
		}
		if len(got) != n || !allASCIIDigits(got) {
			t.Fatalf("Digits(%q, %d) = %q: not exactly %d ASCII digits", in, n, got, n)
		}
	})
}

func FuzzName(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, es bool) {
		lang := English
		if es {
			lang = Spanish
		}
		got, r := Name(in, lang)
		if !knownReasons[r] {
			t.Fatalf("unknown reason %q", r)
		}
		if r != OK {
			if got != "" {
				t.Fatalf("value %q with reason %q", got, r)
			}
			return
		}
		switch {
		case !utf8.ValidString(got):
			t.Fatalf("Name(%q) = %q: invalid UTF-8", in, got)
		case len(got) > maxNameBytes:
			t.Fatalf("Name(%q): %d bytes", in, len(got))
		case strings.IndexFunc(got, unicode.IsLetter) < 0, strings.IndexFunc(got, unicode.IsDigit) >= 0:
			t.Fatalf("Name(%q) = %q: not name-like", in, got)
		case got != strings.TrimSpace(got), strings.Contains(got, "  "):
			t.Fatalf("Name(%q) = %q: untidy spacing", in, got)
		}
		// Cleaning a clean name changes nothing. The exception is lone letters that were spelled apart with
		// wide gaps ("A   B" → "A B"): with single spaces they read as one spelled word.
		if again, r2 := Name(got, lang); (again != got || r2 != OK) && !adjacentInitials(got) {
			t.Fatalf("Name(%q) = %q but Name(%q) = %q, %q", in, got, got, again, r2)
		}
	})
}

func FuzzDetectIntent(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, false)
	}
	known := map[Intent]bool{IntentNone: true}
	for _, row := range intentTable {
		known[row.intent] = true
	}
	known[IntentRepeat] = true
	f.Fuzz(func(t *testing.T, in string, es bool) {
		lang := English
		if es {
			lang = Spanish
		}
		if got := DetectIntent(in, lang); !known[got] {
			t.Fatalf("DetectIntent(%q) = %q: unknown intent", in, got)
		}
		if yes, ok := YesNo(in, lang); yes && !ok {
			t.Fatalf("YesNo(%q) = yes but not ok", in)
		}
	})
}

func adjacentInitials(name string) bool {
	f := strings.Fields(name)
	for i := 1; i < len(f); i++ {
		if isSingleLetter(f[i-1]) && isSingleLetter(f[i]) {
			return true
		}
	}
	return false
}
