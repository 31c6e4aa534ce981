package spoken

import (
	"strings"
	"testing"
)

func TestDigits(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		lang Lang
		want string
		r    Reason
	}{
		{"four five six seven", 4, English, "4567", OK},
		{"forty five sixty seven", 4, English, "4567", OK},
		{"forty-five sixty-seven", 4, English, "4567", OK},
		{"for five six seven", 4, English, "4567", OK},
		{"fore five six seven", 4, English, "4567", OK},
		{"won to three for", 4, English, "1234", OK},
		{"one too three ate", 4, English, "1238", OK},
		{"oh four five six", 4, English, "0456", OK},
		{"o four five six", 4, English, "0456", OK},
		{"zero zero zero one", 4, English, "0001", OK},
		{"nine niner eight seven", 4, English, "9987", OK},
		{"double five six seven", 4, English, "5567", OK},
		{"double 5 6 7", 4, English, "5567", OK},
		{"triple two four", 4, English, "2224", OK},
		{"four double oh seven", 4, English, "4007", OK},
		{"4567", 4, English, "4567", OK},
		{"4567#", 4, English, "4567", OK},
		{"45 67", 4, English, "4567", OK},
		{"4 5 6 7", 4, English, "4567", OK},
		{"4,567", 4, English, "4567", OK},
		{"4567.", 4, English, "4567", OK},
		{"four thousand five hundred sixty seven", 4, English, "4567", OK},
		{"forty five hundred sixty seven", 4, English, "4567", OK},
		{"twelve thirty four", 4, English, "1234", OK},
		{"it's four five six seven", 4, English, "4567", OK},
		{"the last four are 4567", 4, English, "4567", OK},
		{"my last four digits are four five six seven", 4, English, "4567", OK},
		{"um four five uh six seven", 4, English, "4567", OK},
		{"4 5 6", 4, English, "", NeedDigits},
		{"4 5 6 7 8", 4, English, "", NeedDigits},
		{"forty five", 4, English, "", NeedDigits},
		{"four thousand", 4, English, "4000", OK},
		{"hello there", 4, English, "", NeedDigits},
		{"March third", 4, English, "", NeedDigits},
		{"", 4, English, "", NoInput},
		{"uh", 4, English, "", NoInput},
		{"#", 4, English, "", NoInput},
		{"four five six seven", 0, English, "", Unclear},
		{"double", 4, English, "", NeedDigits},
		{"double trouble four five six seven", 4, English, "4567", OK},
		{"the first one", 4, English, "", NeedDigits},
		{strings.Repeat("four ", 500), 4, English, "", NeedDigits},
		{"\xff4567", 4, English, "4567", OK},
		// OTP, six digits.
		{"one two three four five six", 6, English, "123456", OK},
		{"12 34 56", 6, English, "123456", OK},
		{"123456", 6, English, "123456", OK},
		{"twelve thirty four fifty six", 6, English, "123456", OK},
		{"my code is 123456", 6, English, "123456", OK},
		{"one two three four five", 6, English, "", NeedDigits},
		// Spanish.
		{"cuatro cinco seis siete", 4, Spanish, "4567", OK},
		{"cuarenta y cinco sesenta y siete", 4, Spanish, "4567", OK},
		{"cero cuatro cinco seis", 4, Spanish, "0456", OK},
		{"doble cinco seis siete", 4, Spanish, "5567", OK},
		{"los últimos cuatro son cuatro cinco seis siete", 4, Spanish, "4567", OK},
		{"veinticinco treinta y uno", 4, Spanish, "2531", OK},
		{"once doce", 4, Spanish, "1112", OK},
		{"once doce", 4, English, "", NeedDigits},
		{"uno dos tres cuatro cinco seis", 6, Spanish, "123456", OK},
		{"cuatro mil quinientos sesenta y siete", 4, Spanish, "4567", OK},
		{"o cuatro cinco seis", 4, Spanish, "", NeedDigits}, // Spanish "o" is "or", not zero
		{"four five six seven", 4, Spanish, "4567", OK},     // bilingual caller
	}
	for _, tt := range tests {
		got, r := Digits(tt.in, tt.n, tt.lang)
		if got != tt.want || r != tt.r {
			t.Errorf("Digits(%q, %d, %s) = %q, %q; want %q, %q", tt.in, tt.n, tt.lang, got, r, tt.want, tt.r)
		}
	}
}

func BenchmarkDigits(b *testing.B) {
	inputs := []string{"forty five sixty seven", "4567", "for five six seven", "cuarenta y cinco sesenta y siete"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, r := Digits(inputs[i%len(inputs)], 4, English); r != OK {
			b.Fatal(r)
		}
	}
}
