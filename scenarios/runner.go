package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Result is one scenario run under one transport.
type Result struct {
	Scenario   string        `json:"scenario"`
	File       string        `json:"file"`
	Transport  string        `json:"transport"`
	Passed     bool          `json:"passed"`
	Skipped    bool          `json:"skipped,omitempty"`
	SkipReason string        `json:"skip_reason,omitempty"`
	Pending    bool          `json:"pending,omitempty"` // tagged pending: failure expected until implemented
	Failures   []string      `json:"failures,omitempty"`
	Unchecked  []string      `json:"unchecked,omitempty"` // assertions a remote target cannot support
	Calls      []CallResult  `json:"calls"`
	Duration   time.Duration `json:"duration_ns"`
	Language   string        `json:"language,omitempty"`
	Talk       TalkTotals    `json:"talk"` // the talk-time estimate (talktime.go)
	// LogTail is the embedded stack's last log lines when the run failed.
	LogTail string `json:"log_tail,omitempty"`
}

// CallResult is one phone call of a scenario.
type CallResult struct {
	Name           string       `json:"name"`
	CallSid        string       `json:"call_sid"`
	Outcome        string       `json:"outcome"`
	TransferReason string       `json:"transfer_info,omitempty"`
	Turns          []TurnResult `json:"turns"`
	Talk           TalkTotals   `json:"talk"`
}

// TurnResult is one caller action and the agent's reply.
type TurnResult struct {
	Index      int           `json:"index"`
	Input      string        `json:"input"`
	Heard      string        `json:"heard"`
	Status     int           `json:"status"`
	FirstWords time.Duration `json:"first_words_ns"`
	Complete   time.Duration `json:"complete_ns"`
	Budget     time.Duration `json:"budget_ns,omitempty"`
	Failures   []string      `json:"failures,omitempty"`
	Talk       TalkEstimate  `json:"talk"`
}

func (r *Result) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// RunOptions configures RunAll.
type RunOptions struct {
	// Target is a running voiceauth; nil starts a fresh embedded stack per
	// scenario and transport (one shared stack per transport for shared: true).
	Target *Target
	// Parallel caps concurrent scenarios (default 4; the machine has 2 cores).
	Parallel int
	// TurnTimeout is the longest the runner waits for the agent in one turn.
	TurnTimeout time.Duration
	// Progress, if set, is called after each result.
	Progress func(Result)
	// Clock is the instant embedded stacks start at for scenarios that name
	// no clock (zero: DefaultClock).
	Clock time.Time
}

// RunAll runs every scenario under each transport it names.
func RunAll(ctx context.Context, scs []*Scenario, o RunOptions) []Result {
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.Clock.IsZero() {
		o.Clock = mustClock(DefaultClock)
	}
	type job struct {
		sc        *Scenario
		transport string
		idx       int
	}
	var jobs []job
	for _, sc := range scs {
		trs := sc.Transports()
		if o.Target != nil {
			// A running target serves one transport; Run reports a skip
			// for scenarios that do not name it.
			trs = []string{o.Target.Transport}
		}
		for _, tr := range trs {
			jobs = append(jobs, job{sc, tr, len(jobs)})
		}
	}
	results := make([]Result, len(jobs))
	shared := newSharedStacks(o.Clock)
	defer shared.close()
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var r Result
			switch {
			case o.Target != nil:
				r = Run(ctx, j.sc, o.Target, o.TurnTimeout)
			case j.sc.Shared:
				t, err := shared.get(ctx, j.transport)
				if err != nil {
					r = errorResult(j.sc, j.transport, err)
				} else {
					r = Run(ctx, j.sc, t, o.TurnTimeout)
				}
			default:
				r = RunEmbeddedAt(ctx, j.sc, j.transport, o.TurnTimeout, o.Clock)
			}
			results[j.idx] = r
			if o.Progress != nil {
				o.Progress(r)
			}
		}()
	}
	wg.Wait()
	return results
}

