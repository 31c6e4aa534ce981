package app

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// sniffOnce is what the sniffer must answer: whether the first sniffLimit
// bytes of the whole answer hold an ending verb.
func sniffOnce(doc []byte) bool {
	head := doc[:min(len(doc), sniffLimit)]
	return bytes.Contains(head, []byte("<Dial")) || bytes.Contains(head, []byte("<Hangup"))
}

// sniffSplit writes doc through an endSniffer in the given pieces.
func sniffSplit(t testing.TB, doc []byte, cuts []int) bool {
	rec := httptest.NewRecorder()
	e := &endSniffer{ResponseWriter: rec}
	prev := 0
	for _, c := range append(cuts, len(doc)) {
		c = min(max(c, prev), len(doc))
		if _, err := e.Write(doc[prev:c]); err != nil {
			t.Fatal(err)
		}
		prev = c
	}
	if !bytes.Equal(rec.Body.Bytes(), doc) {
		t.Fatalf("the sniffer changed the answer")
	}
	return e.ended()
}

// The ending verbs are found wherever the writes split them, and only in
// the first sniffLimit bytes, as a search of the whole head would.
func TestEndSnifferSeesSplitWords(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 3))
	docs := []string{
		`<?xml version="1.0" encoding="UTF-8"?><Response><Say>hi</Say><Dial>+15550100</Dial></Response>`,
		`<?xml version="1.0" encoding="UTF-8"?><Response><Say>bye</Say><Hangup/></Response>`,
		`<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/twilio/gather?turn=1"><Say>Dial Hangup</Say></Gather></Response>`,
		`<Dia<Hangu<Dial`,
		`<Hang<Hangup`,
		strings.Repeat("x", sniffLimit-5) + "<Dial>",    // ends inside the limit
		strings.Repeat("x", sniffLimit-4) + "<Dial>",    // crosses the limit: not seen
		strings.Repeat("x", sniffLimit-7) + "<Hangup/>", // exactly at the limit
		strings.Repeat("x", sniffLimit) + "<Hangup/>",
	}
	for _, d := range docs {
		doc := []byte(d)
		want := sniffOnce(doc)
		// Every single cut, then random multi-cuts, including empty writes.
		for c := 0; c <= len(doc) && c < 64; c++ {
			if got := sniffSplit(t, doc, []int{c}); got != want {
				t.Errorf("%.40q cut at %d: ended=%v, want %v", d, c, got, want)
			}
		}
		for i := 0; i < 200; i++ {
			var cuts []int
			for p := 0; p < len(doc); p += r.IntN(9) {
				cuts = append(cuts, p)
			}
			if len(doc) > 100 {
				cuts = append(cuts, len(doc)-r.IntN(20)) // pieces near the end of long docs too
			}
			if got := sniffSplit(t, doc, cuts); got != want {
				t.Errorf("%.40q cuts %v: ended=%v, want %v", d, cuts, got, want)
			}
		}
	}
}

func FuzzEndSniffer(f *testing.F) {
	f.Add([]byte(`<Response><Dial>+1</Dial></Response>`), uint8(3), uint8(7))
	f.Add([]byte(`<Hangup/>`), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, doc []byte, a, b uint8) {
		cuts := []int{int(a) % (len(doc) + 1), int(a)%(len(doc)+1) + int(b)}
		if got, want := sniffSplit(t, doc, cuts), sniffOnce(doc); got != want {
			t.Errorf("%q cuts %v: ended=%v, want %v", doc, cuts, got, want)
		}
	})
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

// Sniffing costs no allocation: it used to copy every answer (up to 8 KiB).
func TestEndSnifferDoesNotCopy(t *testing.T) {
	doc := []byte(`<?xml version="1.0" encoding="UTF-8"?><Response>` + strings.Repeat(`<Say>question</Say>`, 80) + `</Response>`)
	w := discardWriter{h: http.Header{}}
	var e *endSniffer
	allocs := testing.AllocsPerRun(100, func() {
		e = &endSniffer{ResponseWriter: w}
		_, _ = e.Write(doc[:700])
		_, _ = e.Write(doc[700:])
	})
	if allocs > 1 { // the sniffer itself
		t.Errorf("%.1f allocations per answer, want at most 1", allocs)
	}
	if e.ended() {
		t.Errorf("no ending verb, but ended")
	}
}
