package ivr

import (
	"unicode/utf8"

	"github.com/twilio/twilio-go/twiml"
)

// appendTwiML renders verbs as twiml.Voice does — the same elements,
// attributes, text and escaping (beevik/etree's default settings) — without
// building an etree document and a map per element: on the webhook path
// that cost more than the rest of the rendering. Attributes come in a fixed
// order (twiml.Voice's order is random). It knows the verbs the gather front
// end speaks (Say, Gather, Redirect, Dial, Hangup) without
// OptionalAttributes; for anything else ok is false and the caller uses
// twiml.Voice. TestFastTwiMLMatchesTwilio and FuzzFastTwiML hold it to
// twiml.Voice.
func appendTwiML(b []byte, verbs []twiml.Element) (_ []byte, ok bool) {
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`...)
	if len(verbs) == 0 {
		return append(b, "<Response/>"...), true
	}
	b = append(b, "<Response>"...)
	for _, v := range verbs {
		if b, ok = appendElement(b, v); !ok {
			return b, false
		}
	}
	return append(b, "</Response>"...), true
}

func appendElement(b []byte, e twiml.Element) ([]byte, bool) {
	switch v := e.(type) {
	case *twiml.VoiceSay:
		if len(v.OptionalAttributes) == 0 {
			b = appendAttrs(appendOpen(b, "Say"), "voice", v.Voice, "loop", v.Loop, "language", v.Language)
			return appendBody(b, "Say", v.Message, v.InnerElements)
		}
	case *twiml.VoiceRedirect:
		if len(v.OptionalAttributes) == 0 {
			b = appendAttrs(appendOpen(b, "Redirect"), "method", v.Method)
			return appendBody(b, "Redirect", v.Url, v.InnerElements)
		}
	case *twiml.VoiceHangup:
		if len(v.OptionalAttributes) == 0 {
			return appendBody(appendOpen(b, "Hangup"), "Hangup", "", v.InnerElements)
		}
	case *twiml.VoiceGather:
		if len(v.OptionalAttributes) == 0 {
			b = appendAttrs(appendOpen(b, "Gather"),
				"input", v.Input, "action", v.Action, "method", v.Method, "timeout", v.Timeout,
				"speechTimeout", v.SpeechTimeout, "maxSpeechTime", v.MaxSpeechTime, "profanityFilter", v.ProfanityFilter,
				"finishOnKey", v.FinishOnKey, "numDigits", v.NumDigits, "partialResultCallback", v.PartialResultCallback,
				"partialResultCallbackMethod", v.PartialResultCallbackMethod, "language", v.Language, "hints", v.Hints,
				"bargeIn", v.BargeIn, "debug", v.Debug, "actionOnEmptyResult", v.ActionOnEmptyResult,
				"speechModel", v.SpeechModel, "enhanced", v.Enhanced)
			return appendBody(b, "Gather", "", v.InnerElements)
		}
	case *twiml.VoiceDial:
		if len(v.OptionalAttributes) == 0 {
			b = appendAttrs(appendOpen(b, "Dial"),
				"action", v.Action, "method", v.Method, "timeout", v.Timeout, "hangupOnStar", v.HangupOnStar,
				"timeLimit", v.TimeLimit, "callerId", v.CallerId, "record", v.Record, "trim", v.Trim,
				"recordingStatusCallback", v.RecordingStatusCallback, "recordingConfigurationId", v.RecordingConfigurationId,
				"recordingStatusCallbackMethod", v.RecordingStatusCallbackMethod,
				"recordingStatusCallbackEvent", v.RecordingStatusCallbackEvent, "answerOnBridge", v.AnswerOnBridge,
				"ringTone", v.RingTone, "recordingTrack", v.RecordingTrack, "sequential", v.Sequential,
				"referUrl", v.ReferUrl, "referMethod", v.ReferMethod, "events", v.Events, "passports", v.Passports)
			return appendBody(b, "Dial", v.Number, v.InnerElements)
		}
	}
	return b, false
}

func appendOpen(b []byte, name string) []byte {
	return append(append(b, '<'), name...)
}

// appendAttrs writes name/value pairs, leaving out empty values.
func appendAttrs(b []byte, kv ...string) []byte {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		b = append(b, ' ')
		b = append(b, kv[i]...)
		b = append(b, `="`...)
		b = appendEscaped(b, kv[i+1])
		b = append(b, '"')
	}
	return b
}

// appendBody closes the start tag and writes text, children and the end
// tag, or ends an empty element with "/>".
func appendBody(b []byte, name, text string, inner []twiml.Element) ([]byte, bool) {
	if text == "" && len(inner) == 0 {
		return append(b, "/>"...), true
	}
	b = append(b, '>')
	b = appendEscaped(b, text)
	for _, c := range inner {
		var ok bool
		if b, ok = appendElement(b, c); !ok {
			return b, false
		}
	}
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>'), true
}

// appendEscaped escapes s as etree does by default: the five XML specials
// as entities, anything that is not an XML character (and invalid UTF-8)
// as U+FFFD, the rest as is.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		i += width
		var esc string
		switch r {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\'':
			esc = "&apos;"
		case '"':
			esc = "&quot;"
		default:
			if xmlChar(r) && (r != utf8.RuneError || width != 1) {
				continue
			}
			esc = "\uFFFD"
		}
		b = append(b, s[last:i-width]...)
		b = append(b, esc...)
		last = i
	}
	return append(b, s[last:]...)
}

func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