func errorResult(sc *Scenario, transport string, err error) Result {
	r := Result{Scenario: sc.Name, File: sc.File, Transport: transport, Pending: sc.HasTag("pending")}
	r.fail("%v", err)
	return r
}

type sharedStacks struct {
	clock  time.Time
	mu     sync.Mutex
	stacks map[string]*Target
	stops  []func(context.Context) error
	errs   map[string]error
}

func newSharedStacks(clock time.Time) *sharedStacks {
	return &sharedStacks{clock: clock, stacks: map[string]*Target{}, errs: map[string]error{}}
}

func (s *sharedStacks) get(ctx context.Context, transport string) (*Target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.stacks[transport]; ok {
		return t, nil
	}
	if err, ok := s.errs[transport]; ok {
		return nil, err
	}
	t, stop, err := StartEmbeddedAt(ctx, nil, transport, s.clock)
	if err != nil {
		s.errs[transport] = err
		return nil, err
	}
	s.stacks[transport] = t
	s.stops = append(s.stops, stop)
	return t, nil
}

func (s *sharedStacks) close() {
	for _, stop := range s.stops {
		stopWithin(stop, 10*time.Second)
	}
}

// stopWithin stops an embedded stack, giving it d to let calls finish.
func stopWithin(stop func(context.Context) error, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	stop(ctx)
}

// StartEmbedded starts a fresh in-process stack for transport on the wall
// clock, with sc's faults wired in (sc may be nil). stop closes it and removes
// its data dir.
func StartEmbedded(ctx context.Context, sc *Scenario, transport string) (*Target, func(context.Context) error, error) {
	return startStack(ctx, sc, transport, 0, true)
}

// StartEmbeddedAt is StartEmbedded with the stack's clock starting at sc's
// clock, or at suite when sc names none.
func StartEmbeddedAt(ctx context.Context, sc *Scenario, transport string, suite time.Time) (*Target, func(context.Context) error, error) {
	return startStackAt(ctx, sc, transport, 0, true, clockFor(sc, suite))
}

func startStack(ctx context.Context, sc *Scenario, transport string, generated int, keepLogs bool) (*Target, func(context.Context) error, error) {
	return startStackAt(ctx, sc, transport, generated, keepLogs, time.Time{})
}

// startStackAt starts a stack whose clock begins at clock (zero: wall clock).
func startStackAt(ctx context.Context, sc *Scenario, transport string, generated int, keepLogs bool, clock time.Time) (*Target, func(context.Context) error, error) {
	if startEmbedded == nil {
		return nil, nil, ErrNoEmbedded
	}
	obs := NewObserver(sc)
	var logs *SyncBuffer
	var logw io.Writer = io.Discard
	if keepLogs {
		logs = &SyncBuffer{}
		logw = logs
	}
	// VOICEAUTH_STACK_LOG=file also writes the embedded stack's JSON log
	// there (load runs: which component logged what).
	if path := os.Getenv("VOICEAUTH_STACK_LOG"); path != "" {
		if f, err := os.Create(path); err == nil {
			logw = io.MultiWriter(logw, f)
		}
	}
	frontend := "gather"
	if transport == TransportRelay {
		frontend = "relay"
	}
	var now func() time.Time
	if !clock.IsZero() {
		now = runningClock(clock)
	}
	t, stop, err := startEmbedded(ctx, EmbeddedOptions{Frontend: frontend, WrapAS: obs.WrapAS, WrapMCP: obs.WrapMCP,
		LogWriter: logw, GeneratedPatients: generated, Now: now, MaxCalls: embeddedMaxCalls})
	if err != nil {
		return nil, nil, fmt.Errorf("start embedded stack: %w", err)
	}
	t.Transport, t.Observer, t.Logs = transport, obs, logs
	obs.Arm()
	return t, stop, nil
}

