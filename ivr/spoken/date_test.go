package spoken

import (
	"strings"
	"testing"
	"time"
)

// testNow is the fixed "today" for every date test (the project's calendar date).
var testNow = time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)

func TestDate(t *testing.T) {
	tests := []struct {
		in   string
		lang Lang
		want string
		r    Reason
	}{
		// Month name, English.
		{"March third nineteen eighty", English, "1980-03-03", OK},
		{"March 3rd, 1980.", English, "1980-03-03", OK},
		{"march 3rd 1980", English, "1980-03-03", OK},
		{"march 3 1980", English, "1980-03-03", OK},
		{"March 3, 1980", English, "1980-03-03", OK},
		{"the third of March 1980", English, "1980-03-03", OK},
		{"the 3rd of March, 1980", English, "1980-03-03", OK},
		{"3rd of March 1980", English, "1980-03-03", OK},
		{"third of march eighty", English, "1980-03-03", OK},
		{"march the third", English, "", NeedMonthDayYear},
		{"march the third nineteen eighty", English, "1980-03-03", OK},
		{"on march 3rd 1980", English, "1980-03-03", OK},
		{"I was born on March 3rd, 1980.", English, "1980-03-03", OK},
		{"nineteen eighty, March three", English, "1980-03-03", OK},
		{"March twenty-fifth nineteen eighty five", English, "1985-03-25", OK},
		{"december twenty fifth nineteen eighty five", English, "1985-12-25", OK},
		{"December thirty-first 1999", English, "1999-12-31", OK},
		{"January first two thousand", English, "2000-01-01", OK},
		{"July fourth two thousand one", English, "2001-07-04", OK},
		{"July fourth twenty oh one", English, "2001-07-04", OK},
		{"July fourth two thousand and five", English, "2005-07-04", OK},
		{"May 5th 2005", English, "2005-05-05", OK},
		{"sept 9 1959", English, "1959-09-09", OK},
		{"Jan 15 90", English, "1990-01-15", OK},
		{"15th January 1990", English, "1990-01-15", OK},
		{"January fifteenth nineteen ninety", English, "1990-01-15", OK},
		{"the fifteenth of January nineteen ninety", English, "1990-01-15", OK},
		{"October twelfth nineteen hundred and fifty", English, "1950-10-12", OK},
		{"April eleventh nineteen oh five", English, "1905-04-11", OK},
		{"june twenty twenty", English, "2020-06-20", OK}, // read back for confirmation
		{"june twenty first twenty twenty", English, "2020-06-21", OK},
		{"February twenty ninth nineteen forty eight", English, "1948-02-29", OK},
		{"February 29 2000", English, "2000-02-29", OK},
		{"February 29 1900", English, "", InvalidDate},
		{"February twenty ninth nineteen forty nine", English, "", InvalidDate},
		{"February thirtieth nineteen eighty", English, "", InvalidDate},
		{"April thirty first 1980", English, "", InvalidDate},
		{"March third", English, "", NeedMonthDayYear},
		{"March 1980", English, "", NeedMonthDayYear},
		{"march", English, "", NeedMonthDayYear},
		{"March third 2030", English, "", InvalidDate},
		{"December first 2026", English, "", InvalidDate},
		{"November twenty fifth 2026", English, "2026-11-25", OK},
		{"March third 1850", English, "", InvalidDate},
		{"March third oh five", English, "2005-03-03", OK},
		{"December third oh five", English, "2005-12-03", OK},
		{"March third twenty seven", English, "1927-03-03", OK},
		{"March April 1980", English, "", Unclear},
		// Numeric, English (M/D/Y).
		{"3/3/80", English, "1980-03-03", OK},
		{"03/03/1980", English, "1980-03-03", OK},
		{"3-3-1980", English, "1980-03-03", OK},
		{"12/25/1985", English, "1985-12-25", OK},
		{"3 3 80", English, "1980-03-03", OK},
		{"03 03 80", English, "1980-03-03", OK},
		{"0303 80", English, "1980-03-03", OK},
		{"o 3 o 3 80", English, "1980-03-03", OK},
		{"oh three oh three eighty", English, "1980-03-03", OK},
		{"zero three zero three nineteen eighty", English, "1980-03-03", OK},
		{"three three eighty", English, "1980-03-03", OK},
		{"one fifteen ninety", English, "1990-01-15", OK},
		{"01 15 1990", English, "1990-01-15", OK},
		{"twelve twenty five eighty five", English, "1985-12-25", OK},
		{"1980-03-03", English, "1980-03-03", OK},
		{"1980-3-3", English, "1980-03-03", OK},
		{"it's 03031980", English, "1980-03-03", OK},
		{"13/45/1980", English, "", InvalidDate},
		{"13/12/1980", English, "", InvalidDate},
		{"2/30/1980", English, "", InvalidDate},
		{"1 2 3 80", English, "", Unclear},
		{"3/3", English, "", NeedMonthDayYear},
		{"nineteen eighty", English, "", NeedMonthDayYear},
		{"1980", English, "", NeedMonthDayYear},
		{"3380", English, "", NeedMonthDayYear},      // could be a year; ask rather than guess 3/3/80
		{"one two one eighty", English, "", Unclear}, // 1/21/80 or 12/1/80
		{"1/21/80", English, "1980-01-21", OK},
		{"born in 1980", English, "", NeedMonthDayYear},
		// Keypad: MMDDYYYY or MMDDYY in both languages.
		{"03031980", English, "1980-03-03", OK},
		{"030380", English, "1980-03-03", OK},
		{"12251985#", English, "1985-12-25", OK},
		{"121990", English, "1990-12-19", OK},
		{"03031980", Spanish, "1980-03-03", OK},
		{"030405", Spanish, "2005-03-04", OK},
		{"030427", English, "1927-03-04", OK},
		{"02301980", English, "", InvalidDate},
		{"13011980", English, "", InvalidDate},
		{"0303", English, "", NeedMonthDayYear},
		{"0303198", English, "", NeedMonthDayYear},
		{"030319800", English, "", NeedMonthDayYear},
		// Spanish.
		{"tres de marzo de mil novecientos ochenta", Spanish, "1980-03-03", OK},
		{"el 25 de diciembre de 2001", Spanish, "2001-12-25", OK},
		{"veinticinco de diciembre del dos mil uno", Spanish, "2001-12-25", OK},
		{"primero de enero de 1970", Spanish, "1970-01-01", OK},
		{"Nací el treinta y uno de julio de mil novecientos noventa y nueve.", Spanish, "1999-07-31", OK},
		{"quince de septiembre de mil novecientos sesenta y dos", Spanish, "1962-09-15", OK},
		{"veintinueve de febrero de dos mil", Spanish, "2000-02-29", OK},
		{"treinta de febrero de mil novecientos ochenta", Spanish, "", InvalidDate},
		{"tres de marzo", Spanish, "", NeedMonthDayYear},
		{"el primero de enero de mil novecientos setenta", Spanish, "1970-01-01", OK},
		{"diez de octubre del noventa", Spanish, "1990-10-10", OK},
		{"1980-03-04", Spanish, "1980-03-04", OK}, // ISO is year-month-day in every language
		{"3/4/1980", Spanish, "1980-04-03", OK},
		{"3/4/1980", English, "1980-03-04", OK},
		{"25/12/1985", Spanish, "1985-12-25", OK},
		{"25/12/1985", English, "", InvalidDate},
		{"tres cuatro ochenta", Spanish, "1980-04-03", OK},
		{"diecise\u0301is de marzo de 1980", Spanish, "1980-03-16", OK}, // decomposed accent
		{"Dieciséis De Marzo De 1980", Spanish, "1980-03-16", OK},
		{"sixteenth of March 1980", Spanish, "1980-03-16", OK}, // English words in a Spanish call
		{"May 5th, 2005", Spanish, "2005-05-05", OK},
		// No input, noise.
		{"", English, "", NoInput},
		{"   ", English, "", NoInput},
		{"um, uh", English, "", NoInput},
		{"#", English, "", NoInput},
		{"I don't know", English, "", Unclear},
		{"no sé", Spanish, "", Unclear},
	}
	for _, tt := range tests {
		got, r := Date(tt.in, tt.lang, testNow)
		if got != tt.want || r != tt.r {
			t.Errorf("Date(%q, %s) = %q, %q; want %q, %q", tt.in, tt.lang, got, r, tt.want, tt.r)
		}
	}
}

