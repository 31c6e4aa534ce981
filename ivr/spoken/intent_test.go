package spoken

import "testing"

func TestYesNo(t *testing.T) {
	tests := []struct {
		in      string
		lang    Lang
		yes, ok bool
	}{
		{"yes", English, true, true},
		{"Yes.", English, true, true},
		{"yeah", English, true, true},
		{"yep that's me", English, true, true},
		{"correct", English, true, true},
		{"that's right", English, true, true},
		{"That’s correct.", English, true, true},
		{"uh huh", English, true, true},
		{"sure", English, true, true},
		{"1", English, true, true},
		{"1#", English, true, true},
		{"one", English, true, true},
		{"sí", Spanish, true, true},
		{"si", Spanish, true, true},
		{"claro que sí", Spanish, true, true},
		{"así es", Spanish, true, true},
		{"correcto", Spanish, true, true},
		{"no", English, false, true},
		{"No.", English, false, true},
		{"nope", English, false, true},
		{"nah", English, false, true},
		{"that's wrong", English, false, true},
		{"that's not right", English, false, true},
		{"it is not", English, false, true},
		{"not correct", English, false, true},
		{"incorrect", English, false, true},
		{"2", English, false, true},
		{"two", English, false, true},
		{"no es correcto", Spanish, false, true},
		{"no, no es", Spanish, false, true},
		{"dos", Spanish, false, true},
		{"", English, false, false},
		{"maybe", English, false, false},
		{"yes no", English, false, false},
		{"3", English, false, false},
		{"absolutely not", English, false, true},
		{"of course not", English, false, true},
		{"not sure", English, false, false},
		{"no sé", Spanish, false, false},
		{"yes I'm sure", English, true, true},
		{"I don't know", English, false, false},
	}
	for _, tt := range tests {
		yes, ok := YesNo(tt.in, tt.lang)
		if yes != tt.yes || ok != tt.ok {
			t.Errorf("YesNo(%q, %s) = %v, %v; want %v, %v", tt.in, tt.lang, yes, ok, tt.yes, tt.ok)
		}
	}
}

func TestDetectIntent(t *testing.T) {
	tests := []struct {
		in   string
		lang Lang
		want Intent
	}{
		{"agent", English, IntentAgent},
		{"Representative!", English, IntentAgent},
		{"operator", English, IntentAgent},
		{"I want to talk to a person", English, IntentAgent},
		{"can I speak to someone about my appointment", English, IntentAgent},
		{"human", English, IntentAgent},
		{"agente", Spanish, IntentAgent},
		{"quiero hablar con un representante", Spanish, IntentAgent},
		{"operadora", Spanish, IntentAgent},
		{"repeat", English, IntentRepeat},
		{"can you say that again", English, IntentRepeat},
		{"what?", English, IntentRepeat},
		{"sorry what", English, IntentRepeat},
		{"sorry, what?", English, IntentRepeat},
		{"excuse me?", English, IntentRepeat},
		{"Perry Como", English, IntentNone},
		{"what about it", English, IntentNone},
		{"repite por favor", Spanish, IntentRepeat},
		{"¿qué?", Spanish, IntentRepeat},
		{"appointments", English, IntentAppointments},
		{"when is my next appointment", English, IntentAppointments},
		{"what are my appointments", English, IntentAppointments},
		{"mis citas", Spanish, IntentAppointments},
		{"medications", English, IntentMedications},
		{"what medicines am I on", English, IntentMedications},
		{"my prescriptions", English, IntentMedications},
		{"medicamentos", Spanish, IntentMedications},
		{"refill", English, IntentRefill},
		{"I need a refill on my medication", English, IntentRefill},
		{"refill my prescription please", English, IntentRefill},
		{"quiero resurtir mi receta", Spanish, IntentRefill},
		{"un resurtido, por favor", Spanish, IntentRefill}, // the word the Spanish menu offers
		{"resurtido", Spanish, IntentRefill},
		{"detalles", Spanish, IntentDetails},
		{"tell me more", English, IntentDetails},
		{"español", English, IntentSpanish},
		{"espanol", English, IntentSpanish},
		{"espan\u0303ol", English, IntentSpanish},
		{"Spanish please", English, IntentSpanish},
		{"en español por favor", Spanish, IntentSpanish},
		{"I didn't get it", English, IntentNoCode},
		{"I didn’t receive a code", English, IntentNoCode},
		{"no code", English, IntentNoCode},
		{"can you send it again", English, IntentNoCode},
		{"no me llegó", Spanish, IntentNoCode},
		{"can you send the code again", English, IntentNoCode},
		{"nothing came through", English, IntentNoCode},
		{"todavía no me ha llegado", Spanish, IntentNoCode},
		{"no me llego el código", Spanish, IntentNoCode},
		{"I can't get texts", English, IntentCantReceive},
		{"I don't have a cell phone", English, IntentCantReceive},
		{"this is a landline", English, IntentCantReceive},
		{"no puedo recibir mensajes", Spanish, IntentCantReceive},
		{"no tengo celular", Spanish, IntentCantReceive},
		{"goodbye", English, IntentGoodbye},
		{"that's all thanks bye", English, IntentGoodbye},
		{"adiós", Spanish, IntentGoodbye},
		{"eso es todo", Spanish, IntentGoodbye},
		{"I don't get text messages", English, IntentCantReceive},
		{"I didn't get a text", English, IntentNoCode},
		{"what was that", English, IntentRepeat},
		{"help", English, IntentHelp},
		{"what are my options", English, IntentHelp},
		{"ayuda", Spanish, IntentHelp},
		{"", English, IntentNone},
		{"four five six seven", English, IntentNone},
		{"Maria Garcia", English, IntentNone},
		{"what is the weather like today", English, IntentNone},
		{"yes", English, IntentNone},
	}
	for _, tt := range tests {
		if got := DetectIntent(tt.in, tt.lang); got != tt.want {
			t.Errorf("DetectIntent(%q, %s) = %q; want %q", tt.in, tt.lang, got, tt.want)
		}
	}
}

func BenchmarkDetectIntent(b *testing.B) {
	inputs := []string{"I need a refill on my medication", "what?", "Maria Garcia", "no me llegó el código"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		DetectIntent(inputs[i%len(inputs)], English)
	}
}

func BenchmarkYesNo(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if yes, ok := YesNo("no, that's not right", English); yes || !ok {
			b.Fatal("misread")
		}
	}
}
