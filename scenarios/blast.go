package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twilio/twilio-go/client"
	"github.com/twilio/twilio-go/twiml"

	"github.com/voiceauth/voiceauth/internal/cli"
	"github.com/voiceauth/voiceauth/ivr/twiliotest"
)

// BareWebhook is the benchmark peer of `voiceauth bench webhook`: about the
// least a Go service can do for Twilio's voice webhooks. It validates
// X-Twilio-Signature with twilio-go, keeps each call's turn in a map (no
// durability) and renders a <Gather> like voiceauth's with twilio-go's twiml
// package. It is never part of the service.
type BareWebhook struct {
	publicURL string
	validator client.RequestValidator
	mu        sync.Mutex
	calls     map[string]int // CallSid → turn
}

// NewBareWebhook serves Twilio webhooks signed with authToken against publicURL.
func NewBareWebhook(authToken, publicURL string) *BareWebhook {
	return &BareWebhook{publicURL: strings.TrimRight(publicURL, "/"), validator: client.NewRequestValidator(authToken), calls: map[string]int{}}
}

const bareQuestion = "Thanks for calling. Before we look at your records, I need to confirm who you are. Please say your first and last name."

func (b *BareWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || (r.URL.Path != "/twilio/voice" && r.URL.Path != "/twilio/gather") {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	params := make(map[string]string, len(r.PostForm))
	for k, v := range r.PostForm {
		params[k] = v[0]
	}
	if !b.validator.Validate(b.publicURL+r.URL.RequestURI(), params, r.Header.Get("X-Twilio-Signature")) {
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	sid := r.PostForm.Get("CallSid")
	b.mu.Lock()
	turn, known := b.calls[sid]
	if r.URL.Path == "/twilio/gather" {
		if !known {
			b.mu.Unlock()
			http.NotFound(w, r)
			return
		}
		turn++
	}
	b.calls[sid] = turn
	b.mu.Unlock()
	action := "/twilio/gather?turn=" + strconv.Itoa(turn)
	doc, err := twiml.Voice([]twiml.Element{
		&twiml.VoiceGather{Input: "dtmf speech", Action: action, Method: http.MethodPost, Timeout: "5", SpeechTimeout: "auto",
			FinishOnKey: "#", Language: "en-US", ActionOnEmptyResult: "true",
			InnerElements: []twiml.Element{&twiml.VoiceSay{Message: bareQuestion, Language: "en-US"}}},
		&twiml.VoiceRedirect{Url: action, Method: http.MethodPost},
	})
	if err != nil {
		http.Error(w, "twiml", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = io.WriteString(w, doc)
}

// blastRequest is one pre-signed webhook.
type blastRequest struct {
	path, body, sig string
}

// BlastResult is one timed round against one server.
type BlastResult struct {
	Requests int           `json:"requests"`
	Conns    int           `json:"conns"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	PerSec   float64       `json:"per_second"`
	Errors   int           `json:"errors"`
}

// blast sends reqs over conns keep-alive connections as fast as the server
// answers and times the whole batch. Every reply must be 200.
func blast(ctx context.Context, base string, reqs []blastRequest, conns int) BlastResult {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(reqs)) || ctx.Err() != nil {
					return
				}
				if blastOne(ctx, hc, base, reqs[i]) != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	return BlastResult{Requests: len(reqs), Conns: conns, Elapsed: el, PerSec: float64(len(reqs)) / el.Seconds(), Errors: int(errs.Load())}
}

func blastOne(ctx context.Context, hc *http.Client, base string, r blastRequest) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+r.path, strings.NewReader(r.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", r.sig)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	// Both servers answer every timed request with a question; anything
	// else (a busy transfer) is a cheaper answer and must not count.
	if !bytes.Contains(body, []byte("<Gather")) {
		return errors.New("no <Gather> in the answer")
	}
	return nil
}

// incomingCalls signs n distinct incoming-call webhooks for publicURL.
func incomingCalls(token, publicURL string, n int) []blastRequest {
	out := make([]blastRequest, n)
	for i := range out {
		form := url.Values{"CallSid": {NewCallSid()}, "AccountSid": {"AC" + strings.Repeat("0", 32)},
			"From": {"+1555600" + fmt.Sprintf("%04d", i%10000)}, "To": {"+15555550100"}, "CallStatus": {"ringing"},
			"Direction": {"inbound"}, "ApiVersion": {"2010-04-01"}}
		out[i] = blastRequest{path: "/twilio/voice", body: form.Encode(), sig: twiliotest.Sign(token, publicURL+"/twilio/voice", form)}
	}
	return out
}

var gatherAction = regexp.MustCompile(`<Gather[^>]*action="([^"]+)"`)

// firstTurns answers every call (untimed) and signs its first gather turn: the
// caller presses * (repeat the question), a turn with state persisted and no
// backend work.
func firstTurns(ctx context.Context, base, token, publicURL string, calls []blastRequest) ([]blastRequest, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	out := make([]blastRequest, 0, len(calls))
	for _, c := range calls {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", c.sig)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := gatherAction.FindSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			return nil, fmt.Errorf("answering a call: HTTP %d, no <Gather> action", resp.StatusCode)
		}
		action := strings.ReplaceAll(string(m[1]), "&amp;", "&")
		form, _ := url.ParseQuery(c.body)
		form.Set("CallStatus", "in-progress")
		form.Set("Digits", "*")
		out = append(out, blastRequest{path: action, body: form.Encode(), sig: twiliotest.Sign(token, publicURL+action, form)})
	}
	return out, nil
}

// BenchReport is what `voiceauth bench webhook` prints.
type BenchReport struct {
	Rows []BenchRow `json:"rows"`
}

// BenchRow is one endpoint at one connection count: the medians of the rounds
// and the ratio voiceauth/bare of those medians (and of each round).
type BenchRow struct {
	Endpoint    string    `json:"endpoint"`
	Conns       int       `json:"conns"`
	VoiceAuth   float64   `json:"voiceauth_per_second"`
	Bare        float64   `json:"bare_per_second"`
	Ratio       float64   `json:"ratio"`
	RoundRatios []float64 `json:"round_ratios"`
	Errors      int       `json:"errors"`
}

// BenchMain implements `voiceauth bench webhook`.
func BenchMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "webhook" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(stdout, "usage: voiceauth bench webhook [flags]\n\nTime signed Twilio webhooks against voiceauth and a bare twilio-go handler in one run.\n\nRun \"voiceauth bench webhook -h\" for its flags.")
			return 0
		}
		fmt.Fprintln(stderr, "usage: voiceauth bench webhook [flags]")
		return 2
	}
	fs := cli.NewFlagSet("bench webhook [flags]", "Time signed Twilio webhooks (incoming call, then a first <Gather> turn) against a fresh embedded voiceauth and\na bare net/http + twilio-go handler in the same process, A/B in turn, and print both rates and their ratio.")
	n := fs.Int("requests", 8000, "distinct signed requests per round and endpoint")
	connsFlag := fs.String("conns", "32,256", "keep-alive connection counts, comma-separated")
	rounds := fs.Int("rounds", 3, "rounds per server (the medians are compared)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (both servers and the client) to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the whole run (both servers and the client) to this file")
	if code, ok := cli.Parse(fs, args[1:], stdout, stderr); !ok {
		return code
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth bench webhook:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "voiceauth bench webhook:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	var conns []int
	for _, c := range strings.Split(*connsFlag, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || v <= 0 {
			fmt.Fprintf(stderr, "voiceauth bench webhook: --conns %q: want positive integers\n", *connsFlag)
			return 2
		}
		conns = append(conns, v)
	}
	if *n <= 0 || *rounds <= 0 {
		fmt.Fprintln(stderr, "voiceauth bench webhook: --requests and --rounds must be positive")
		return 2
	}
	if *memProfile != "" {
		// Every allocation is sampled so the profile counts what a request allocates, not a 512 KiB sample.
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1
	}
	rep, err := benchWebhook(context.Background(), *n, conns, *rounds)
	if *memProfile != "" {
		if werr := writeHeapProfile(*memProfile); werr != nil {
			fmt.Fprintln(stderr, "voiceauth bench webhook:", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth bench webhook:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Fprintf(stdout, "%-22s %6s %14s %14s %7s  %s\n", "endpoint", "conns", "voiceauth/s", "bare/s", "ratio", "per round")
		for _, r := range rep.Rows {
			fmt.Fprintf(stdout, "%-22s %6d %14.0f %14.0f %7.2f  %v\n", r.Endpoint, r.Conns, r.VoiceAuth, r.Bare, r.Ratio, fmtRatios(r.RoundRatios))
		}
	}
	for _, r := range rep.Rows {
		if r.Errors > 0 {
			fmt.Fprintf(stderr, "voiceauth bench webhook: %d failed requests (%s, %d conns)\n", r.Errors, r.Endpoint, r.Conns)
			return 1
		}
	}
	return 0
}

func fmtRatios(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strings.Join(s, " ")
}

func medianRate(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// startUncappedStack starts an embedded stack without an admission cap, for
// benchmarks: every call they start stays in progress (nothing hangs up),
// far more than any cap, and without lifting it the later requests would
// time "all lines are busy". Admission itself still runs on every request.
func startUncappedStack(ctx context.Context, transport string) (*Target, func(context.Context) error, error) {
	saved := embeddedMaxCalls
	embeddedMaxCalls = -1
	defer func() { embeddedMaxCalls = saved }()
	return startStack(ctx, nil, transport, 0, false)
}

func benchWebhook(ctx context.Context, n int, conns []int, rounds int) (*BenchReport, error) {
	target, stop, err := startUncappedStack(ctx, TransportWebhook)
	if err != nil {
		return nil, err
	}
	defer stopWithin(stop, 10*time.Second)
	bare := NewBareWebhook(target.AuthToken, "http://bare.invalid")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	bsrv := &http.Server{Handler: bare, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = bsrv.Serve(ln) }()
	defer bsrv.Close()
	bareBase := "http://" + ln.Addr().String()

	type server struct {
		base, public string
	}
	servers := []server{{target.VoiceURL, target.publicURL()}, {bareBase, "http://bare.invalid"}}
	rep := &BenchReport{}
	for _, endpoint := range []string{"/twilio/voice", "/twilio/gather"} {
		for _, c := range conns {
			row := BenchRow{Endpoint: endpoint, Conns: c}
			rates := [2][]float64{}
			for range rounds {
				for si, s := range servers { // A B, A B, …: drift hits both
					reqs := incomingCalls(target.AuthToken, s.public, n)
					if endpoint == "/twilio/gather" {
						if reqs, err = firstTurns(ctx, s.base, target.AuthToken, s.public, reqs); err != nil {
							return nil, err
						}
					}
					res := blast(ctx, s.base, reqs, c)
					row.Errors += res.Errors
					rates[si] = append(rates[si], res.PerSec)
				}
				row.RoundRatios = append(row.RoundRatios, rates[0][len(rates[0])-1]/rates[1][len(rates[1])-1])
			}
			row.VoiceAuth, row.Bare = medianRate(rates[0]), medianRate(rates[1])
			if row.Bare == 0 {
				return nil, errors.New("the bare handler answered nothing")
			}
			row.Ratio = row.VoiceAuth / row.Bare
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep, nil
}

// writeHeapProfile writes the allocation profile (alloc_space / alloc_objects cover the whole run).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
