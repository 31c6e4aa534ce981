package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voiceauth/voiceauth/internal/cli"
)

// LoadReport is what `voiceauth load` measures.
type LoadReport struct {
	Calls           int           `json:"calls"`
	Concurrency     int           `json:"concurrency"`
	Transport       string        `json:"transport"`
	Target          string        `json:"target"`
	Elapsed         time.Duration `json:"elapsed_ns"`
	CallsPerSecond  float64       `json:"calls_per_second"`
	TurnsPerSecond  float64       `json:"turns_per_second"`
	Turns           int           `json:"turns"`
	TurnLatency     Percentiles   `json:"turn_latency"`      // action → first words
	AuthLatency     Percentiles   `json:"auth_latency"`      // last KBA answer → authenticated menu
	FirstToolResult Percentiles   `json:"first_tool_result"` // "appointments" → the agent reads them
	// AuthToFirstTool is issue 8's "full authentication" per call: the two
	// segments above added up (last answer → code → token, then MCP tools
	// listed and the first tool result), the caller's think time between
	// them left out.
	AuthToFirstTool Percentiles    `json:"auth_to_first_tool"`
	Outcomes        map[string]int `json:"outcomes"`
	WrongOnPurpose  int            `json:"wrong_on_purpose"`
	Errors          int            `json:"errors"`
	ErrorSamples    []string       `json:"error_samples,omitempty"`
	TokensIssued    int            `json:"tokens_issued,omitempty"` // embedded only (observed at the AS)
	ToolCalls       int            `json:"tool_calls,omitempty"`    // embedded only (observed at the MCP server)
	RSS             string         `json:"rss"`
	Repeat          int            `json:"repeat,omitempty"` // "*" turns per call (turn-capacity mode)
	// Count is the nothing-lost check (embedded stack only).
	Count LoadCount `json:"count"`
}

// Percentiles of a latency sample.
type Percentiles struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func percentiles(ds []time.Duration) Percentiles {
	return Percentiles{N: len(ds), P50: percentile(ds, 50), P90: percentile(ds, 90), P99: percentile(ds, 99), Max: percentile(ds, 100)}
}

func (p Percentiles) String() string {
	if p.N == 0 {
		return "n=0"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (n=%d)", fmtDur(p.P50), fmtDur(p.P90), fmtDur(p.P99), fmtDur(p.Max), p.N)
}

// LoadConfig drives a load run.
type LoadConfig struct {
	Calls, Concurrency int
	WrongEvery         int           // every Nth caller gives a wrong SSN-4 (0 = none)
	Pace               time.Duration // think time between a caller's turns
	AuthMarker         *regexp.Regexp
	// Hold matches the agent's hold phrases: on the relay a turn is over at
	// the first last=true utterance that is not one.
	Hold        *regexp.Regexp
	TurnTimeout time.Duration
	Patients    []SyntheticPatient
	Progress    func(done, errors int)
	// Repeat > 0 replaces the KBA script: after answering, each caller
	// presses "*" (repeat the question) Repeat times and hangs up. Every such
	// turn is signed and persists the call state, but reaches neither the AS
	// nor the MCP server: it measures the voice front end's turn capacity.
	Repeat int
}

// RunLoad places cfg.Calls synthetic calls on target.
func RunLoad(ctx context.Context, target *Target, cfg LoadConfig) LoadReport {
	rep := LoadReport{Calls: cfg.Calls, Concurrency: cfg.Concurrency, Transport: target.Transport, Target: target.VoiceURL, Outcomes: map[string]int{}, Repeat: cfg.Repeat}
	var mu sync.Mutex
	var turnLat, authLat, toolLat, bothLat []time.Duration
	var done, errs atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// With a pace, callers start staggered over one pace interval
			// (like real calls), not as one burst every interval.
			if cfg.Pace > 0 {
				select {
				case <-time.After(time.Duration(w) * cfg.Pace / time.Duration(cfg.Concurrency)):
				case <-ctx.Done():
				}
			}
			for i := range jobs {
				p := cfg.Patients[i%len(cfg.Patients)]
				wrong := cfg.Repeat == 0 && cfg.WrongEvery > 0 && i%cfg.WrongEvery == cfg.WrongEvery-1
				res := syntheticCall(ctx, target, p, wrong, cfg)
				mu.Lock()
				turnLat = append(turnLat, res.turns...)
				if res.auth > 0 {
					authLat = append(authLat, res.auth)
				}
				if res.tool > 0 {
					toolLat = append(toolLat, res.tool)
				}
				if res.auth > 0 && res.tool > 0 {
					bothLat = append(bothLat, res.auth+res.tool)
				}
				rep.Turns += len(res.turns)
				rep.Outcomes[res.outcome]++
				if wrong {
					rep.WrongOnPurpose++
				}
				if res.err != nil {
					errs.Add(1)
					if len(rep.ErrorSamples) < 5 {
						rep.ErrorSamples = append(rep.ErrorSamples, res.err.Error())
					}
				}
				mu.Unlock()
				n := done.Add(1)
				if cfg.Progress != nil {
					cfg.Progress(int(n), int(errs.Load()))
				}
			}
		}()
	}
	feed(ctx, jobs, cfg.Calls)
	wg.Wait()
	rep.Elapsed = time.Since(start)
	rep.Errors = int(errs.Load())
	if s := rep.Elapsed.Seconds(); s > 0 {
		rep.CallsPerSecond = float64(done.Load()) / s
		rep.TurnsPerSecond = float64(rep.Turns) / s
	}
	rep.TurnLatency, rep.AuthLatency, rep.FirstToolResult = percentiles(turnLat), percentiles(authLat), percentiles(toolLat)
	rep.AuthToFirstTool = percentiles(bothLat)
	if target.Observer != nil {
		for _, e := range target.Observer.ASEvents(start, time.Time{}) {
			if e.TokenIssued {
				rep.TokensIssued++
			}
		}
		rep.ToolCalls = len(target.Observer.Tools(start, time.Time{}))
	}
	if cfg.Repeat == 0 {
		rep.Count = countLoad(ctx, target, rep, start, 45*time.Second)
	}
	return rep
}

