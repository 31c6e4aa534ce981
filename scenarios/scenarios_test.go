package scenarios

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestScenarios runs every shipped scenario against the embedded stack, under
// each transport it names: a fresh stack (temp data dir, ephemeral ports) per
// run, or one shared stack per transport for scenarios marked shared: true.
// Stacks start at DefaultClock unless a scenario names its own clock.
func TestScenarios(t *testing.T) {
	runSuite(t, mustClock(DefaultClock))
}

// TestScenariosUnderClocks runs the whole suite again with the stacks' clocks
// far apart: a common-year month end, a leap day one minute before midnight,
// a year end, and the night the clocks fall back. Demo data and date
// expectations are relative to the clock, so each must pass.
func TestScenariosUnderClocks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the suite runs once, under DefaultClock, in TestScenarios")
	}
	for _, c := range []string{"2027-02-28 08:00", "2028-02-29 23:59", "2031-12-31 17:30", "2027-11-07 01:30"} {
		t.Run(strings.ReplaceAll(c, " ", "T"), func(t *testing.T) { runSuite(t, mustClock(c)) })
	}
}

func runSuite(t *testing.T, clock time.Time) {
	scs, err := Load(".")
	if err != nil {
		t.Fatal(err)
	}
	if !EmbeddedAvailable() {
		t.Fatal(ErrNoEmbedded)
	}
	ctx := context.Background()
	var (
		mu     sync.Mutex
		shared = map[string]*Target{}
		errs   = map[string]error{}
	)
	sharedStack := func(tr string) (*Target, error) {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := shared[tr]; ok {
			return s, nil
		}
		if err, ok := errs[tr]; ok {
			return nil, err
		}
		s, stop, err := StartEmbeddedAt(ctx, nil, tr, clock)
		if err != nil {
			errs[tr] = err
			return nil, err
		}
		t.Cleanup(func() { stopWithin(stop, 10*time.Second) })
		shared[tr] = s
		return s, nil
	}
	sem := make(chan struct{}, 4) // 2 cores: at most 4 stacks at once
	for _, sc := range scs {
		for _, tr := range sc.Transports() {
			t.Run(sc.Name+"/"+tr, func(t *testing.T) {
				if sc.HasTag("pending") {
					t.Skipf("pending (%s): %s", sc.File, sc.Missing)
				}
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				var r Result
				if sc.Shared {
					target, err := sharedStack(tr)
					if err != nil {
						t.Fatal(err)
					}
					r = Run(ctx, sc, target, 10*time.Second)
				} else {
					r = RunEmbeddedAt(ctx, sc, tr, 10*time.Second, clock)
				}
				if r.Skipped {
					t.Fatalf("skipped unexpectedly: %s", r.SkipReason)
				}
				if !r.Passed {
					var heard strings.Builder
					for _, c := range r.Calls {
						for _, tu := range c.Turns {
							heard.WriteString("\n    " + c.Name + " " + tu.Input + " → " + tu.Heard)
						}
					}
					t.Fatalf("%s\n  %s\n  transcript:%s\n  stack log tail:\n%s", sc.File, strings.Join(r.Failures, "\n  "), heard.String(), r.LogTail)
				}
			})
		}
	}
}

// voiceauth load against the embedded stack (one call at a time: this checks
// the tool's accounting, not throughput): synthetic callers authenticate,
// the wrong-on-purpose ones do not, and nothing errors.
func TestLoadMainEmbedded(t *testing.T) {
	for _, tr := range []string{TransportWebhook, TransportRelay} {
		t.Run(tr, func(t *testing.T) {
			var out, errb strings.Builder
			code := LoadMain([]string{"--calls", "20", "--concurrency", "1", "--wrong-every", "10", "--transport", tr, "--json"}, &out, &errb)
			var rep LoadReport
			if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
				t.Fatalf("exit %d, %v: %s %s", code, err, out.String(), errb.String())
			}
			if code != 0 || rep.Errors != 0 {
				t.Fatalf("exit %d, errors %v", code, rep.ErrorSamples)
			}
			if rep.WrongOnPurpose != 2 || rep.Outcomes[OutcomeAuthenticated] != 18 {
				t.Fatalf("outcomes %v (wrong on purpose %d), want 18 authenticated", rep.Outcomes, rep.WrongOnPurpose)
			}
			if rep.TokensIssued != 18 || rep.ToolCalls != 18 || rep.AuthLatency.N != 18 || rep.TurnLatency.P99 <= 0 {
				t.Fatalf("tokens %d tools %d auth n=%d turn %v", rep.TokensIssued, rep.ToolCalls, rep.AuthLatency.N, rep.TurnLatency)
			}
		})
	}
}
