package spoken

import (
	"fmt"
	"strings"
	"time"
)

// Date turns a spoken or keypad birthdate into "YYYY-MM-DD".
//
// Accepted readings:
//   - a month name anywhere ("March third nineteen eighty", "the 3rd of March, 1980", "nineteen eighty March
//     three", "tres de marzo de mil novecientos ochenta", "el 25 de diciembre de 2001");
//   - keypad digits only, always MMDDYYYY or MMDDYY in both languages (the prompt says so);
//   - ISO "1980-03-03";
//   - other numeric speech ("3/3/80", "oh three oh three eighty", "0303 80"): month/day/year in English, but
//     day/month/year in Spanish, because that is how Spanish speakers say and write dates ("3/4/1980" is the
//     third of April).
//
// Two-digit years resolve against now: 20yy unless that date is after today, else 19yy. A birthdate after
// today or before 1900, or one that does not exist (February 30, month 13), is InvalidDate. A date missing
// its day or year is NeedMonthDayYear. More than one plausible reading is Unclear rather than a guess.
func Date(input string, lang Lang, now time.Time) (string, Reason) {
	trimmed := strings.TrimRight(strings.TrimSpace(input), "#")
	if allASCIIDigits(trimmed) {
		return keypadDate(trimmed, now)
	}
	ws := words(input)
	items, unknown := scan(ws, lang)
	if len(items) == 0 {
		if unknown == 0 {
			return "", NoInput
		}
		return "", Unclear
	}
	month, left, right, ok := splitAtMonth(items)
	if !ok {
		return "", Unclear
	}
	if month > 0 {
		return monthDate(month, left, right, now)
	}
	return numericDate(left, lang, now)
}

// keypadDate reads DTMF: MMDDYYYY or MMDDYY, nothing else.
func keypadDate(d string, now time.Time) (string, Reason) {
	switch len(d) {
	case 8, 6:
		c := candidate{m: d[0:2], d: d[2:4], y: d[4:]}
		return c.resolve(now)
	}
	return "", NeedMonthDayYear
}

// splitAtMonth separates pieces before and after the (single) month name. Repeating the same month is
// harmless ("March, the third of March"); two different months are not.
func splitAtMonth(items []item) (month int, left, right []piece, ok bool) {
	for _, it := range items {
		if it.month == 0 {
			if month == 0 {
				left = append(left, it.p)
			} else {
				right = append(right, it.p)
			}
			continue
		}
		if month != 0 && month != it.month {
			return 0, nil, nil, false
		}
		month = it.month
	}
	return month, left, right, true
}

// candidate is one way of reading the heard digits as month, day and year fields.
type candidate struct {
	m, d, y string
	rank    int // lower is more natural; ties between different dates are Unclear
}

type outcome struct {
	date      string
	rank      int
	shapeOnly bool // fields had the right lengths but the date does not exist or is out of range
}

// resolve validates one candidate: numeric fields, year pivot, calendar round-trip, range.
func (c candidate) resolve(now time.Time) (string, Reason) {
	if !allASCIIDigits(c.m) || !allASCIIDigits(c.d) || !allASCIIDigits(c.y) ||
		len(c.m) > 2 || len(c.d) > 2 || (len(c.y) != 2 && len(c.y) != 4) {
		return "", Unclear
	}
	m, d, y := atoi(c.m), atoi(c.d), atoi(c.y)
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return "", InvalidDate
	}
	ny, nm, nd := now.Date()
	today := ny*10000 + int(nm)*100 + nd
	if len(c.y) == 2 {
		y += 2000
		if y*10000+m*100+d > today {
			y -= 100
		}
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Year() != y || int(t.Month()) != m || t.Day() != d {
		return "", InvalidDate
	}
	if y < 1900 || y*10000+m*100+d > today {
		return "", InvalidDate
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d), OK
}

// monthDate handles speech with a month name: the other pieces are a day and a year, on either side.
func monthDate(month int, left, right []piece, now time.Time) (string, Reason) {
	m := fmt.Sprint(month)
	var cands []candidate
	add := func(day, year []piece, rank int) {
		ds, dok := joinDay(day)
		ys, yok := joinYear(year)
		if !dok || !yok {
			return
		}
		if !hasOrdinal(day) {
			rank += 2
		}
		cands = append(cands, candidate{m: m, d: ds, y: ys, rank: rank})
	}
	switch {
	case len(left) > 0 && len(right) > 0:
		add(left, right, 0) // "the third of March 1980", "3 de marzo de 1980"
		add(right, left, 0) // "nineteen eighty, March third"
	default:
		p := left
		if len(p) == 0 {
			p = right
		}
		if len(p) < 2 {
			return "", NeedMonthDayYear
		}
		for k := 1; k < len(p); k++ {
			add(p[:k], p[k:], 0) // "March third nineteen eighty"
			add(p[k:], p[:k], 1) // "March nineteen eighty, third"
		}
	}
	return pick(cands, now, NeedMonthDayYear)
}

