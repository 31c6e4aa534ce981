package spoken

import (
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	tests := []struct {
		in   string
		lang Lang
		want string
		r    Reason
	}{
		{"Maria Garcia", English, "Maria Garcia", OK},
		{"Maria Garcia.", English, "Maria Garcia", OK},
		{"my name is uh Maria Garcia", English, "Maria Garcia", OK},
		{"My name is Maria Garcia.", English, "Maria Garcia", OK},
		{"my name's maria garcia", English, "Maria Garcia", OK},
		{"this is Robert Brown", English, "Robert Brown", OK},
		{"it's um Robert Brown", English, "Robert Brown", OK},
		{"It’s Robert Brown, thank you", English, "Robert Brown", OK},
		{"uh hi my name is John Smith", English, "John Smith", OK},
		{"yes this is John Smith", English, "John Smith", OK},
		{"I'm John Smith", English, "John Smith", OK},
		{"M A R I A   G A R C I A", English, "Maria Garcia", OK},
		{"M A R I A", English, "Maria", OK},
		{"M-A-R-I-A G-A-R-C-I-A", English, "Maria Garcia", OK},
		{"M. A. R. I. A.", English, "Maria", OK},
		{"m, a, r, i, a", English, "Maria", OK},
		{"Maria G A R C I A", English, "Maria Garcia", OK},
		{"maria garcia-lopez", English, "Maria Garcia-Lopez", OK},
		{"Sean O'Brien", English, "Sean O'Brien", OK},
		{"sean o’brien", English, "Sean O'Brien", OK},
		{"Ronald McDonald", English, "Ronald McDonald", OK},
		{"JOHN SMITH", English, "John Smith", OK},
		{"John J Smith", English, "John J Smith", OK},
		{"José Pérez", Spanish, "José Pérez", OK},
		{"me llamo José Pérez", Spanish, "José Pérez", OK},
		{"soy María Núñez", Spanish, "María Núñez", OK},
		{"mi nombre es eh Ana Martínez", Spanish, "Ana Martínez", OK},
		{"Mi nombre es Ana Martínez, gracias.", Spanish, "Ana Martínez", OK},
		{"Zoë Saldaña", English, "Zoë Saldaña", OK},
		{"Maria Garcia 1980", English, "Maria Garcia", OK},
		{"oh hi yes my name is Maria Garcia", English, "Maria Garcia", OK},
		{"Oh Min-jun", English, "Oh Min-jun", OK},
		{"oh Maria Garcia", English, "Maria Garcia", OK},
		{"hola, soy María Núñez", Spanish, "María Núñez", OK},
		{"sí, habla Ana Martínez", Spanish, "Ana Martínez", OK},
		{"Garcia, Maria", English, "Garcia Maria", OK},
		{"Maria Garcia, M A R I A", English, "Maria Garcia", OK},
		{"This is Robert. Robert Brown.", English, "Robert Brown", OK},
		{"hi this is um Robert Brown calling", English, "Robert Brown", OK},
		{"Maria de la Cruz", English, "Maria De La Cruz", OK},
		{"Владимир Путин", English, "Владимир Путин", OK},
		{"I'm calling about my appointment", English, "", NeedName},
		{"quiero hablar sobre mi cita", Spanish, "", NeedName},
		{"I didn't get it", English, "", NeedName},
		{"March third nineteen eighty", English, "", NeedName},
		{"four five six seven", English, "", NeedName},
		{"tres de marzo de mil novecientos ochenta", Spanish, "", NeedName},
		{"twenty-five", English, "", NeedName},
		{"April May", English, "April May", OK},
		{"Daniel Oh", English, "Daniel Oh", OK},
		{"kim won", English, "Kim Won", OK},
		{"june march", English, "June March", OK},
		{"DIDN'T", English, "", NeedName},
		{"l'oreal d'arcy", English, "L'Oreal D'Arcy", OK},
		{"1234", English, "", NeedName},
		{"4 5 6 7", English, "", NeedName},
		{"", English, "", NoInput},
		{"uh um", English, "", NoInput},
		{"my name is", English, "", NoInput},
		{"...", English, "", NoInput},
		{strings.Repeat("Bartholomew Smith ", 15), English, "", Unclear},
		{strings.Repeat("Bartholomew ", 30), English, "Bartholomew", OK},
	}
	for _, tt := range tests {
		got, r := Name(tt.in, tt.lang)
		if got != tt.want || r != tt.r {
			t.Errorf("Name(%q, %s) = %q, %q; want %q, %q", tt.in, tt.lang, got, r, tt.want, tt.r)
		}
	}
}

func BenchmarkName(b *testing.B) {
	inputs := []string{"my name is uh Maria Garcia", "M A R I A   G A R C I A", "me llamo José Pérez"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, r := Name(inputs[i%len(inputs)], English); r != OK {
			b.Fatal(r)
		}
	}
}
