package scenarios

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// TwiML is what the runner needs from a voice webhook reply.
type TwiML struct {
	Verbs    []string // top-level verbs in order, e.g. [Gather Redirect]
	Says     []string // every <Say> text in document order (also inside <Gather>)
	Gather   *Gather
	Redirect string // URL of the first top-level <Redirect>
	Dial     *DialVerb
	Enqueue  string
	Hangup   bool
	Relay    *RelayConnect
	Raw      string // the attribute values and texts of transfer verbs (reason hunting)
}

// Gather is a <Gather> verb.
type Gather struct {
	Action              string
	Method              string
	Input               string
	ActionOnEmptyResult bool
	NumDigits           string
	Language            string
	FinishOnKey         string // Twilio's default "#" when the attribute is absent
	Timeout             string // seconds; "" is Twilio's default (5)
	BargeIn             bool
}

// DialVerb is a <Dial> verb (a transfer to a human).
type DialVerb struct {
	Number string
	Action string
}

// RelayConnect is <Connect action=…><ConversationRelay url=…>.
type RelayConnect struct {
	URL        string
	Action     string
	Language   string
	Parameters map[string]string
}

// Speech is the agent's words: the <Say> texts joined by spaces.
func (t *TwiML) Speech() string { return strings.Join(t.Says, " ") }

// ParseTwiML parses a <Response> document. It rejects documents that are not
// TwiML so a JSON error page or HTML is reported, not silently read as silence.
func ParseTwiML(data []byte) (*TwiML, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	out := &TwiML{}
	var stack []string
	var text strings.Builder
	var raw []string
	sawResponse := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("twiml: %w", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			name := el.Name.Local
			if len(stack) == 0 {
				if name != "Response" {
					return nil, fmt.Errorf("twiml: root element is <%s>, want <Response>", name)
				}
				sawResponse = true
			}
			if len(stack) == 1 {
				out.Verbs = append(out.Verbs, name)
			}
			a := attrs(el.Attr)
			switch name {
			case "Say":
				text.Reset()
			case "Gather":
				if out.Gather == nil {
					out.Gather = &Gather{Action: a["action"], Method: a["method"], Input: a["input"],
						ActionOnEmptyResult: strings.EqualFold(a["actionOnEmptyResult"], "true"),
						NumDigits:           a["numDigits"], Language: a["language"], FinishOnKey: "#", Timeout: a["timeout"],
						BargeIn: strings.EqualFold(a["bargeIn"], "true")}
					if k, ok := a["finishOnKey"]; ok {
						out.Gather.FinishOnKey = k
					}
				}
			case "Redirect", "Number", "Enqueue", "Sip", "Client", "Queue":
				text.Reset()
			case "Dial":
				if out.Dial == nil {
					out.Dial = &DialVerb{Action: a["action"]}
				}
			case "Hangup":
				out.Hangup = true
			case "Connect":
				out.Relay = &RelayConnect{Action: a["action"], Parameters: map[string]string{}}
			case "ConversationRelay":
				if out.Relay == nil {
					out.Relay = &RelayConnect{Parameters: map[string]string{}}
				}
				out.Relay.URL = a["url"]
				out.Relay.Language = a["language"]
			case "Parameter":
				if out.Relay != nil {
					out.Relay.Parameters[a["name"]] = a["value"]
				}
			}
			if inTransfer(stack, name) {
				for _, v := range a {
					raw = append(raw, v)
				}
			}
			stack = append(stack, name)
		case xml.CharData:
			text.Write(el)
		case xml.EndElement:
			name := el.Name.Local
			s := strings.TrimSpace(text.String())
			switch name {
			case "Say":
				if s != "" {
					out.Says = append(out.Says, s)
				}
			case "Redirect":
				if len(stack) == 2 && out.Redirect == "" {
					out.Redirect = s
				}
			case "Number", "Sip", "Client", "Queue":
				if out.Dial != nil && out.Dial.Number == "" {
					out.Dial.Number = s
				}
			case "Enqueue":
				out.Enqueue = s
			}
			if inTransfer(stack[:len(stack)-1], name) && s != "" {
				raw = append(raw, s)
			}
			text.Reset()
			stack = stack[:len(stack)-1]
		}
	}
	if !sawResponse {
		return nil, errors.New("twiml: empty document")
	}
	out.Raw = strings.Join(raw, " ")
	return out, nil
}

func inTransfer(stack []string, name string) bool {
	if name == "Dial" || name == "Enqueue" {
		return true
	}
	for _, s := range stack {
		if s == "Dial" || s == "Enqueue" {
			return true
		}
	}
	return false
}

func attrs(as []xml.Attr) map[string]string {
	m := make(map[string]string, len(as))
	for _, a := range as {
		m[a.Name.Local] = a.Value
	}
	return m
}

// CanonicalTwiML renders a document with attributes sorted and whitespace
// trimmed, so two replies that differ only in attribute order (twilio-go
// renders attributes from a map) compare equal. Unparseable input is
// returned as it is.
func CanonicalTwiML(data []byte) string {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var b strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return b.String()
		}
		if err != nil {
			return string(data)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			as := append([]xml.Attr(nil), el.Attr...)
			sort.Slice(as, func(i, j int) bool { return as[i].Name.Local < as[j].Name.Local })
			b.WriteString("<" + el.Name.Local)
			for _, a := range as {
				fmt.Fprintf(&b, " %s=%q", a.Name.Local, a.Value)
			}
			b.WriteString(">")
		case xml.EndElement:
			b.WriteString("</" + el.Name.Local + ">")
		case xml.CharData:
			b.WriteString(strings.TrimSpace(string(el)))
		}
	}
}
