package ivr

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/twiml"

	"github.com/voiceauth/voiceauth/ivr/spoken"
)

// xmlTree is a document as a parser reads it: elements, sorted attributes
// and exact character data (twiml.Voice orders attributes at random).
func xmlTree(doc []byte) (string, error) {
	d := xml.NewDecoder(strings.NewReader(string(doc)))
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			attrs := make([]string, 0, len(t.Attr))
			for _, a := range t.Attr {
				attrs = append(attrs, fmt.Sprintf("%s=%q", a.Name.Local, a.Value))
			}
			sort.Strings(attrs)
			fmt.Fprintf(&b, "<%s %s>", t.Name.Local, strings.Join(attrs, " "))
		case xml.EndElement:
			fmt.Fprintf(&b, "</%s>", t.Name.Local)
		case xml.CharData:
			fmt.Fprintf(&b, "%q", string(t))
		case xml.ProcInst:
			fmt.Fprintf(&b, "<?%s %q?>", t.Target, t.Inst)
		}
	}
}

// sameAsTwilio fails t unless appendTwiML and twiml.Voice render verbs to
// the same document, byte for byte once attributes are put in one order.
func sameAsTwilio(t *testing.T, verbs []twiml.Element) {
	t.Helper()
	want, err := twiml.Voice(verbs)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := appendTwiML(nil, verbs)
	if !ok {
		t.Fatalf("fast TwiML refused %#v", verbs)
	}
	wt, werr := xmlTree([]byte(want))
	gt, gerr := xmlTree(got)
	if (werr == nil) != (gerr == nil) || wt != gt {
		t.Fatalf("fast TwiML differs from twiml.Voice\n got %s (%v)\nwant %s (%v)\n got tree %s\nwant tree %s", got, gerr, want, werr, gt, wt)
	}
	if len(got) != len(want) {
		t.Fatalf("fast TwiML is %d bytes, twiml.Voice %d (different escaping)\n got %s\nwant %s", len(got), len(want), got, want)
	}
}

func fastTwiMLCases(text, url string) [][]twiml.Element {
	gather := &twiml.VoiceGather{Input: "dtmf speech", Action: url, Method: "POST", Timeout: "5", SpeechTimeout: "auto",
		FinishOnKey: "#", BargeIn: "true", Language: "en-US", Hints: text, ActionOnEmptyResult: "true", NumDigits: "4",
		InnerElements: []twiml.Element{sayIn(spoken.English, text), &twiml.VoiceSay{Message: text, Language: "es-US", Voice: "Polly.Lupe", Loop: "2"}}}
	return [][]twiml.Element{
		nil,
		{},
		{gather, &twiml.VoiceRedirect{Url: url, Method: "POST"}},
		{&twiml.VoiceSay{Message: text}, &twiml.VoiceDial{Number: text}},
		{&twiml.VoiceSay{Message: text, Language: "en-US"}, &twiml.VoiceHangup{}},
		{&twiml.VoiceGather{Action: url}, &twiml.VoiceSay{}},
		{&twiml.VoiceDial{Number: text, Action: url, CallerId: text, Timeout: "20"}, &twiml.VoiceHangup{}},
	}
}

// The fast renderer writes what twiml.Voice writes for every verb the
// service renders (and, through GetAttr, any other), escaping included.
func TestFastTwiMLMatchesTwilio(t *testing.T) {
	texts := []string{
		"Please say your first and last name.",
		`Tom & Jerry's "quotes" <tags> >`,
		"tab\there, line\nbreak, cr\r, nul\x00, bell\x07, bad utf8 \xff\xfe, \uFFFD, \U0001F600, é ñ, \uFFFE",
		"", "&amp;", "]]>",
	}
	for _, text := range texts {
		for _, url := range []string{"/twilio/gather?turn=3", "/x?a=1&b='2'", ""} {
			for _, verbs := range fastTwiMLCases(text, url) {
				sameAsTwilio(t, verbs)
			}
		}
	}
	// Every document render produces for the states a call goes through.
	f := newFixture(t, FrontendGather, nil)
	for i := range 5 {
		st := &State{}
		f.srv.eng.start(st, CallInfo{CallSid: "CA1", Lang: spoken.English}, i == 4)
		switch i {
		case 1:
			st.Turn, st.Pending = 2, &Job{}
		case 2:
			st.Out.End = endTransfer
		case 3:
			st.Out.End = endHangup
		}
		sameAsTwilio(t, f.srv.render(st))
	}
	sameAsTwilio(t, f.srv.transferVerbs())
}

// Verbs the fast renderer does not know (the relay's <Connect>, optional
// attributes) are refused, and writeTwiML falls back to twiml.Voice.
func TestFastTwiMLFallsBack(t *testing.T) {
	for _, verbs := range [][]twiml.Element{
		{&twiml.VoiceSay{Message: "hi", OptionalAttributes: map[string]string{"Voice": "x"}}},
		{&twiml.VoiceGather{InnerElements: []twiml.Element{&twiml.VoicePlay{Url: "/a.mp3"}}}},
		{&twiml.VoiceConnect{InnerElements: []twiml.Element{&twiml.VoiceConversationRelay{Url: "wss://x/relay"}}}},
	} {
		if _, ok := appendTwiML(nil, verbs); ok {
			t.Errorf("fast TwiML accepted %#v", verbs)
		}
		rec := httptest.NewRecorder()
		(&Server{}).writeTwiML(rec, verbs)
		want, _ := twiml.Voice(verbs)
		wt, _ := xmlTree([]byte(want))
		if gt, err := xmlTree(rec.Body.Bytes()); err != nil || gt != wt {
			t.Errorf("fallback wrote %s, want %s", rec.Body.Bytes(), want)
		}
	}
}

func FuzzFastTwiML(f *testing.F) {
	f.Add("Please say your name.", "/twilio/gather?turn=1")
	f.Add(`<&>"'`, "\x00\xff")
	f.Add("\r\n\t", "\uFFFD\uFFFE")
	f.Fuzz(func(t *testing.T, text, url string) {
		for _, verbs := range fastTwiMLCases(text, url) {
			sameAsTwilio(t, verbs)
		}
	})
}
