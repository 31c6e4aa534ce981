package twiliotest

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// TwiML is a <Response> document as a phone acts on it. It is parsed as
// XML, never compared as a string (twilio-go writes attributes in random
// order).
type TwiML struct {
	XMLName xml.Name `xml:"Response"`
	Verbs   []Verb   `xml:",any"`
}

// Verb is one TwiML element: a verb (<Say>, <Gather>, <Connect>, …) or a
// noun inside one.
type Verb struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Inner   []Verb     `xml:",any"`
}

// Attr is the value of the attribute name, or "".
func (v Verb) Attr(name string) string {
	for _, a := range v.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// Find is the first element named name, depth first, and whether there is one.
func (d TwiML) Find(name string) (Verb, bool) { return find(d.Verbs, name) }

func find(vs []Verb, name string) (Verb, bool) {
	for _, v := range vs {
		if v.XMLName.Local == name {
			return v, true
		}
		if w, ok := find(v.Inner, name); ok {
			return w, true
		}
	}
	return Verb{}, false
}

// maxTwiML bounds the document read: a voice service's answer is small.
const maxTwiML = 1 << 20

// ReadTwiML reads and closes resp's body and parses it as TwiML; a status
// other than 200, a content type other than text/xml or a document that is
// not a <Response> is an error carrying the body.
func ReadTwiML(resp *http.Response) (TwiML, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTwiML))
	if err != nil {
		return TwiML{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return TwiML{}, fmt.Errorf("twiliotest: status %d: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		return TwiML{}, fmt.Errorf("twiliotest: content type %q: %s", ct, b)
	}
	var d TwiML
	if err := xml.Unmarshal(b, &d); err != nil {
		return TwiML{}, fmt.Errorf("twiliotest: bad TwiML %s: %w", b, err)
	}
	return d, nil
}
