package scenarios

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\tvoiceauth\nVmHWM:\t   52344 kB\nVmRSS:\t   40112 kB\nThreads:\t9\n"
	for _, tc := range []struct {
		key  string
		want int64
	}{
		{"VmRSS:", 40112},
		{"VmHWM:", 52344},
		{"VmSwap:", 0},
	} {
		if got := parseStatusKiB(status, tc.key); got != tc.want {
			t.Errorf("parseStatusKiB(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

var relayConnsRE = regexp.MustCompile(`(?m)^voiceauth_ivr_relay_connections (\d+)`)

func relayConns(t *testing.T, b Backend) int {
	t.Helper()
	text, err := b.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	m := relayConnsRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no voiceauth_ivr_relay_connections in metrics")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestRunIdle opens 50 signed relay calls on the embedded stack, checks the
// server holds all 50 sessions while the generator holds them, and that
// every one is gone after the run hangs up.
func TestRunIdle(t *testing.T) {
	if !EmbeddedAvailable() {
		t.Fatal(ErrNoEmbedded)
	}
	ctx := context.Background()
	target, stop, err := startStack(ctx, nil, TransportRelay, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	target.HTTPClient = idleHTTPClient(10)
	const n = 50
	serverHeld := -1
	rep := RunIdle(ctx, target, IdleConfig{Calls: n, Concurrency: 10, PID: os.Getpid(),
		OnHeld: func() { serverHeld = relayConns(t, target.Backend) }}, nil)
	if rep.Opened != n || rep.Failed != 0 || rep.StillOpen != n {
		t.Fatalf("opened %d, failed %d, still open %d; want %d, 0, %d (errors %q)", rep.Opened, rep.Failed, rep.StillOpen, n, n, rep.ErrorSamples)
	}
	if serverHeld != n {
		t.Errorf("server relay connections while held = %d, want %d", serverHeld, n)
	}
	if rep.Greeting.N != n || rep.Greeting.P50 <= 0 {
		t.Errorf("greeting latency %v, want %d samples", rep.Greeting, n)
	}
	if rep.RSSBeforeKiB <= 0 || rep.RSSAfterKiB <= 0 {
		t.Errorf("RSS not read: before %d, after %d", rep.RSSBeforeKiB, rep.RSSAfterKiB)
	}
	// The hang-ups are asynchronous on the server side.
	deadline := time.Now().Add(10 * time.Second)
	for relayConns(t, target.Backend) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("server still holds %d relay connections after every call hung up", relayConns(t, target.Backend))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunIdleRejected: calls signed with the wrong token must not count as open.
func TestRunIdleRejected(t *testing.T) {
	if !EmbeddedAvailable() {
		t.Fatal(ErrNoEmbedded)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, transport, token, wantErr string
	}{
		{"wrong token", TransportRelay, "not-the-token", "HTTP 403"},
		{"webhook front end", TransportWebhook, "", "did not connect a ConversationRelay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, stop, err := startStack(ctx, nil, tc.transport, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			defer stop(context.Background())
			if tc.token != "" {
				target.AuthToken = tc.token
			}
			rep := RunIdle(ctx, target, IdleConfig{Calls: 3, Concurrency: 3, TurnTimeout: 5 * time.Second}, nil)
			if rep.Opened != 0 || rep.Failed != 3 {
				t.Fatalf("opened %d, failed %d; want 0, 3", rep.Opened, rep.Failed)
			}
			if len(rep.ErrorSamples) == 0 || !strings.Contains(rep.ErrorSamples[0], tc.wantErr) {
				t.Errorf("errors %q, want one containing %q", rep.ErrorSamples, tc.wantErr)
			}
		})
	}
}
