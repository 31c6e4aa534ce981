package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voiceauth/voiceauth/ivr/twiliotest"
)

// IdleConfig drives an idle-call run: open Calls signed ConversationRelay
// sessions, let each hear its greeting, then hold them all open silently.
type IdleConfig struct {
	Calls       int
	Concurrency int           // calls being opened at once (default 50)
	Hold        time.Duration // how long to hold every call once all are open
	TurnTimeout time.Duration // longest wait for a greeting (default 10 s)
	// PID is the target server process whose RSS is read from /proc (0: no
	// measurement; the server must run out of process to measure it alone).
	PID      int
	Progress func(opened, failed int)
	// OnHeld, if set, runs once all calls are open, before the hold.
	OnHeld func()
}

// IdleReport is what an idle run measures. RSS figures are KiB from
// /proc/PID/status (VmRSS), the server process alone.
type IdleReport struct {
	Calls        int           `json:"calls"`
	Target       string        `json:"target"`
	Opened       int           `json:"opened"`
	Failed       int           `json:"failed"`
	StillOpen    int           `json:"still_open"` // open at the end of the hold
	OpenElapsed  time.Duration `json:"open_elapsed_ns"`
	Held         time.Duration `json:"held_ns"`
	Greeting     Percentiles   `json:"greeting_latency"` // POST /twilio/voice → first greeting token
	PID          int           `json:"pid,omitempty"`
	RSSBeforeKiB int64         `json:"rss_before_kib,omitempty"`
	RSSAfterKiB  int64         `json:"rss_after_kib,omitempty"`
	HWMAfterKiB  int64         `json:"hwm_after_kib,omitempty"`
	PerCallKiB   float64       `json:"rss_per_call_kib,omitempty"`
	ErrorSamples []string      `json:"error_samples,omitempty"`
}

// idleCall is a lean relay client: unlike relayPhone it keeps no event
// queue, so 10,000 of them fit in a small load generator. Its reader only
// exists to answer the server's pings and notice a close.
type idleCall struct {
	conn   *websocket.Conn
	closed chan struct{}
}

// openIdleCall opens a relay session and keeps only a reader on it.
func openIdleCall(ctx context.Context, target *Target, from string, timeout time.Duration) (*idleCall, time.Duration, error) {
	conn, first, err := openRelaySession(ctx, target, from, timeout)
	if err != nil {
		return nil, 0, err
	}
	c := &idleCall{conn: conn, closed: make(chan struct{})}
	go func() {
		// Reading runs gorilla's default ping handler (a pong back); any
		// frame the agent sends unprompted is ignored.
		defer close(c.closed)
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	return c, first, nil
}

// openRelaySession answers a call as Twilio does (signed POST /twilio/voice,
// signed websocket upgrade, setup message) and waits for the greeting's
// last token. It returns the socket with nobody reading it and the time to
// the greeting's first token.
func openRelaySession(ctx context.Context, target *Target, from string, timeout time.Duration) (*websocket.Conn, time.Duration, error) {
	start := time.Now()
	var p *webhookPhone // the signed POST is the same for both front ends
	switch ph := Dial(target, PhoneConfig{Caller: Caller{From: from, StirVerstat: "TN-Validation-Passed-A"}, Timeout: timeout}).(type) {
	case *relayPhone:
		p = ph.webhookPhone
	case *webhookPhone:
		p = ph
	}
	public := target.publicURL() + "/twilio/voice"
	status, body, err := p.post(ctx, public, p.baseParams("ringing"), "", randomToken())
	if err != nil {
		return nil, 0, err
	}
	if status != http.StatusOK {
		return nil, 0, fmt.Errorf("/twilio/voice: HTTP %d %q", status, clip(body))
	}
	tw, err := ParseTwiML(body)
	if err != nil {
		return nil, 0, err
	}
	if tw.Relay == nil || tw.Relay.URL == "" {
		return nil, 0, fmt.Errorf("/twilio/voice did not connect a ConversationRelay (verbs %v); is the target in relay mode?", tw.Verbs)
	}
	hdr := http.Header{}
	hdr.Set("X-Twilio-Signature", twiliotest.Sign(target.AuthToken, tw.Relay.URL, nil))
	dialURL := tw.Relay.URL
	if pub := wsForm(target.publicURL()); strings.HasPrefix(dialURL, pub) {
		dialURL = wsForm(target.VoiceURL) + strings.TrimPrefix(dialURL, pub)
	}
	d := websocket.Dialer{HandshakeTimeout: timeout, ReadBufferSize: 1024, WriteBufferSize: 1024}
	conn, resp, err := d.DialContext(ctx, dialURL, hdr)
	if err != nil {
		if resp != nil {
			return nil, 0, fmt.Errorf("relay upgrade: HTTP %d: %w", resp.StatusCode, err)
		}
		return nil, 0, fmt.Errorf("relay upgrade: %w", err)
	}
	conn.SetReadLimit(1 << 20)
	setup := map[string]any{
		"type": "setup", "sessionId": "VX" + randomToken() + randomToken()[:8], "accountSid": p.account, "callSid": p.cfg.CallSid,
		"from": from, "to": p.cfg.Caller.To, "forwardedFrom": "", "callType": "PSTN",
		"callerName": "", "direction": "inbound", "callStatus": "RINGING", "applicationSid": "",
		"customParameters": tw.Relay.Parameters,
	}
	conn.SetWriteDeadline(time.Now().Add(timeout))
	if err := conn.WriteJSON(setup); err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("relay setup: %w", err)
	}
	conn.SetReadDeadline(time.Now().Add(timeout))
	var first time.Duration
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			conn.Close()
			return nil, 0, fmt.Errorf("relay greeting: %w", err)
		}
		var m relayMsg
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		if m.Type == "end" {
			conn.Close()
			return nil, 0, fmt.Errorf("relay greeting: the agent ended the session (%s)", clip([]byte(m.HandoffData)))
		}
		if m.Type != "text" {
			continue
		}
		if first == 0 {
			first = time.Since(start)
		}
		if m.Last {
			break
		}
	}
	conn.SetReadDeadline(time.Time{})
	return conn, first, nil
}