// RunEmbedded runs sc once under transport on a fresh embedded stack, on sc's
// clock or DefaultClock.
func RunEmbedded(ctx context.Context, sc *Scenario, transport string, turnTimeout time.Duration) Result {
	return RunEmbeddedAt(ctx, sc, transport, turnTimeout, mustClock(DefaultClock))
}

// RunEmbeddedAt is RunEmbedded with suite as the clock of scenarios that name none.
func RunEmbeddedAt(ctx context.Context, sc *Scenario, transport string, turnTimeout time.Duration, suite time.Time) Result {
	t, stop, err := StartEmbeddedAt(ctx, sc, transport, suite)
	if err != nil {
		return errorResult(sc, transport, err)
	}
	defer stopWithin(stop, 10*time.Second)
	return Run(ctx, sc, t, turnTimeout)
}

// Run plays sc against target (whose Transport must be one sc allows).
func Run(ctx context.Context, sc *Scenario, target *Target, turnTimeout time.Duration) (r Result) {
	start := time.Now()
	r = Result{Scenario: sc.Name, File: sc.File, Transport: target.Transport, Pending: sc.HasTag("pending"), Language: sc.Language}
	defer estimateResult(&r)
	defer func() { r.Duration = time.Since(start); r.Passed = !r.Skipped && len(r.Failures) == 0 }()
	allowed := false
	for _, tr := range sc.Transports() {
		allowed = allowed || tr == target.Transport
	}
	if !allowed {
		r.Skipped, r.SkipReason = true, fmt.Sprintf("scenario is %s-only; target serves %s", sc.Transport, target.Transport)
		return r
	}
	if len(sc.Faults) > 0 && target.Observer == nil {
		r.Skipped, r.SkipReason = true, "faults need the embedded stack"
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var canaries []string
	canaries = append(canaries, sc.LogsMustNotContain...)
	for _, c := range sc.AllCalls() {
		n := c.Repeat
		if n == 0 {
			n = 1
		}
		for i := 0; i < n; i++ {
			cr, otps := runCall(ctx, sc, &c, target, turnTimeout, &r)
			if n > 1 {
				cr.Name = fmt.Sprintf("%s#%d", c.Name, i+1)
			}
			r.Calls = append(r.Calls, cr)
			canaries = append(canaries, otps...)
		}
	}
	checkCanaries(ctx, target, canaries, &r)
	if len(r.Failures) > 0 && target.Logs != nil {
		r.LogTail = tailLines(target.Logs.String(), 40)
	}
	return r
}

// checkCanaries greps logs and metrics for PHI canaries as whole words.
func checkCanaries(ctx context.Context, target *Target, canaries []string, r *Result) {
	if len(canaries) == 0 {
		return
	}
	if target.Logs == nil || target.Backend == nil {
		r.Unchecked = append(r.Unchecked, "logs/metrics canaries (remote target)")
		return
	}
	logs := target.Logs.String()
	metrics, err := target.Backend.MetricsText()
	if err != nil {
		r.fail("metrics: %v", err)
	}
	for _, c := range canaries {
		if containsWord(logs, c) {
			r.fail("canary %s found in logs", redact(c))
		}
		if containsWord(metrics, c) {
			r.fail("canary %s found in metrics", redact(c))
		}
	}
}

// redact names a canary without printing it (it may be an OTP or SSN-4).
func redact(s string) string {
	if len(s) <= 2 {
		return "(canary)"
	}
	return fmt.Sprintf("%q", s[:1]+strings.Repeat("•", len([]rune(s))-1))
}

func runCall(ctx context.Context, sc *Scenario, c *Call, target *Target, turnTimeout time.Duration, r *Result) (CallResult, []string) {
	phone := Dial(target, PhoneConfig{Caller: c.Caller, Language: sc.Language, Timeout: turnTimeout})
	defer phone.Close()
	cr := CallResult{Name: c.Name, CallSid: phone.CallSid()}
	where := func(i int) string {
		if len(sc.Calls) > 0 {
			return fmt.Sprintf("%s turn %d", cr.Name, i)
		}
		return fmt.Sprintf("turn %d", i)
	}
	var otps []string
	callStart := time.Now()
	if c.Caller.UpstreamToken != nil {
		if err := registerSubjectToken(ctx, target, phone.CallSid(), c.Caller.UpstreamToken); err != nil {
			r.fail("%s: %v", cr.Name, err)
			return cr, otps
		}
	}
	turns := c.Turns
	if !turns[0].Answer {
		turns = append([]Turn{{Answer: true}}, turns...)
	}
	var heardBeforeAuth strings.Builder
	authed, transferred, hungUp, ended := false, false, false, false
	var transferInfo strings.Builder
	for i := range turns {
		t := turns[i] // copy: substitutions must not leak into the scenario
		tr := TurnResult{Index: i, Input: t.Input()}
		if ended && !t.Answer {
			r.fail("%s: the call already ended before this %s", where(i), t.Action())
			break
		}
		if err := substitute(&t, c.Caller, target, &otps); err != nil {
			r.fail("%s: %v", where(i), err)
			break
		}
		listen := listening(phone)
		rep, err := phone.Do(ctx, &t)
		tr.Talk = estimateTurn(&t, rep, listen, target.Transport)
		tr.Heard, tr.Status, tr.FirstWords, tr.Complete = rep.Text, rep.Status, rep.FirstWords, rep.Complete
		if err != nil {
			tr.Failures = append(tr.Failures, err.Error())
		}
		if !authed {
			heardBeforeAuth.WriteString(rep.Late + " ")
		}
		if t.Authenticated {
			authed = true
		}
		if !authed {
			heardBeforeAuth.WriteString(rep.Text + " ")
		}
		want := t.ExpectStatus
		if want == 0 {
			want = 200
			if target.Transport == TransportRelay && (t.Answer || rep.Status == 101) {
				want = 101
			}
		}
		if target.Transport == TransportRelay && t.Answer && want == 200 {
			want = 101
		}
		if rep.Status != want && !t.Hangup && err == nil {
			tr.Failures = append(tr.Failures, fmt.Sprintf("status %d, want %d", rep.Status, want))
		}
		if t.Hangup && rep.Status != 0 && rep.Status != 200 && rep.Status != 204 {
			tr.Failures = append(tr.Failures, fmt.Sprintf("status callback: HTTP %d", rep.Status))
		}
		if t.ExpectClose != 0 && rep.CloseCode != t.ExpectClose {
			tr.Failures = append(tr.Failures, fmt.Sprintf("close code %d, want %d", rep.CloseCode, t.ExpectClose))
		}
		if rep.Status < 300 {
			now := target.now()
			tr.Failures = append(tr.Failures, checkExpect(rep.Text, expandDates(t.Expect, now, sc.Language), expandDates(t.ExpectNot, now, sc.Language))...)
		} else if len(t.Expect) > 0 {
			tr.Failures = append(tr.Failures, fmt.Sprintf("no speech to check (HTTP %d)", rep.Status))
		}
		budget := time.Duration(t.Budget)
		if budget == 0 {
			budget = time.Duration(sc.LatencyBudget)
		}
		if budget > 0 && rep.Status < 300 && rep.Text != "" {
			tr.Budget = budget
			if rep.FirstWords > budget {
				tr.Failures = append(tr.Failures, fmt.Sprintf("first words after %s, budget %s", rep.FirstWords.Round(time.Millisecond), budget))
			}
		}
		for _, f := range tr.Failures {
			r.fail("%s (%s): %s", where(i), t.Action(), f)
		}
		cr.Turns = append(cr.Turns, tr)
		if t.Hangup {
			hungUp, ended = true, true
		}
		if rep.Transfer {
			transferred = true
			transferInfo.WriteString(rep.TransferInfo + " ")
		}
		if rep.Ended && rep.Status < 300 {
			ended = true
		}
		if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			break
		}
	}
	if !ended && target.Transport == TransportRelay {
		// A transfer (end) may follow the last words of the final turn.
		if rp, ok := phone.(*relayPhone); ok {
			rep := rp.settle(ctx, 300*time.Millisecond)
			if rep.Transfer {
				transferred = true
				transferInfo.WriteString(rep.TransferInfo + " ")
			}
			if !authed {
				heardBeforeAuth.WriteString(rep.Text)
			}
		}
	}
	callEnd := time.Now()
	estimateCall(&cr, turns)
	cr.TransferReason = strings.TrimSpace(transferInfo.String())
	evaluateFinal(ctx, c, target, callStart, callEnd, transferred, hungUp, authed, heardBeforeAuth.String(), &cr, r)
	return cr, otps
}

