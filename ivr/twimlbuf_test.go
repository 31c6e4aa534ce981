package ivr

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/twiml"
)

// Documents rendered one after another into reused buffers are each
// exactly what a fresh render gives: a long one, then a short one (a
// buffer that is reused must not carry the long one's tail), then a
// fallback through twiml.Voice.
func TestWriteTwiMLReusedBuffers(t *testing.T) {
	long := fastTwiMLCases(strings.Repeat("a long question ", 300), "/twilio/gather?turn=7")[2]
	short := []twiml.Element{&twiml.VoiceHangup{}}
	fallback := []twiml.Element{&twiml.VoiceSay{Message: "hi", OptionalAttributes: map[string]string{"Voice": "x"}}}
	for i := 0; i < 50; i++ {
		for _, verbs := range [][]twiml.Element{long, short, fallback, short} {
			rec := httptest.NewRecorder()
			(&Server{}).writeTwiML(rec, verbs)
			want, ok := appendTwiML(nil, verbs)
			if !ok {
				d, _ := twiml.Voice(verbs)
				want = []byte(d)
			}
			if !bytes.Equal(rec.Body.Bytes(), want) {
				t.Fatalf("round %d wrote\n%s\nwant\n%s", i, rec.Body.Bytes(), want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/xml; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
		}
	}
}

type nullWriter struct{ h http.Header }

func (n nullWriter) Header() http.Header         { return n.h }
func (n nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (n nullWriter) WriteHeader(int)             {}

// A turn's answer is rendered into a pooled buffer: the only allocation
// left is the Content-Type header's value. (It was a fresh 1 KiB buffer
// per answer, grown for longer answers.)
func TestWriteTwiMLPooledBuffer(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	st := &State{}
	f.srv.eng.start(st, CallInfo{CallSid: "CA1"}, false)
	verbs := f.srv.render(st)
	if _, ok := appendTwiML(nil, verbs); !ok {
		t.Fatal("the first question is not a fast-rendered document")
	}
	w := nullWriter{h: http.Header{}}
	// Under -race sync.Pool drops a quarter of what is put back, so the
	// average allows for that; without the pool it is 2 or more.
	if allocs := testing.AllocsPerRun(200, func() { f.srv.writeTwiML(w, verbs) }); allocs >= 2 {
		t.Errorf("%.2f allocations per answer, want fewer than 2", allocs)
	}
}
