package spoken

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The round-trip tests spell values the way callers say them (independently of the normalizer's tables)
// and check the normalizer recovers the exact value, across every date and every 4-digit string.

var (
	enUnits   = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
	enTeens   = []string{"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
	enTens    = []string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}
	enOrdUnit = []string{"", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"}
	enOrdTeen = []string{"tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth"}
	enMonths  = []string{"", "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
	esUnits   = []string{"cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"}
	esTeens   = []string{"diez", "once", "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho", "diecinueve"}
	esTwenty  = []string{"veinte", "veintiuno", "veintidós", "veintitrés", "veinticuatro", "veinticinco", "veintiséis", "veintisiete", "veintiocho", "veintinueve"}
	esTens    = []string{"", "", "", "treinta", "cuarenta", "cincuenta", "sesenta", "setenta", "ochenta", "noventa"}
	esMonths  = []string{"", "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"}
)

// enPair says 0-99 as a two-digit group: 5 → "oh five", 45 → "forty-five", 80 → "eighty".
func enPair(n int) string {
	switch {
	case n < 10:
		return "oh " + enUnits[n]
	case n < 20:
		return enTeens[n-10]
	case n%10 == 0:
		return enTens[n/10]
	}
	return enTens[n/10] + "-" + enUnits[n%10]
}

func enOrdinal(n int) string {
	switch {
	case n < 10:
		return enOrdUnit[n]
	case n < 20:
		return enOrdTeen[n-10]
	case n%10 == 0:
		return enTens[n/10][:len(enTens[n/10])-1] + "ieth"
	}
	return enTens[n/10] + " " + enOrdUnit[n%10]
}

// enYears returns the usual ways to say a year.
func enYears(y int) []string {
	hi, lo := y/100, y%100
	switch {
	case y == 2000:
		return []string{"two thousand"}
	case y < 2000 && lo == 0:
		return []string{enPair(hi) + " hundred"}
	case y < 2000:
		return []string{enPair(hi) + " " + enPair(lo)}
	case lo < 10:
		return []string{"two thousand " + enUnits[lo], "two thousand and " + enUnits[lo], "twenty " + enPair(lo)}
	}
	return []string{"two thousand " + strings.ReplaceAll(enPair(lo), "-", " "), "twenty " + enPair(lo)}
}

func esNumber(n int) string { // 0-99
	switch {
	case n < 10:
		return esUnits[n]
	case n < 20:
		return esTeens[n-10]
	case n < 30:
		return esTwenty[n-20]
	case n%10 == 0:
		return esTens[n/10]
	}
	return esTens[n/10] + " y " + esUnits[n%10]
}

func esYear(y int) string {
	if y < 2000 {
		s := "mil novecientos"
		if y%100 != 0 {
			s += " " + esNumber(y%100)
		}
		return s
	}
	if y == 2000 {
		return "dos mil"
	}
	return "dos mil " + esNumber(y%100)
}

func TestDateRoundTrip(t *testing.T) {
	now := testNow
	checked := 0
	// Every third day keeps the sweep well under a second while still hitting every month end and leap day
	// across the cycle (3 is coprime with 7 and with month lengths).
	for d := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC); !d.After(now); d = d.AddDate(0, 0, 3) {
		y, m, day := d.Date()
		want := d.Format(time.DateOnly)
		forms := []struct {
			in   string
			lang Lang
		}{
			{fmt.Sprintf("%02d%02d%04d", m, day, y), English},
			{fmt.Sprintf("%02d%02d%04d", m, day, y), Spanish},
			{fmt.Sprintf("%d/%d/%d", m, day, y), English},
			{fmt.Sprintf("%d/%d/%d", day, m, y), Spanish},
			{fmt.Sprintf("%s %d, %d", enMonths[m], day, y), English},
			{fmt.Sprintf("the %s of %s %d", enOrdinal(day), enMonths[m], y), English},
			{fmt.Sprintf("%s de %s de %s", esNumber(day), esMonths[m], esYear(y)), Spanish},
			{fmt.Sprintf("el %d de %s de %d", day, esMonths[m], y), Spanish},
		}
		for _, yr := range enYears(y) {
			forms = append(forms, struct {
				in   string
				lang Lang
			}{fmt.Sprintf("%s %s %s", enMonths[m], enOrdinal(day), yr), English})
		}
		for _, f := range forms {
			got, r := Date(f.in, f.lang, now)
			if got != want || r != OK {
				t.Fatalf("Date(%q, %s) = %q, %q; want %q", f.in, f.lang, got, r, want)
			}
			checked++
		}
	}
	t.Logf("%d spellings checked", checked)
}

func TestDigitsRoundTrip(t *testing.T) {
	for n := range 10000 {
		want := fmt.Sprintf("%04d", n)
		var units, esu []string
		for _, c := range want {
			units = append(units, enUnits[c-'0'])
			esu = append(esu, esUnits[c-'0'])
		}
		hi, lo := n/100, n%100
		forms := []struct {
			in   string
			lang Lang
		}{
			{want, English},
			{strings.Join(strings.Split(want, ""), " "), English},
			{strings.Join(units, " "), English},
			{strings.Join(esu, " "), Spanish},
		}
		if hi >= 10 && lo >= 10 { // "forty five sixty seven": pairs without a leading zero
			forms = append(forms,
				struct {
					in   string
					lang Lang
				}{enPair(hi) + " " + enPair(lo), English},
				struct {
					in   string
					lang Lang
				}{esNumber(hi) + " " + esNumber(lo), Spanish})
		}
		for _, f := range forms {
			got, r := Digits(f.in, 4, f.lang)
			if got != want || r != OK {
				t.Fatalf("Digits(%q, 4, %s) = %q, %q; want %q", f.in, f.lang, got, r, want)
			}
		}
	}
}
