package scenarios

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var turnsTotalRE = regexp.MustCompile(`(?m)^voiceauth_ivr_turns_total\{[^}]*\} (\d+)`)

func ivrTurns(t *testing.T, b Backend) int {
	t.Helper()
	text, err := b.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range turnsTotalRE.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

// TestRunLoadRepeat: the turn-capacity mode places signed calls whose every
// "*" turn is handled (and counted) by the voice service and none reaches
// the AS.
func TestRunLoadRepeat(t *testing.T) {
	if !EmbeddedAvailable() || generatePatients == nil {
		t.Fatal(ErrNoEmbedded)
	}
	for _, tr := range []string{TransportWebhook, TransportRelay} {
		t.Run(tr, func(t *testing.T) {
			ctx := context.Background()
			target, stop, err := startStack(ctx, nil, tr, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			defer stop(context.Background())
			before := ivrTurns(t, target.Backend)
			const calls, repeat = 6, 3
			rep := RunLoad(ctx, target, LoadConfig{Calls: calls, Concurrency: 2, Repeat: repeat, WrongEvery: 2,
				TurnTimeout: 5 * time.Second, Patients: generatePatients(10)})
			if rep.Errors != 0 {
				t.Fatalf("errors: %q", rep.ErrorSamples)
			}
			if rep.Turns != calls*(1+repeat) || rep.Outcomes[OutcomeHungUp] != calls || rep.WrongOnPurpose != 0 {
				t.Errorf("turns %d, outcomes %v, wrong %d; want %d turns, %d hung up, 0 wrong", rep.Turns, rep.Outcomes, rep.WrongOnPurpose, calls*(1+repeat), calls)
			}
			if rep.TokensIssued != 0 || rep.AuthLatency.N != 0 {
				t.Errorf("the repeat mode reached the AS: %d tokens, %d auths", rep.TokensIssued, rep.AuthLatency.N)
			}
			if got := ivrTurns(t, target.Backend) - before; got < calls*repeat {
				t.Errorf("server counted %d turns, want at least %d", got, calls*repeat)
			}
		})
	}
}