func (c *idleCall) open() bool {
	select {
	case <-c.closed:
		return false
	default:
		return true
	}
}

func (c *idleCall) hangup() {
	c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.conn.Close()
	<-c.closed
}

// RunIdle opens cfg.Calls relay calls on target, holds them for cfg.Hold
// and reports the server's RSS growth per open call. Every call is hung up
// before it returns.
func RunIdle(ctx context.Context, target *Target, cfg IdleConfig, callers []SyntheticPatient) IdleReport {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 50
	}
	if cfg.TurnTimeout <= 0 {
		cfg.TurnTimeout = 10 * time.Second
	}
	rep := IdleReport{Calls: cfg.Calls, Target: target.VoiceURL, PID: cfg.PID}
	if cfg.PID > 0 {
		rep.RSSBeforeKiB, _, _ = readRSSKiB(cfg.PID)
	}
	calls := make([]*idleCall, 0, cfg.Calls)
	var greet []time.Duration
	var mu sync.Mutex
	var opened, failed atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				from := "+1555" + fmt.Sprintf("%07d", 2000000+i) // unknown numbers unless callers are given
				if len(callers) > 0 {
					from = callers[i%len(callers)].Phone
				}
				c, first, err := openIdleCall(ctx, target, from, cfg.TurnTimeout)
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if len(rep.ErrorSamples) < 5 {
						rep.ErrorSamples = append(rep.ErrorSamples, err.Error())
					}
				} else {
					opened.Add(1)
					calls = append(calls, c)
					greet = append(greet, first)
				}
				mu.Unlock()
				if cfg.Progress != nil {
					cfg.Progress(int(opened.Load()), int(failed.Load()))
				}
			}
		}()
	}
	feed(ctx, jobs, cfg.Calls)
	wg.Wait()
	rep.OpenElapsed = time.Since(start)
	rep.Opened, rep.Failed = int(opened.Load()), int(failed.Load())
	rep.Greeting = percentiles(greet)
	if cfg.OnHeld != nil {
		cfg.OnHeld()
	}
	held := time.Now()
	select {
	case <-time.After(cfg.Hold):
	case <-ctx.Done():
	}
	rep.Held = time.Since(held)
	for _, c := range calls {
		if c.open() {
			rep.StillOpen++
		}
	}
	if cfg.PID > 0 {
		rep.RSSAfterKiB, rep.HWMAfterKiB, _ = readRSSKiB(cfg.PID)
		if rep.StillOpen > 0 {
			rep.PerCallKiB = float64(rep.RSSAfterKiB-rep.RSSBeforeKiB) / float64(rep.StillOpen)
		}
	}
	var hw sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range calls {
		hw.Add(1)
		sem <- struct{}{}
		go func() {
			defer hw.Done()
			c.hangup()
			<-sem
		}()
	}
	hw.Wait()
	return rep
}