type callStats struct {
	turns   []time.Duration
	auth    time.Duration
	tool    time.Duration
	outcome string
	err     error
}

// syntheticCall: answer, name (speech), DOB and SSN-4 (keypad), then
// "appointments", then hang up.
func syntheticCall(ctx context.Context, target *Target, p SyntheticPatient, wrong bool, cfg LoadConfig) (st callStats) {
	phone := Dial(target, PhoneConfig{Caller: Caller{From: p.Phone, StirVerstat: "TN-Validation-Passed-A"}, Timeout: cfg.TurnTimeout})
	defer phone.Close()
	ssn := p.SSNLast4
	if wrong {
		ssn = fmt.Sprintf("%04d", (atoiOr(ssn, 0)+5000)%10000)
	}
	dob := strings.ReplaceAll(p.Birthdate, "-", "")
	if len(dob) == 8 {
		dob = dob[4:6] + dob[6:8] + dob[0:4] // MMDDYYYY
	}
	turns := []Turn{{Answer: true}, {Say: p.Name}, {Press: dob}, {Press: ssn}, {Say: "appointments"}}
	if cfg.Repeat > 0 {
		turns = []Turn{{Answer: true}}
		for range cfg.Repeat {
			turns = append(turns, Turn{Press: "*"})
		}
		st.outcome = OutcomeHungUp
	}
	for i := range turns {
		turns[i].hold = cfg.Hold
	}
	if cfg.Repeat == 0 {
		st.outcome = "failed"
	}
	for i := range turns {
		if i > 0 && cfg.Pace > 0 {
			select {
			case <-time.After(cfg.Pace):
			case <-ctx.Done():
				st.err = ctx.Err()
				return st
			}
		}
		rep, err := phone.Do(ctx, &turns[i])
		if err != nil {
			st.err = fmt.Errorf("turn %d (%s): %w", i, turns[i].Action(), err)
			return st
		}
		if rep.Status >= 300 {
			st.err = fmt.Errorf("turn %d (%s): HTTP %d", i, turns[i].Action(), rep.Status)
			return st
		}
		if rep.FirstWords > 0 {
			st.turns = append(st.turns, rep.FirstWords)
		}
		if rep.Transfer {
			st.outcome = OutcomeTransferred
			return st
		}
		if rep.Ended {
			return st
		}
		switch {
		case cfg.Repeat > 0:
		case i == 3:
			if cfg.AuthMarker != nil && cfg.AuthMarker.MatchString(rep.Text) {
				st.outcome, st.auth = OutcomeAuthenticated, rep.Complete
				break
			}
			// Not authenticated: a relay transfer (end) may follow the words.
			if rp, ok := phone.(*relayPhone); ok {
				if s := rp.settle(ctx, 300*time.Millisecond); s.Transfer {
					st.outcome = OutcomeTransferred
					return st
				}
			}
			hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			phone.Do(hctx, &Turn{Hangup: true})
			st.outcome = OutcomeHungUp
			return st
		case i == 4:
			if st.outcome == OutcomeAuthenticated {
				st.tool = rep.Complete
			}
		}
	}
	hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	phone.Do(hctx, &Turn{Hangup: true})
	if st.outcome != OutcomeAuthenticated {
		st.outcome = OutcomeHungUp
	}
	return st
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// processRSS reads VmRSS and VmHWM of pid from /proc.
func processRSS(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	var parts []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
			parts = append(parts, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(parts, ", "), nil
}

// embeddedMaxCalls is the admission cap of the stack `voiceauth load` starts.
var embeddedMaxCalls int

// LoadMain implements `voiceauth load --calls N --concurrency C --transport relay|webhook`.
func LoadMain(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("load [flags]", "Drive synthetic callers through a fresh embedded stack (or --target) and report latency, outcomes and memory.")
	var tf targetFlags
	tf.register(fs)
	calls := fs.Int("calls", 100, "calls to place")
	conc := fs.Int("concurrency", 10, "calls in flight at once")
	wrongEvery := fs.Int("wrong-every", 20, "every Nth caller gives a wrong SSN-4 on purpose (0 = none)")
	pace := fs.Duration("pace", 0, "think time between a caller's turns (e.g. 1s); the callers' starts are then staggered over one pace")
	pid := fs.Int("pid", 0, "pid of the target process, for its RSS (with --target)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	marker := fs.String("auth-marker", `verified`, "regexp: agent words after the last answer that mean the caller is authenticated")
	hold := fs.String("hold", `one moment|still checking|almost there|thanks for waiting|un momento|sigo verificando|ya casi`, "regexp: the agent's hold phrases (relay: a turn is over at the first utterance that is not one)")
	timeout := fs.Duration("turn-timeout", 10*time.Second, "longest wait for the agent in one turn")
	idle := fs.Int("idle", 0, "idle mode: open N relay calls (greeting only), hold them, report the server's RSS per call (with --pid); --concurrency calls are opened at once, held for --idle-hold")
	repeat := fs.Int("repeat", 0, "turn-capacity mode: each call answers, presses \"*\" (repeat the question) N times and hangs up — signed turns with state persisted, no AS/MCP")
	holdFor := fs.Duration("idle-hold", 5*time.Second, "idle mode: how long to hold the calls once all are open")
	fs.IntVar(&embeddedMaxCalls, "max-calls", 0, "embedded stack: admission cap, calls in progress above which new calls hear \"all lines are busy\" (0: the service default, -1: none)")
	if _, code, ok := parseInterleaved(fs, args, stdout, stderr); !ok {
		return code
	}
	if *idle > 0 {
		return idleMain(tf, *idle, *conc, *holdFor, *timeout, *pid, *asJSON, stdout, stderr)
	}
	if *calls <= 0 || *conc <= 0 {
		fmt.Fprintln(stderr, "--calls and --concurrency must be > 0")
		return 2
	}
	re, err := regexp.Compile("(?i)" + *marker)
	if err != nil {
		fmt.Fprintf(stderr, "--auth-marker: %v\n", err)
		return 2
	}
	if generatePatients == nil {
		fmt.Fprintln(stderr, "load: the synthetic patient generator (authserver) is not compiled in")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var target *Target
	if tf.target != "" {
		if target, err = tf.remote(); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	} else {
		tr := tf.transport
		if tr == "" {
			tr = TransportWebhook
		}
		t, stopStack, err := startStack(ctx, nil, tr, min(*calls, 10000), false)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer stopWithin(stopStack, 10*time.Second)
		target = t
	}
	n := *calls
	if n > 10000 {
		n = 10000
	}
	holdRE, err := regexp.Compile("(?i)" + *hold)
	if err != nil {
		fmt.Fprintf(stderr, "--hold: %v\n", err)
		return 2
	}
	cfg := LoadConfig{Calls: *calls, Concurrency: *conc, WrongEvery: *wrongEvery, Pace: *pace, AuthMarker: re, Hold: holdRE,
		TurnTimeout: *timeout, Patients: generatePatients(n), Repeat: *repeat}
	tty := isTerminal(stderr)
	var pmu sync.Mutex
	var lastPrint time.Time
	cfg.Progress = func(done, errs int) {
		pmu.Lock()
		defer pmu.Unlock()
		every := 500 * time.Millisecond
		if !tty {
			every = 2 * time.Second
		}
		if done != cfg.Calls && time.Since(lastPrint) < every {
			return
		}
		lastPrint = time.Now()
		if tty {
			fmt.Fprintf(stderr, "\r%d/%d calls, %d errors\033[K", done, cfg.Calls, errs)
		} else {
			fmt.Fprintf(stderr, "%d/%d calls, %d errors\n", done, cfg.Calls, errs)
		}
	}
	rep := RunLoad(ctx, target, cfg)
	if tty {
		fmt.Fprint(stderr, "\r\033[K")
	}
	switch {
	case *pid > 0:
		if rss, err := processRSS(*pid); err == nil {
			rep.RSS = fmt.Sprintf("target process %d: %s", *pid, rss)
		} else {
			rep.RSS = fmt.Sprintf("target process %d: %v", *pid, err)
		}
	case tf.target == "":
		rss, _ := processRSS(os.Getpid())
		rep.RSS = "in-process (stack + load generator together, not the server alone): " + rss
	default:
		rep.RSS = "unknown (pass --pid of the target process)"
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		writeLoad(stdout, rep)
	}
	if rep.Errors > 0 || rep.Count.Lost() || ctx.Err() != nil {
		return 1
	}
	return 0
}

func writeLoad(w io.Writer, r LoadReport) {
	fmt.Fprintf(w, "target          %s (%s)\n", r.Target, r.Transport)
	if r.Repeat > 0 {
		fmt.Fprintf(w, "mode            turn capacity: answer + %d \"*\" turns per call (no AS/MCP)\n", r.Repeat)
	}
	fmt.Fprintf(w, "calls           %d at concurrency %d in %s (%d wrong on purpose)\n", r.Calls, r.Concurrency, r.Elapsed.Round(time.Millisecond), r.WrongOnPurpose)
	fmt.Fprintf(w, "throughput      %.1f calls/s, %.1f turns/s\n", r.CallsPerSecond, r.TurnsPerSecond)
	fmt.Fprintf(w, "turn latency    %s\n", r.TurnLatency)
	fmt.Fprintf(w, "full auth       %s\n", r.AuthLatency)
	fmt.Fprintf(w, "first tool      %s\n", r.FirstToolResult)
	fmt.Fprintf(w, "auth+1st tool   %s   (per call, think time excluded)\n", r.AuthToFirstTool)
	fmt.Fprintf(w, "outcomes        %v\n", r.Outcomes)
	if r.TokensIssued+r.ToolCalls > 0 {
		fmt.Fprintf(w, "observed        %d tokens issued at the AS, %d MCP tool calls\n", r.TokensIssued, r.ToolCalls)
	}
	fmt.Fprintf(w, "nothing lost?   %s\n", r.Count)
	fmt.Fprintf(w, "errors          %d\n", r.Errors)
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(w, "                %s\n", e)
	}
	fmt.Fprintf(w, "rss             %s\n", r.RSS)
}

// feed hands the workers call numbers 0..n-1 until ctx ends, then closes jobs.
func feed(ctx context.Context, jobs chan<- int, n int) {
	defer close(jobs)
	for i := 0; i < n; i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
			return
		}
	}
}
