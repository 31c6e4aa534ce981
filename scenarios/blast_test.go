package scenarios

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/ivr/twiliotest"
)

// The benchmark peer is a real Twilio webhook handler: it refuses a forged
// signature and an unknown call's turn, and answers a signed call with a
// <Gather> whose action continues that call.
func TestBareWebhook(t *testing.T) {
	bare := NewBareWebhook("tok", "https://example.test")
	srv := httptest.NewServer(bare)
	defer srv.Close()
	calls := incomingCalls("tok", "https://example.test", 2)
	post := func(r blastRequest) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+r.path, strings.NewReader(r.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", r.sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	forged := calls[0]
	forged.sig = twiliotest.Sign("other", "https://example.test/twilio/voice", mustQuery(t, forged.body))
	if code, _ := post(forged); code != http.StatusForbidden {
		t.Fatalf("forged signature: HTTP %d", code)
	}
	code, body := post(calls[0])
	if code != http.StatusOK || !strings.Contains(body, `action="/twilio/gather?turn=0"`) {
		t.Fatalf("incoming call: HTTP %d %s", code, body)
	}
	turns, err := firstTurns(context.Background(), srv.URL, "tok", "https://example.test", calls[:1])
	if err != nil {
		t.Fatal(err)
	}
	if code, body := post(turns[0]); code != http.StatusOK || !strings.Contains(body, `action="/twilio/gather?turn=1"`) {
		t.Fatalf("gather: HTTP %d %s", code, body)
	}
	stranger := turns[0]
	f := mustQuery(t, stranger.body)
	f.Set("CallSid", NewCallSid())
	stranger.body, stranger.sig = f.Encode(), twiliotest.Sign("tok", "https://example.test"+stranger.path, f)
	if code, _ := post(stranger); code != http.StatusNotFound {
		t.Fatalf("unknown call's turn: HTTP %d", code)
	}
}

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// `voiceauth bench webhook` at toy size: both servers answer every request,
// the report has a row per endpoint and connection count. (The rates are
// benchmarks, recorded in docs/PERFORMANCE.md, not asserted here.)
func TestBenchWebhookSmall(t *testing.T) {
	var out, errb strings.Builder
	code := BenchMain([]string{"webhook", "--requests", "40", "--conns", "2,4", "--rounds", "1", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep BenchReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 4 {
		t.Fatalf("%d rows, want 2 endpoints × 2 connection counts", len(rep.Rows))
	}
	for _, r := range rep.Rows {
		if r.Errors != 0 || r.VoiceAuth <= 0 || r.Bare <= 0 || len(r.RoundRatios) != 1 {
			t.Errorf("row %+v", r)
		}
	}
}

// The bench starts far more calls than any admission cap allows and none of
// them hangs up: every timed answer must still be a question, not "all
// lines are busy" (a cheaper answer that would inflate the rate).
func TestBenchWebhookIgnoresAdmissionCap(t *testing.T) {
	saved := embeddedMaxCalls
	embeddedMaxCalls = 3
	defer func() { embeddedMaxCalls = saved }()
	var out, errb strings.Builder
	code := BenchMain([]string{"webhook", "--requests", "20", "--conns", "2", "--rounds", "1", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if embeddedMaxCalls != 3 {
		t.Fatalf("the bench left the admission cap at %d", embeddedMaxCalls)
	}
}

// --memprofile writes an allocation profile of the run that names the
// webhook handlers, and leaves the sampling rate as it found it.
func TestBenchWebhookMemProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mem.pprof")
	rate := runtime.MemProfileRate
	var out, errb strings.Builder
	code := BenchMain([]string{"webhook", "--requests", "20", "--conns", "2", "--rounds", "1", "--memprofile", path}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if runtime.MemProfileRate != rate {
		t.Errorf("MemProfileRate left at %d, was %d", runtime.MemProfileRate, rate)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f) // pprof's format: a gzipped protocol buffer
	if err != nil {
		t.Fatal(err)
	}
	prof, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"ivr.(*Server).handleVoice", "ivr.(*Server).handleGather", "(*BareWebhook).ServeHTTP"} {
		if !strings.Contains(string(prof), fn) {
			t.Errorf("the profile names no %s", fn)
		}
	}
}