// readRSSKiB returns VmRSS and VmHWM of pid in KiB.
func readRSSKiB(pid int) (rss, hwm int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatusKiB(string(data), "VmRSS:"), parseStatusKiB(string(data), "VmHWM:"), nil
}

func parseStatusKiB(status, key string) int64 {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// idleHTTPClient keeps enough idle connections for the opening workers, so
// 10,000 POSTs do not leave 10,000 sockets in TIME_WAIT.
func idleHTTPClient(conc int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conc * 2
	tr.MaxIdleConnsPerHost = conc * 2
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func writeIdle(w io.Writer, r IdleReport) {
	fmt.Fprintf(w, "target          %s (relay, idle)\n", r.Target)
	fmt.Fprintf(w, "calls           %d requested, %d opened, %d failed, in %s\n", r.Calls, r.Opened, r.Failed, r.OpenElapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "greeting        %s\n", r.Greeting)
	fmt.Fprintf(w, "held            %s; %d still open at the end\n", r.Held.Round(time.Millisecond), r.StillOpen)
	if r.PID > 0 {
		fmt.Fprintf(w, "server rss      pid %d: %d KiB before, %d KiB after (HWM %d KiB)\n", r.PID, r.RSSBeforeKiB, r.RSSAfterKiB, r.HWMAfterKiB)
		fmt.Fprintf(w, "rss per call    %.1f KiB (after − before) / still open\n", r.PerCallKiB)
	} else {
		fmt.Fprintf(w, "server rss      not measured (pass --pid of the target process)\n")
	}
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(w, "error           %s\n", e)
	}
}

var errIdleNeedsRelay = errors.New("--idle needs --transport relay")

// idleMain is `voiceauth load --idle N`.
func idleMain(tf targetFlags, n, conc int, hold, timeout time.Duration, pid int, asJSON bool, stdout, stderr io.Writer) int {
	if tf.transport == "" {
		tf.transport = TransportRelay
	}
	if tf.transport != TransportRelay {
		fmt.Fprintln(stderr, errIdleNeedsRelay)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var target *Target
	if tf.target != "" {
		t, err := tf.remote()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		target = t
	} else {
		t, stopStack, err := startStack(ctx, nil, TransportRelay, 0, false)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer stopWithin(stopStack, 10*time.Second)
		target = t
		if pid == 0 {
			pid = os.Getpid()
			fmt.Fprintln(stderr, "idle: embedded stack: RSS includes the load generator (use --target and --pid for the server alone)")
		}
	}
	target.HTTPClient = idleHTTPClient(conc)
	var callers []SyntheticPatient
	if generatePatients != nil {
		callers = generatePatients(min(n, 10000))
	}
	tty := isTerminal(stderr)
	var pmu sync.Mutex
	var last time.Time
	cfg := IdleConfig{Calls: n, Concurrency: conc, Hold: hold, TurnTimeout: timeout, PID: pid,
		Progress: func(opened, failed int) {
			pmu.Lock()
			defer pmu.Unlock()
			if opened+failed != n && time.Since(last) < 2*time.Second {
				return
			}
			last = time.Now()
			if tty {
				fmt.Fprintf(stderr, "\r%d/%d open, %d failed\033[K", opened, n, failed)
			} else {
				fmt.Fprintf(stderr, "%d/%d open, %d failed\n", opened, n, failed)
			}
		}}
	rep := RunIdle(ctx, target, cfg, callers)
	if tty {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		writeIdle(stdout, rep)
	}
	if rep.Failed > 0 || rep.StillOpen < rep.Opened || ctx.Err() != nil {
		return 1
	}
	return 0
}
