package authserver

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Maria Garcia", "garcia maria"},
		{"GARCIA, Maria", "garcia maria"},
		{"James O'Brien", "james obrien"},
		{"james o’brien", "james obrien"},
		{"Zoë Müller-Lüdenscheidt", "ludenscheidt muller zoe"},
		{"  zoe   muller ludenscheidt ", "ludenscheidt muller zoe"},
		{"Nguyễn Văn An", "an nguyen van"},
		{"", ""},
		{"-- ,, ''", ""},
	}
	for _, tt := range tests {
		if got := NormalizeName(tt.in); got != tt.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestNameKeysMeet: the spoken forms share a key with the registered name;
// different people do not.
func TestNameKeysMeet(t *testing.T) {
	meet := func(a, b string) bool {
		ka, kb := NameKeys(a), NameKeys(b)
		return slices.ContainsFunc(ka, func(k string) bool { return slices.Contains(kb, k) })
	}
	same := [][2]string{
		{"Nguyen Van An", "win van an"},
		{"Nguyen Van An", "an van nguyen"},
		{"Zoë Müller-Lüdenscheidt", "zoe muller ludenscheidt"},
		{"Zoë Müller-Lüdenscheidt", "zoey mueller luedenscheidt"},
		{"James O'Brien", "james obrien"},
		{"James O'Brien", "james o brian"},
		{"Maria Garcia", "mariah garsia"},
		{"John Smith", "jon smyth"},
		{"Robert Brown", "robert braun"},
	}
	for _, p := range same {
		if !meet(p[0], p[1]) {
			t.Errorf("%q and %q should meet: %v vs %v", p[0], p[1], NameKeys(p[0]), NameKeys(p[1]))
		}
	}
	differ := [][2]string{
		{"Maria Garcia", "Mario Garcia Lopez"},
		{"John Smith", "John Smithers"},
		{"Robert Brown", "Robert Green"},
		{"Nguyen Van An", "van an"},
	}
	for _, p := range differ {
		if meet(p[0], p[1]) {
			t.Errorf("%q and %q should not meet: %v vs %v", p[0], p[1], NameKeys(p[0]), NameKeys(p[1]))
		}
	}
}

func TestGeneratePatients(t *testing.T) {
	a, b := GeneratePatients(10000), GeneratePatients(10000)
	if !slices.Equal(a, b) {
		t.Fatal("generator is not deterministic")
	}
	demo := map[string]bool{}
	for _, d := range DemoPatients() {
		demo[NormalizeName(d.Name)+"|"+d.Birthdate] = true
	}
	ids, phones, full := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, p := range a {
		if want := "pt-g" + strings.Repeat("0", 6-len(itoa(i+1))) + itoa(i+1); p.ID != want {
			t.Fatalf("id %q, want %q", p.ID, want)
		}
		if !strings.HasPrefix(p.Phone, "+1555600") || len(p.Phone) != 12 || phones[p.Phone] || ids[p.ID] {
			t.Fatalf("bad or duplicate %+v", p)
		}
		k := NormalizeName(p.Name) + "|" + p.Birthdate
		if demo[k] || full[k+"|"+p.SSNLast4] {
			t.Fatalf("clash %+v", p)
		}
		ids[p.ID], phones[p.Phone], full[k+"|"+p.SSNLast4] = true, true, true
	}
	if len(DemoPatients()) != 7 || DemoPatients()[6].Birthdate != "1948-02-29" || DemoPatients()[6].LineType != "landline" {
		t.Fatal("demo rows changed")
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"Zoë Müller-Lüdenscheidt", "James O'Brien", "win van an", "", "\x00\xff", strings.Repeat("ab ", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeName(s)
		if NormalizeName(n) != n {
			t.Fatalf("not idempotent: %q → %q → %q", s, n, NormalizeName(n))
		}
		if strings.ToLower(n) != n || strings.Contains(n, "  ") || strings.TrimSpace(n) != n {
			t.Fatalf("not normal: %q", n)
		}
		if utf8.ValidString(s) && !utf8.ValidString(n) {
			t.Fatalf("invalid UTF-8 from valid input: %q", n)
		}
		keys := NameKeys(s)
		if (n == "") != (len(keys) == 0) {
			t.Fatalf("keys %v for %q", keys, n)
		}
		for _, tok := range strings.Fields(n) {
			Phonetic(tok) // must not panic
		}
	})
}

func FuzzParseForm(f *testing.F) {
	for _, s := range []string{"a=1&b=2", "resource=x&resource=y", "a=1&a=2", "%zz", "kba_name=Zo%C3%AB", "a=%00", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := parseForm(body)
		if err != nil {
			return
		}
		for k, vs := range v {
			if len(vs) > 1 && k != "resource" && k != "audience" {
				t.Fatalf("repeated %q accepted", k)
			}
			for _, x := range vs {
				if !validText(x) {
					t.Fatalf("control character accepted in %q", k)
				}
			}
		}
	})
}
