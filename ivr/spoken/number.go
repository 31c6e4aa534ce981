package spoken

import "strconv"

// piece is one run of digits heard as a unit: "eighty" → "80", "oh" → "0", "1980" → "1980",
// "two thousand and five" → "2005". Dates and digit strings are assembled from pieces.
type piece struct {
	digits     string
	ordinal    bool // "third", "3rd": marks the day of a date
	splittable bool // typed digits ("0303", "03031980") may be cut between fields; spoken words may not
}

// item is a piece or a month name, in the order heard.
type item struct {
	month int // 1-12 when this item is a month name, else 0
	p     piece
}

// scan turns words into items. Unknown words are skipped (and counted), filler is dropped silently.
func scan(ws []string, lang Lang) (items []item, unknown int) {
	toks := make([]tok, len(ws))
	for i, w := range ws {
		toks[i] = classify(w, lang)
	}
	for i := 0; i < len(toks); {
		t := toks[i]
		switch t.kind {
		case kFiller, kJoin:
			i++
		case kUnknown, kHundred:
			unknown++
			i++
		case kMonth:
			items = append(items, item{month: t.val})
			i++
		case kNumeral:
			items = append(items, item{p: piece{digits: t.text, splittable: len(t.text) >= 3}})
			i++
		case kRepeat:
			// "double five" → 5 5; "triple 2" → 2 2 2. Each copy is its own piece so dates can join them.
			if i+1 < len(toks) && isSingleDigit(toks[i+1]) {
				d := singleDigit(toks[i+1])
				for range t.val {
					items = append(items, item{p: piece{digits: d}})
				}
				i += 2
				continue
			}
			unknown++
			i++
		default: // unit, teen, tens, two-digit, hundreds, thousand, ordinal
			v, ord, n := cardinal(toks[i:])
			if n == 0 {
				unknown++
				i++
				continue
			}
			items = append(items, item{p: piece{digits: strconv.Itoa(v), ordinal: ord}})
			i += n
		}
	}
	return items, unknown
}

func isSingleDigit(t tok) bool {
	return t.kind == kUnit || (t.kind == kNumeral && len(t.text) == 1)
}

func singleDigit(t tok) string {
	if t.kind == kNumeral {
		return t.text
	}
	return strconv.Itoa(t.val)
}

// cardinal reads one spoken number from the start of toks and reports how many tokens it used.
//
//	cardinal := [small] thousand [hundreds] [small] | hundreds [small] | small
//	hundreds := small "hundred" | Spanish hundreds word ("novecientos")
//	small    := tens [unit|ordinal] | teen | unit | two-digit word | ordinal
//
// "and"/"y" may glue parts. Two smalls in a row are two numbers ("nineteen eighty" → 19, 80), which is how
// people say years and digit pairs.
func cardinal(toks []tok) (val int, ordinal bool, n int) {
	i := 0
	skipJoin := func() int {
		j := i
		for j < len(toks) && toks[j].kind == kJoin {
			j++
		}
		return j
	}
	readSmall := func() (int, bool, bool) { // value, ordinal, ok
		if i >= len(toks) {
			return 0, false, false
		}
		t := toks[i]
		switch t.kind {
		case kTens:
			i++
			j := skipJoin()
			if j < len(toks) && (toks[j].kind == kUnit || toks[j].kind == kOrdinal) && toks[j].val >= 1 && toks[j].val <= 9 {
				i = j + 1
				return t.val + toks[j].val, toks[j].kind == kOrdinal, true
			}
			return t.val, false, true
		case kUnit, kTeen, kTwoDigit:
			i++
			return t.val, false, true
		case kOrdinal:
			i++
			return t.val, true, true
		}
		return 0, false, false
	}
	readHundreds := func() (int, bool) {
		if i < len(toks) && toks[i].kind == kHundreds {
			i++
			return toks[i-1].val, true
		}
		save := i
		if v, ord, ok := readSmall(); ok && !ord && v > 0 && i < len(toks) && toks[i].kind == kHundred {
			i++
			return v * 100, true
		}
		i = save
		return 0, false
	}
	// restSmall adds an optional small after a multiplier ("… and five", "… eighty five").
	restSmall := func(total int) (int, bool) {
		save := i
		i = skipJoin()
		if v, ord, ok := readSmall(); ok && v < 100 {
			return total + v, ord
		}
		i = save
		return total, false
	}

	// thousands
	save := i
	thousands := 0
	if toks[i].kind == kThousand {
		thousands, i = 1, i+1
	} else if v, ord, ok := readSmall(); ok && !ord && v > 0 && i < len(toks) && toks[i].kind == kThousand {
		thousands, i = v, i+1
	} else {
		i = save
	}
	if thousands > 0 {
		total := thousands * 1000
		save = i
		i = skipJoin()
		if h, ok := readHundreds(); ok {
			total += h
		} else {
			i = save
		}
		total, ord := restSmall(total)
		return total, ord, i
	}
	if h, ok := readHundreds(); ok {
		total, ord := restSmall(h)
		return total, ord, i
	}
	v, ord, ok := readSmall()
	if !ok {
		return 0, false, 0
	}
	return v, ord, i
}
