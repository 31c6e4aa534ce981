package spoken

import "strings"

// YesNo reads a confirmation: "yes", "yeah", "correct", "that's right", "sí", "claro" are yes; "no", "nope",
// "wrong", "that's not right", "no es correcto" are no; a lone keypad 1 is yes and 2 is no. Anything else,
// including an answer with both ("yes… no"), is ok=false so the IVR asks again instead of guessing.
func YesNo(input string, lang Lang) (yes bool, ok bool) {
	switch strings.TrimRight(strings.TrimSpace(input), "#") {
	case "1":
		return true, true
	case "2":
		return false, true
	}
	ws := words(input)
	if len(ws) == 1 { // "press or say one": ASR may spell the key out
		switch ws[0] {
		case "one", "uno":
			return true, true
		case "two", "dos":
			return false, true
		}
	}
	yesCount, noCount, negate := 0, 0, 0
	for i := 0; i < len(ws); {
		if n, _ := matchPhrase(ws[i:], unsurePhrases); n > 0 {
			return false, false
		}
		n, _ := matchPhrase(ws[i:], yesPhrases)
		if nn, _ := matchPhrase(ws[i:], noPhrases); nn > 0 && nn >= n {
			noCount++
			negate = 3 // a yes word within the next few words is negated
			i += nn
			continue
		}
		if n > 0 {
			if negate > 0 {
				noCount++ // "not right", "no es correcto"
			} else {
				yesCount++
			}
			negate = 0
			i += n
			continue
		}
		if negators[ws[i]] {
			negate = 3
		} else if negate > 0 {
			negate--
		}
		i++
	}
	switch {
	case yesCount > 0 && noCount == 0:
		return true, true
	case noCount > 0 && yesCount == 0:
		return false, true
	}
	return false, false
}

var yesPhrases = phrases(
	"yes", "yeah", "yea", "yep", "yup", "ya", "yah", "yes please", "correct", "right", "that's right",
	"that is right", "all right", "alright", "sure", "of course", "affirmative", "absolutely", "definitely",
	"exactly", "ok", "okay", "uh huh", "mm hmm", "it is", "that's it", "that's me", "true",
	"si", "claro", "correcto", "exacto", "asi es", "vale", "de acuerdo", "esta bien", "eso es", "por supuesto", "cierto",
)

var noPhrases = phrases(
	"no", "nope", "nah", "negative", "incorrect", "wrong", "not correct", "not right", "that's wrong",
	"that's not", "that is not", "it's not", "it is not", "it isn't", "no way", "uh uh", "false",
	"incorrecto", "equivocado", "para nada", "tampoco",
	"absolutely not", "definitely not", "of course not", "certainly not", "claro que no", "por supuesto que no",
)

// unsurePhrases make the whole answer unclear: "not sure" is neither yes nor a negated yes.
var unsurePhrases = phrases("not sure", "i'm not sure", "don't know", "i don't know", "maybe", "no se",
	"no estoy seguro", "no estoy segura", "tal vez", "quizas")

var negators = map[string]bool{"not": true, "isn't": true, "isnt": true, "ain't": true, "nunca": true}

// phraseSet holds folded multi-word phrases indexed by their first word, so matching costs one map
// lookup per input word instead of a scan of the whole table.
type phraseSet map[string][][]string

// phrases builds a phraseSet from phrases written naturally ("that's right", "así es").
func phrases(ps ...string) phraseSet {
	set := phraseSet{}
	for _, p := range ps {
		ws := strings.Fields(fold(p))
		set[ws[0]] = append(set[ws[0]], ws)
	}
	return set
}

// matchPhrase returns the length of the longest phrase of set that starts ws.
func matchPhrase(ws []string, set phraseSet) (int, bool) {
	if len(ws) == 0 {
		return 0, false
	}
	best := 0
	for _, ph := range set[ws[0]] {
		if len(ph) > best && hasPrefixWords(ws, ph) {
			best = len(ph)
		}
	}
	return best, best > 0
}