// TestDatePivot pins the two-digit year rule at the edges of "today".
func TestDatePivot(t *testing.T) {
	tests := []struct {
		in   string
		now  time.Time
		want string
	}{
		{"11/25/26", testNow, "2026-11-25"},
		{"11/26/26", testNow, "1926-11-26"},
		{"01/01/00", testNow, "2000-01-01"},
		{"12/31/99", testNow, "1999-12-31"},
		{"03/03/05", time.Date(2005, 3, 2, 23, 0, 0, 0, time.UTC), "1905-03-03"},
		{"03/03/05", time.Date(2005, 3, 3, 0, 0, 0, 0, time.UTC), "2005-03-03"},
	}
	for _, tt := range tests {
		got, r := Date(tt.in, English, tt.now)
		if got != tt.want || r != OK {
			t.Errorf("Date(%q) at %s = %q, %q; want %q", tt.in, tt.now.Format(time.DateOnly), got, r, tt.want)
		}
	}
}

// TestDateTimeZone: "today" is the caller's calendar date in now's location, not UTC's.
func TestDateTimeZone(t *testing.T) {
	ny := time.FixedZone("EST", -5*3600)
	now := time.Date(2026, 11, 25, 21, 0, 0, 0, ny) // already Nov 26 in UTC
	if got, r := Date("11/26/2026", English, now); r != InvalidDate {
		t.Errorf("tomorrow in the caller's zone accepted: %q %q", got, r)
	}
	if got, r := Date("11/25/2026", English, now); r != OK || got != "2026-11-25" {
		t.Errorf("today rejected: %q %q", got, r)
	}
}

func BenchmarkDate(b *testing.B) {
	inputs := []string{"March third nineteen eighty", "3/3/80", "03031980", "tres de marzo de mil novecientos ochenta"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in := inputs[i%len(inputs)]
		if _, r := Date(in, English, testNow); r != OK {
			b.Fatal(in, r)
		}
	}
}

// BenchmarkDateWorstCase measures a maximal hostile transcript (cut at maxInput bytes).
func BenchmarkDateWorstCase(b *testing.B) {
	in := strings.Repeat("twenty one ", 200)
	b.ReportAllocs()
	for b.Loop() {
		Date(in, English, testNow)
	}
}