// joinDay accepts 1-2 digits; an ordinal may only end the day ("twenty fifth").
func joinDay(ps []piece) (string, bool) {
	var b strings.Builder
	for i, p := range ps {
		if p.ordinal && i != len(ps)-1 {
			return "", false
		}
		if b.Len()+len(p.digits) > 2 {
			return "", false
		}
		b.WriteString(p.digits)
	}
	s := b.String()
	return s, len(s) >= 1 && len(s) <= 2
}

// joinYear accepts 2 or 4 digits from pieces said one after another ("nineteen" "eighty", "twenty" "oh" "one").
func joinYear(ps []piece) (string, bool) {
	var b strings.Builder
	for _, p := range ps {
		if p.ordinal || b.Len()+len(p.digits) > 4 {
			return "", false
		}
		b.WriteString(p.digits)
	}
	s := b.String()
	return s, len(s) == 2 || len(s) == 4
}

func hasOrdinal(ps []piece) bool {
	for _, p := range ps {
		if p.ordinal {
			return true
		}
	}
	return false
}

// numericDate handles digits without a month name. The heard digits are concatenated and cut into three
// fields; a cut may fall between pieces or inside typed digits ("0303"), never inside a spoken number.
func numericDate(ps []piece, lang Lang, now time.Time) (string, Reason) {
	var all strings.Builder
	allowed := map[int]bool{} // cut positions in the concatenation
	interior := map[int]bool{}
	for _, p := range ps {
		start := all.Len()
		all.WriteString(p.digits)
		allowed[all.Len()] = true
		if p.splittable {
			for k := start + 1; k < all.Len(); k++ {
				allowed[k] = true
				interior[k] = true
			}
		}
	}
	s := all.String()
	if len(ps) == 1 && (len(s) == 6 || len(s) == 8) {
		return keypadDate(s, now) // typed digits that ASR wrapped in words ("it's 03031980")
	}
	if len(s) < 4 || (len(ps) == 1 && len(s) <= 5) {
		return "", NeedMonthDayYear // a lone year or fragment ("1980", "3/3")
	}
	fallback := Unclear
	if len(s) == 4 {
		fallback = NeedMonthDayYear // "nineteen eighty"
	}
	var cands []candidate
	// Year first only when typed as four digits up front (ISO 1980-03-03).
	if len(ps) >= 1 && len(ps[0].digits) == 4 && !ps[0].ordinal {
		y, rest := s[:4], s[4:]
		for a := 1; a <= 2 && a < len(rest); a++ {
			if allowed[4+a] && len(rest)-a <= 2 && allowed[4] {
				cands = append(cands, candidate{y: y, m: rest[:a], d: rest[a:], rank: 0})
			}
		}
	}
	for a := 1; a <= 2; a++ {
		for b := 1; b <= 2; b++ {
			c := len(s) - a - b
			if (c != 2 && c != 4) || !allowed[a] || !allowed[a+b] {
				continue
			}
			rank := 0
			if interior[a] {
				rank++
			}
			if interior[a+b] {
				rank++
			}
			f1, f2, y := s[:a], s[a:a+b], s[a+b:]
			if tableFor(lang).dayFirst {
				cands = append(cands, candidate{d: f1, m: f2, y: y, rank: rank})
			} else {
				cands = append(cands, candidate{m: f1, d: f2, y: y, rank: rank})
			}
		}
	}
	return pick(cands, now, fallback)
}

// pick returns the single best valid reading. If none is valid it reports InvalidDate when some reading had
// the right shape (so the caller hears "that date doesn't look right"), else fallback.
func pick(cands []candidate, now time.Time, fallback Reason) (string, Reason) {
	best, bestRank, ambiguous := "", 1<<30, false
	invalid := false
	for _, c := range cands {
		date, r := c.resolve(now)
		switch r {
		case OK:
		case InvalidDate:
			invalid = true
			continue
		default:
			continue
		}
		switch {
		case c.rank < bestRank:
			best, bestRank, ambiguous = date, c.rank, false
		case c.rank == bestRank && date != best:
			ambiguous = true
		}
	}
	switch {
	case best != "" && !ambiguous:
		return best, OK
	case best != "":
		return "", Unclear
	case invalid:
		return "", InvalidDate
	}
	return "", fallback
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