// intentTable lists intents in priority order: a request for a person wins over anything else said in the
// same breath, "can't receive texts" wins over "didn't get it", and a menu choice wins over a bare "what".
var intentTable = []struct {
	intent  Intent
	phrases phraseSet
}{
	{IntentAgent, phrases(
		"agent", "agents", "representative", "operator", "human", "a person", "real person", "live person",
		"talk to someone", "speak to someone", "talk to somebody", "speak to somebody", "someone",
		"customer service", "front desk", "the nurse", "a nurse",
		"agente", "representante", "operador", "operadora", "una persona", "persona", "alguien", "humano")},
	{IntentCantReceive, phrases(
		"can't get texts", "can't get text", "cannot get texts", "can't receive", "cannot receive", "can't get a text",
		"can't text", "don't get texts", "don't have a cell", "don't have a cell phone", "no cell", "no cell phone",
		"no cellphone", "no mobile", "don't have a mobile", "landline", "land line", "home phone", "no texts",
		"don't text", "can't get messages", "don't get text", "don't get text messages", "no text messages",
		"can't get text messages", "don't receive texts", "don't receive text", "can't do texts",
		"no puedo recibir", "no recibo mensajes", "no tengo celular", "no tengo movil", "telefono fijo", "linea fija",
		"no tengo mensajes de texto")},
	{IntentNoCode, phrases(
		"didn't get it", "didn't get", "did not get", "didn't receive", "did not receive", "haven't received",
		"haven't gotten", "never got", "never came", "no code", "not get the code", "didn't come", "hasn't come",
		"send it again", "send again", "resend", "send another", "new code", "another code", "send the code",
		"send me the code", "text it again", "text me again", "nothing came", "haven't got", "still waiting",
		"no me llego", "no llego", "no recibi", "no lo recibi", "no ha llegado", "reenviar", "enviar otra vez",
		"no me ha llegado", "no me llega", "no llega", "no tengo el codigo", "mandame el codigo", "envieme el codigo",
		"mandalo otra vez", "otro codigo")},
	{IntentSpanish, phrases("espanol", "spanish", "en espanol", "castellano")},
	{IntentRefill, phrases("refill", "refills", "refill my", "renew", "renewal", "reorder", "resurtir", "surtir", "resurtido", "resurtidos", "surtido", "resurta", "reponer",
		"rellenar", "renovar", "reabastecer")},
	{IntentMedications, phrases("medication", "medications", "medicine", "medicines", "meds", "prescription",
		"prescriptions", "pills", "drugs", "medicamento", "medicamentos", "medicina", "medicinas", "receta", "recetas")},
	{IntentAppointments, phrases("appointment", "appointments", "visit", "visits", "schedule", "my next visit",
		"cita", "citas", "consulta", "consultas")},
	{IntentGoodbye, phrases("goodbye", "good bye", "bye", "bye bye", "that's all", "that is all", "that's it",
		"i'm done", "i am done", "hang up", "nothing else", "no thanks", "no thank you",
		"adios", "chao", "eso es todo", "nada mas", "hasta luego")},
	{IntentDetails, phrases("details", "detail", "more details", "tell me more", "the rest", "all of them", "the doses",
		"doses", "dosage", "detalles", "detalle", "mas detalles", "todas", "todos", "las dosis", "dosis")},
	{IntentRepeat, phrases("repeat", "repeat that", "say that again", "say again", "come again", "what was that", "what did you say", "one more time",
		"again", "pardon", "repite", "repita", "repitelo", "otra vez", "de nuevo")},
	{IntentHelp, phrases("help", "options", "menu", "what can i do", "what are my options", "choices",
		"ayuda", "opciones", "menu principal")},
}

// shortRepeat are words that mean "say that again" only when the utterance is nothing else ("what?",
// "sorry, what?", "¿cómo?"); inside a sentence or a name ("Perry Como") they mean nothing.
var shortRepeat = map[string]bool{"what": true, "huh": true, "sorry": true, "que": true, "como": true, "perdon": true, "eh": true,
	"pardon": true, "excuse": true, "me": true}

// DetectIntent recognizes a menu word or a global command in speech (keypad is mapped by the engine).
// Matching is on whole words, accent-insensitive, in both languages; lang only matters for collisions.
func DetectIntent(input string, lang Lang) Intent {
	ws := words(input)
	if len(ws) == 0 {
		return IntentNone
	}
	for _, row := range intentTable {
		for i := range ws {
			if n, _ := matchPhrase(ws[i:], row.phrases); n > 0 {
				return row.intent
			}
		}
	}
	for _, w := range ws {
		if !shortRepeat[w] {
			return IntentNone
		}
	}
	return IntentRepeat
}

// Mentions reports whether input contains one of the phrases as whole words, accent- and case-insensitive
// ("Español, por favor" mentions "espanol").
func Mentions(input string, phrases ...string) bool {
	ws := words(input)
	for _, p := range phrases {
		pw := strings.Fields(fold(p))
		if len(pw) == 0 {
			continue
		}
		for i := range ws {
			if hasPrefixWords(ws[i:], pw) {
				return true
			}
		}
	}
	return false
}