// substitute fills {{otp}} / {{wrong_otp}} from the OTP outbox.
func substitute(t *Turn, caller Caller, target *Target, otps *[]string) error {
	if !strings.Contains(t.Say+t.Press, "{{") {
		return nil
	}
	if target.Backend == nil {
		return errors.New("{{otp}} needs the embedded stack (the OTP outbox)")
	}
	phone := caller.OTPPhone
	if phone == "" {
		phone = caller.From
	}
	code, err := target.Backend.LatestOTP(phone)
	if err != nil {
		return fmt.Errorf("no OTP in the outbox for the number on file: %w", err)
	}
	*otps = append(*otps, code)
	wrong := []byte(code)
	for i := range wrong {
		if wrong[i] >= '0' && wrong[i] <= '9' {
			wrong[i] = '0' + (wrong[i]-'0'+1)%10
		}
	}
	rep := strings.NewReplacer("{{otp}}", code, "{{wrong_otp}}", string(wrong))
	t.Say, t.Press = rep.Replace(t.Say), rep.Replace(t.Press)
	return nil
}

var tokenPathRE = regexp.MustCompile(`token$`)

func evaluateFinal(ctx context.Context, c *Call, target *Target, from, to time.Time, transferred, hungUp, authedTurn bool, heard string, cr *CallResult, r *Result) {
	f := &c.Expect
	var asEvents []ASEvent
	var tools []string
	if target.Observer != nil {
		asEvents = target.Observer.ASEvents(from, to)
		tools = target.Observer.Tools(from, to)
	}
	tokenIssued := false
	for _, e := range asEvents {
		if e.TokenIssued && tokenPathRE.MatchString(e.Path) {
			tokenIssued = true
		}
	}
	var audit []AuditEvent
	var auditErr error
	needAudit := len(f.Audit) > 0 || len(f.AuditAbsent) > 0 || f.TransferReason != ""
	if needAudit && target.Backend != nil {
		audit, auditErr = target.Backend.Audit(ctx)
		if auditErr != nil {
			r.fail("%s: audit: %v", cr.Name, auditErr)
		}
	}
	// Outcome, from what the caller experienced plus (embedded) the AS.
	// A call that reached the authenticated menu keeps that outcome even if
	// it is transferred later (ARCHITECTURE.md: one outcome per call).
	switch {
	case tokenIssued || (authedTurn && target.Observer == nil):
		cr.Outcome = OutcomeAuthenticated
	case transferred:
		cr.Outcome = OutcomeTransferred
	case hungUp:
		cr.Outcome = OutcomeHungUp
	default:
		cr.Outcome = OutcomeFailed
	}
	if f.Outcome != "" && f.Outcome != cr.Outcome {
		r.fail("%s: outcome %s, want %s", cr.Name, cr.Outcome, f.Outcome)
	}
	if f.TransferReason != "" && !transferred {
		r.fail("%s: want a transfer (%s), the call was not transferred", cr.Name, f.TransferReason)
	} else if f.TransferReason != "" {
		evidence := cr.TransferReason
		for _, e := range audit {
			evidence += " " + e.Outcome
			for k, v := range e.Detail {
				evidence += " " + k + "=" + v
			}
		}
		if target.Backend != nil {
			if m, err := target.Backend.MetricsText(); err == nil {
				evidence += " " + m
			}
		}
		if target.Logs != nil {
			evidence += " " + target.Logs.String()
		}
		if !strings.Contains(evidence, f.TransferReason) {
			r.fail("%s: transfer reason %q not found in handoffData, <Dial>, audit, metrics or logs", cr.Name, f.TransferReason)
		}
	}
	if f.TokenIssued != nil {
		if target.Observer == nil {
			r.Unchecked = append(r.Unchecked, "token_issued (remote target)")
		} else if *f.TokenIssued != tokenIssued {
			r.fail("%s: token issued = %v, want %v", cr.Name, tokenIssued, *f.TokenIssued)
		}
	}
	if f.OTPSent != nil {
		if target.Backend == nil {
			r.Unchecked = append(r.Unchecked, "otp_sent (remote target)")
		} else {
			phone := c.Caller.OTPPhone
			if phone == "" {
				phone = c.Caller.From
			}
			code, err := target.Backend.LatestOTP(phone)
			if sent := err == nil && code != ""; sent != *f.OTPSent {
				r.fail("%s: OTP sent to the number on file = %v, want %v", cr.Name, sent, *f.OTPSent)
			}
		}
	}
	if len(f.ToolsCalled)+len(f.ToolsNotCalled) > 0 && target.Observer == nil {
		r.Unchecked = append(r.Unchecked, "tools_called (remote target)")
	} else {
		for _, want := range f.ToolsCalled {
			if !containsStr(tools, want) {
				r.fail("%s: MCP tool %s was not called (called: %v)", cr.Name, want, tools)
			}
		}
		for _, not := range f.ToolsNotCalled {
			if containsStr(tools, not) {
				r.fail("%s: MCP tool %s was called", cr.Name, not)
			}
		}
	}
	if len(f.ASErrors) > 0 {
		if target.Observer == nil {
			r.Unchecked = append(r.Unchecked, "as_errors (remote target)")
		} else {
			var seen []string
			for _, e := range asEvents {
				if e.Error != "" {
					seen = append(seen, e.Error)
				}
			}
			for _, want := range f.ASErrors {
				if !containsStr(seen, want) {
					r.fail("%s: AS never answered %s (saw %v)", cr.Name, want, seen)
				}
			}
		}
	}
	if needAudit && target.Backend == nil {
		r.Unchecked = append(r.Unchecked, "audit (remote target)")
	} else if auditErr == nil {
		for _, want := range f.Audit {
			if !auditHas(audit, want) {
				r.fail("%s: no audit event %q (have %s)", cr.Name, want, auditTypes(audit))
			}
		}
		for _, not := range f.AuditAbsent {
			if auditHas(audit, not) {
				r.fail("%s: unexpected audit event %q", cr.Name, not)
			}
		}
	}
	for _, canary := range f.MustNotContain {
		m, err := compileMatcher(canary)
		if err == nil && m.match(heard) {
			r.fail("%s: caller heard record data %q before authentication", cr.Name, canary)
		}
	}
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func auditHas(evs []AuditEvent, typ string) bool {
	for _, e := range evs {
		if strings.Contains(strings.ToLower(e.Type), strings.ToLower(typ)) {
			return true
		}
	}
	return false
}

func auditTypes(evs []AuditEvent) string {
	seen := map[string]bool{}
	var out []string
	for _, e := range evs {
		if !seen[e.Type] {
			seen[e.Type] = true
			out = append(out, e.Type)
		}
	}
	return "[" + strings.Join(out, " ") + "]"
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
