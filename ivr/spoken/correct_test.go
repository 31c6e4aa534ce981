package spoken

import (
	"reflect"
	"testing"
	"time"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in   string
		lang Lang
		cmd  Command
		rest string
	}{
		{"no, that's wrong", English, CmdWrong, ""},
		{"No.", English, CmdWrong, ""},
		{"nope that's not right", English, CmdWrong, ""},
		{"uh no sorry that's wrong", English, CmdWrong, ""},
		{"no, March 3rd, 1980", English, CmdWrong, "march 3rd 1980"},
		{"that's wrong, it's four five six seven", English, CmdWrong, "four five six seven"},
		{"no, it's Maria Garcia", English, CmdWrong, "maria garcia"},
		{"go back", English, CmdBack, ""},
		{"can we go back please", English, CmdBack, ""},
		{"start over", English, CmdStartOver, ""},
		{"let's start over", English, CmdStartOver, ""},
		{"no, está mal", Spanish, CmdWrong, ""},
		{"eso no es correcto", Spanish, CmdWrong, ""},
		{"no es correcto", Spanish, CmdWrong, ""},
		{"regresar", Spanish, CmdBack, ""},
		{"quiero volver atrás", Spanish, CmdBack, ""},
		{"empezar de nuevo", Spanish, CmdStartOver, ""},
		{"volver a empezar por favor", Spanish, CmdStartOver, ""},
		// answers are not commands
		{"Maria Garcia", English, CmdNone, ""},
		{"Noah Brown", English, CmdNone, ""},
		{"March third nineteen eighty", English, CmdNone, ""},
		{"four five six seven", English, CmdNone, ""},
		{"I was born in back of the house on March 3rd 1980", English, CmdNone, ""},
		{"no sé", Spanish, CmdNone, ""},
		{"no me acuerdo", Spanish, CmdNone, ""},
		{"no problem", English, CmdNone, ""},
		{"I'm not sure", English, CmdNone, ""},
		{"", English, CmdNone, ""},
	}
	for _, tc := range tests {
		cmd, rest := ParseCommand(tc.in, tc.lang)
		if cmd != tc.cmd || rest != tc.rest {
			t.Errorf("ParseCommand(%q) = %q, %q; want %q, %q", tc.in, cmd, rest, tc.cmd, tc.rest)
		}
	}
}

func TestReadings(t *testing.T) {
	tests := []struct {
		in        string
		lang      Lang
		want      []string
		corrected bool
	}{
		{"March 4th — no, sorry, March 3rd, 1980", English, []string{"march 3rd 1980"}, true},
		{"four five six eight, sorry, four five six seven", English, []string{"four five six seven"}, true},
		{"November thirtieth, not thirteenth, nineteen fifty five", English, []string{"november thirtieth nineteen fifty five"}, true},
		{"November thirtieth not the thirteenth 1955", English, []string{"november thirtieth 1955"}, true},
		{"the twenty first, not twenty third, of May 1970", English, []string{"the twenty first of may 1970"}, true},
		{"4568 I mean 4567", English, []string{"4567"}, true},
		{"cuatro de marzo, no, perdón, tres de marzo de 1980", Spanish, []string{"tres de marzo de 1980"}, true},
		{"el treinta, no el trece, de noviembre de 1955", Spanish, []string{"el trece de noviembre de 1955", "el treinta de noviembre de 1955"}, true},
		{"not March 3rd, it's March 4th, 1980", English, []string{"march 4th 1980"}, true},
		{"it's not the thirteenth, it is the thirtieth of November 1955", English, []string{"the thirtieth of november 1955"}, true},
		{"no es el trece, es el treinta de noviembre de 1955", Spanish, []string{"el treinta de noviembre de 1955"}, true},
		{"no, March 3rd, 1980", English, []string{"March 3rd, 1980"[:0] + "no, March 3rd, 1980"}, false},
		{"March 3rd, 1980", English, []string{"March 3rd, 1980"}, false},
		{"sorry, March 3rd 1980", English, []string{"sorry, March 3rd 1980"}, false},
		{"", English, []string{""}, false},
	}
	for _, tc := range tests {
		got, corrected := Readings(tc.in, tc.lang)
		if !reflect.DeepEqual(got, tc.want) || corrected != tc.corrected {
			t.Errorf("Readings(%q) = %q, %v; want %q, %v", tc.in, got, corrected, tc.want, tc.corrected)
		}
	}
}

// The readings feed the real parsers: the last value wins.
func TestSelfCorrectionParses(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	first := func(in string, lang Lang, parse func(string) (string, Reason)) string {
		rs, _ := Readings(in, lang)
		for _, r := range rs {
			if v, why := parse(r); why == OK {
				return v
			}
		}
		return ""
	}
	date := func(lang Lang) func(string) (string, Reason) {
		return func(s string) (string, Reason) { return Date(s, lang, now) }
	}
	digits := func(s string) (string, Reason) { return Digits(s, 4, English) }
	cases := []struct{ in, want string }{
		{first("March 4th — no, sorry, March 3rd, 1980", English, date(English)), "1980-03-03"},
		{first("November thirtieth, not thirteenth, nineteen fifty five", English, date(English)), "1955-11-30"},
		{first("four five six eight, sorry, four five six seven", English, digits), "4567"},
		{first("cuatro de marzo, no, perdón, tres de marzo de 1980", Spanish, date(Spanish)), "1980-03-03"},
		{first("el treinta, no el trece, de noviembre de 1955", Spanish, date(Spanish)), "1955-11-13"},
		{first("not March 3rd, it's March 4th, 1980", English, date(English)), "1980-03-04"},
		{first("no es el trece, es el treinta de noviembre de 1955", Spanish, date(Spanish)), "1955-11-30"},
	}
	for i, c := range cases {
		if c.in != c.want {
			t.Errorf("case %d: got %q, want %q", i, c.in, c.want)
		}
	}
}

func TestNameSpelledWithWords(t *testing.T) {
	tests := []struct {
		in   string
		lang Lang
		want string
	}{
		{"Maria, M as in Mary, A R I A, Garcia", English, "Maria Garcia"},
		{"Garcia, G as in George", English, "Garcia"},
		{"Zoe, Z as in zebra O E, Nguyen", English, "Zoe Nguyen"},
		{"N as in Nancy G as in golf U Y E N", English, "Nguyen"},
		{"Mike Alpha", English, "Mike Alpha"},
		{"María, M de Mónica, A R I A, García", Spanish, "María García"},
		{"José, J como en Juan O S E, López", Spanish, "José López"},
		{"Juan de la Cruz", Spanish, "Juan De La Cruz"},
		{"J de Diego", Spanish, "J De Diego"},
	}
	for _, tc := range tests {
		got, why := Name(tc.in, tc.lang)
		if got != tc.want || why != OK {
			t.Errorf("Name(%q) = %q, %q; want %q", tc.in, got, why, tc.want)
		}
	}
}

func TestMentions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"Español, por favor", true}, {"en espanol", true}, {"ESPAÑOL", true}, {"Espanola Smith", false}, {"", false},
	} {
		if got := Mentions(tc.in, "espanol", "en espanol"); got != tc.want {
			t.Errorf("Mentions(%q) = %v", tc.in, got)
		}
	}
}
