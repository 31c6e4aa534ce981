package scenarios

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseTwiML(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		speech   string
		verbs    []string
		gather   *Gather
		redirect string
		dial     bool
		hangup   bool
		relay    string
	}{
		{
			name:     "gather with say and redirect",
			doc:      `<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/twilio/gather?s=1" input="dtmf speech" actionOnEmptyResult="true" hints="a,b"><Say language="en-US">Please say  your name.</Say></Gather><Redirect method="POST">/twilio/gather?s=1&amp;empty=1</Redirect></Response>`,
			speech:   "Please say your name.",
			verbs:    []string{"Gather", "Redirect"},
			gather:   &Gather{Action: "/twilio/gather?s=1", Input: "dtmf speech", ActionOnEmptyResult: true},
			redirect: "/twilio/gather?s=1&empty=1",
		},
		{
			name:     "hold phrase",
			doc:      `<Response><Say>One moment while I check that.</Say><Redirect>/twilio/continue?op=7</Redirect></Response>`,
			speech:   "One moment while I check that.",
			verbs:    []string{"Say", "Redirect"},
			redirect: "/twilio/continue?op=7",
		},
		{
			name:   "transfer",
			doc:    `<Response><Say>Connecting you.</Say><Dial action="/twilio/dial?reason=kba_failed"><Number>+15555550100</Number></Dial></Response>`,
			speech: "Connecting you.",
			verbs:  []string{"Say", "Dial"},
			dial:   true,
		},
		{
			name:   "hangup",
			doc:    `<Response><Say>Goodbye.</Say><Hangup/></Response>`,
			speech: "Goodbye.",
			verbs:  []string{"Say", "Hangup"},
			hangup: true,
		},
		{
			name:  "relay",
			doc:   `<Response><Connect action="/twilio/relay/done"><ConversationRelay url="wss://x.example/twilio/relay" dtmfDetection="true"><Parameter name="k" value="v"/></ConversationRelay></Connect></Response>`,
			verbs: []string{"Connect"},
			relay: "wss://x.example/twilio/relay",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tw, err := ParseTwiML([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got := foldText(tw.Speech()); got != foldText(tt.speech) {
				t.Errorf("speech %q, want %q", got, tt.speech)
			}
			if !reflect.DeepEqual(tw.Verbs, tt.verbs) {
				t.Errorf("verbs %v, want %v", tw.Verbs, tt.verbs)
			}
			if tt.gather != nil {
				if tw.Gather == nil || tw.Gather.Action != tt.gather.Action || tw.Gather.Input != tt.gather.Input || tw.Gather.ActionOnEmptyResult != tt.gather.ActionOnEmptyResult {
					t.Errorf("gather %+v, want %+v", tw.Gather, tt.gather)
				}
			} else if tw.Gather != nil {
				t.Errorf("unexpected gather %+v", tw.Gather)
			}
			if tw.Redirect != tt.redirect {
				t.Errorf("redirect %q, want %q", tw.Redirect, tt.redirect)
			}
			if (tw.Dial != nil) != tt.dial || tw.Hangup != tt.hangup {
				t.Errorf("dial %v hangup %v", tw.Dial, tw.Hangup)
			}
			if tt.dial && (tw.Dial.Number != "+15555550100" || !strings.Contains(tw.Raw, "kba_failed")) {
				t.Errorf("dial %+v raw %q", tw.Dial, tw.Raw)
			}
			if tt.relay != "" && (tw.Relay == nil || tw.Relay.URL != tt.relay || tw.Relay.Parameters["k"] != "v" || tw.Relay.Action != "/twilio/relay/done") {
				t.Errorf("relay %+v", tw.Relay)
			}
		})
	}
}

func TestParseTwiMLRejects(t *testing.T) {
	for _, doc := range []string{``, `{"error":"x"}`, `<html><body>502</body></html>`, `<Response><Say>unclosed</Response>`} {
		if _, err := ParseTwiML([]byte(doc)); err == nil {
			t.Errorf("ParseTwiML(%q) succeeded", doc)
		}
	}
}

func FuzzParseTwiML(f *testing.F) {
	f.Add([]byte(`<Response><Gather action="/a"><Say>x</Say></Gather><Redirect>/b</Redirect></Response>`))
	f.Add([]byte(`<Response><Dial><Number>+1</Number></Dial></Response>`))
	f.Add([]byte(`<Response><Connect><ConversationRelay url="wss://a"/></Connect></Response>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tw, err := ParseTwiML(data)
		if err == nil && tw == nil {
			t.Fatal("nil TwiML without error")
		}
	})
}

func TestCanonicalTwiML(t *testing.T) {
	a := `<?xml version="1.0"?><Response><Gather input="dtmf speech" action="/g"><Say>Hi</Say></Gather></Response>`
	b := `<Response><Gather action="/g" input="dtmf speech"><Say> Hi </Say></Gather></Response>`
	c := `<Response><Gather action="/h" input="dtmf speech"><Say>Hi</Say></Gather></Response>`
	if CanonicalTwiML([]byte(a)) != CanonicalTwiML([]byte(b)) {
		t.Error("attribute order or whitespace changed the canonical form")
	}
	if CanonicalTwiML([]byte(a)) == CanonicalTwiML([]byte(c)) {
		t.Error("different actions compare equal")
	}
}
