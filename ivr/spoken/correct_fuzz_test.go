package spoken

import (
	"strings"
	"testing"
)

var correctionSeeds = []string{
	"no, that's wrong", "go back", "start over", "no, March 3rd, 1980", "March 4th — no, sorry, March 3rd, 1980",
	"four five six eight, sorry, four five six seven", "November thirtieth, not thirteenth", "not not not",
	"no no no no", "sorry sorry", "el treinta, no el trece", "empezar de nuevo", "regresar", "no sé",
	"Maria, M as in Mary, A R I A, Garcia", "M de María", "J como en Juan", "as in as in as in", "M as in",
	"not", "no", "twenty not twenty", "\xff no \xfe", strings.Repeat("no sorry ", 300), strings.Repeat("not ", 400),
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range append(correctionSeeds, seeds...) {
		f.Add(s, false)
	}
	known := map[Command]bool{CmdNone: true, CmdWrong: true, CmdBack: true, CmdStartOver: true}
	f.Fuzz(func(t *testing.T, in string, es bool) {
		lang := English
		if es {
			lang = Spanish
		}
		cmd, rest := ParseCommand(in, lang)
		if !known[cmd] {
			t.Fatalf("unknown command %q", cmd)
		}
		if cmd != CmdWrong && rest != "" {
			t.Fatalf("%q: rest %q without a rejection", in, rest)
		}
		if len(rest) > len(in)*2+8 {
			t.Fatalf("rest longer than the input: %q", rest)
		}
		if c2, r2 := ParseCommand(in, lang); c2 != cmd || r2 != rest {
			t.Fatal("not deterministic")
		}
	})
}

func FuzzReadings(f *testing.F) {
	for _, s := range append(correctionSeeds, seeds...) {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, es bool) {
		lang := English
		if es {
			lang = Spanish
		}
		rs, corrected := Readings(in, lang)
		if len(rs) == 0 || len(rs) > 2 {
			t.Fatalf("%q: %d readings", in, len(rs))
		}
		if !corrected && (len(rs) != 1 || rs[0] != in) {
			t.Fatalf("%q: changed without a correction: %q", in, rs)
		}
		for _, r := range rs {
			if corrected && len(r) > maxInput {
				t.Fatalf("reading longer than any input: %d bytes", len(r))
			}
			// Every reading still goes through the real parsers without panicking.
			Date(r, lang, testNow)
			Digits(r, 4, lang)
			Name(r, lang)
		}
	})
}

func FuzzNameSpelling(f *testing.F) {
	for _, s := range append(correctionSeeds, seeds...) {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, es bool) {
		lang := English
		if es {
			lang = Spanish
		}
		got, r := Name(in, lang)
		if r == OK && (got == "" || len(got) > maxNameBytes) {
			t.Fatalf("Name(%q) = %q", in, got)
		}
		if r != OK && got != "" {
			t.Fatalf("value %q with reason %q", got, r)
		}
		// Spelling never invents letters: every letter of the name was in the input.
		folded := fold(in)
		for _, c := range fold(got) {
			if c != ' ' && !strings.ContainsRune(folded, c) {
				t.Fatalf("Name(%q) = %q: %q not in the input", in, got, c)
			}
		}
	})
}
