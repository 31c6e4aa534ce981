// Package scenarios replays scripted phone calls against a real voiceauth:
// Twilio-signed webhook POSTs or ConversationRelay websocket frames, with
// assertions on what the caller hears, what the backends saw and how the call
// ended. The same scripts are the integration test suite (go test ./scenarios/),
// `voiceauth replay`, and the building blocks of `voiceauth call` and `voiceauth load`.
package scenarios

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Transports a scenario may name.
const (
	TransportWebhook = "webhook"
	TransportRelay   = "relay"
	TransportBoth    = "both"
)

// Outcomes (the closed set from ARCHITECTURE.md).
const (
	OutcomeAuthenticated = "authenticated"
	OutcomeTransferred   = "transferred"
	OutcomeHungUp        = "caller_hung_up"
	OutcomeFailed        = "failed"
)

// Faults the embedded stack can inject (see README.md).
var knownFaults = map[string]bool{
	"as_slow": true, "as_down": true, "as_garbage": true, "mcp_down": true, "tamper_tools": true,
}

// Scenario is one call script (or several calls against one stack).
type Scenario struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Tags        []string `yaml:"tags"`
	// Missing names what the system lacks for a scenario tagged pending; the
	// test suite skips it with this message (replay still runs it).
	Missing   string   `yaml:"missing"`
	Language  string   `yaml:"language"`  // en (default) | es
	Transport string   `yaml:"transport"` // webhook | relay | both (default both)
	Shared    bool     `yaml:"shared"`    // may run on a stack shared with other shared scenarios
	Faults    []string `yaml:"faults"`    // e.g. as_slow=2s, as_down, mcp_down
	// Clock pins the instant the embedded stack starts at ("2028-02-29 23:59"
	// clinic time, or RFC 3339); empty: the suite's clock (DefaultClock). Dates
	// in expectations are written relative to it: {{date +2d}}.
	Clock string `yaml:"clock"`
	// LatencyBudget is the default per-turn budget for the time to the first
	// words the caller hears (0 = none).
	LatencyBudget Duration `yaml:"latency_budget"`
	// LogsMustNotContain are canaries (DOB, SSN-4, …) that must not appear as
	// whole words in the stack's logs or metrics. OTP codes fetched during
	// the scenario are added automatically.
	LogsMustNotContain []string `yaml:"logs_must_not_contain"`

	// One call: caller + turns + expect. Several calls: calls.
	Caller Caller `yaml:"caller"`
	Turns  []Turn `yaml:"turns"`
	Expect Final  `yaml:"expect"`
	Calls  []Call `yaml:"calls"`

	File string `yaml:"-"` // where it was loaded from
}

// Call is one phone call within a scenario.
type Call struct {
	Name   string `yaml:"name"`
	Repeat int    `yaml:"repeat"` // run this call N times (new CallSid each time); default 1
	Caller Caller `yaml:"caller"`
	Turns  []Turn `yaml:"turns"`
	Expect Final  `yaml:"expect"`
}

// Caller describes who is calling.
type Caller struct {
	From        string `yaml:"from"`
	To          string `yaml:"to"`
	StirVerstat string `yaml:"stir_verstat"`
	// OTPPhone is the number whose outbox entry {{otp}} reads (default: From).
	OTPPhone      string         `yaml:"otp_phone"`
	UpstreamToken *UpstreamToken `yaml:"upstream_token"`
}

// UpstreamToken makes the host application register a subject token for the
// call before it connects (token exchange callers).
type UpstreamToken struct {
	Sub      string   `yaml:"sub"`
	TTL      Duration `yaml:"ttl"`
	Tampered bool     `yaml:"tampered"` // flip a signature byte: the exchange must be rejected
	// ExpectStatus is the HTTP status the registration must get (default: any 2xx).
	ExpectStatus int `yaml:"expect_status"`
}

// Turn is one caller action and what the agent must say in response.
type Turn struct {
	// Exactly one action.
	Answer    bool     `yaml:"answer"`    // (re)deliver the incoming-call webhook / open the relay socket
	Say       string   `yaml:"say"`       // speech; {{otp}} and {{wrong_otp}} are substituted
	Press     string   `yaml:"press"`     // keypad digits
	Silence   bool     `yaml:"silence"`   // no input
	Hangup    bool     `yaml:"hangup"`    // caller hangs up
	Interrupt string   `yaml:"interrupt"` // relay: barge in (utteranceUntilInterrupt), then the next turn speaks
	SendRaw   []string `yaml:"send_raw"`  // relay: raw frames sent as they are

	Signature    string `yaml:"signature"`     // valid (default) | forged | missing
	Duplicate    bool   `yaml:"duplicate"`     // webhook: deliver twice with one idempotency token; replies must match
	ExpectStatus int    `yaml:"expect_status"` // HTTP status (webhook) or handshake status (relay); default 200
	ExpectClose  int    `yaml:"expect_close"`  // relay: the server must close the socket with this code

	Expect    []string `yaml:"expect"`     // each: case-insensitive substring, or /regex/
	ExpectNot []string `yaml:"expect_not"` // none may match
	Budget    Duration `yaml:"budget"`     // overrides latency_budget for this turn
	// Authenticated marks the turn whose reply is the first one the caller hears
	// as an authenticated caller; must_not_contain stops applying from here.
	Authenticated bool `yaml:"authenticated"`

	// hold (load generator): an utterance matching it is a hold phrase, so
	// the relay turn is not over at its last=true.
	hold *regexp.Regexp
}

// Final holds the assertions made after the call ends.
type Final struct {
	Outcome        string   `yaml:"outcome"`
	TransferReason string   `yaml:"transfer_reason"`
	ToolsCalled    []string `yaml:"tools_called"`     // MCP tools/call names, in any order (embedded only)
	ToolsNotCalled []string `yaml:"tools_not_called"` // embedded only
	Audit          []string `yaml:"audit"`            // audit event types that must exist (substring match)
	AuditAbsent    []string `yaml:"audit_absent"`
	MustNotContain []string `yaml:"must_not_contain"` // record data that must not be heard before authentication
	ASErrors       []string `yaml:"as_errors"`        // OAuth error codes the AS must have answered with (embedded only)
	TokenIssued    *bool    `yaml:"token_issued"`     // whether the AS issued an access token during the call (embedded only)
	// OTPSent: whether the OTP outbox holds a code for the caller's otp_phone
	// (default from) once the call is over (embedded only).
	OTPSent *bool `yaml:"otp_sent"`
}

// Duration reads "1.5s"/"300ms" or a number of milliseconds.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if ms, err := time.ParseDuration(s + "ms"); err == nil && !strings.ContainsAny(s, "hmsu") {
		*d = Duration(ms)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q (want e.g. 1500ms or 2s)", s)
	}
	*d = Duration(v)
	return nil
}

// Action names the turn's action for reports.
func (t *Turn) Action() string {
	switch {
	case t.Answer:
		return "answer"
	case t.Say != "":
		return "say"
	case t.Press != "":
		return "press"
	case t.Silence:
		return "silence"
	case t.Hangup:
		return "hangup"
	case t.Interrupt != "":
		return "interrupt"
	case len(t.SendRaw) > 0:
		return "send_raw"
	}
	return ""
}

// Input is a short, PHI-free description of the turn's input for reports:
// keypad digits and spoken answers are shown only as their action and length.
func (t *Turn) Input() string {
	switch {
	case t.Say != "":
		return fmt.Sprintf("say(%d chars)", len([]rune(t.Say)))
	case strings.Contains(t.Press, "{{"):
		return "press(code)"
	case t.Press != "":
		return fmt.Sprintf("press(%d keys)", len(t.Press))
	case len(t.SendRaw) > 0:
		return fmt.Sprintf("send_raw(%d frames)", len(t.SendRaw))
	}
	return t.Action()
}

// AllCalls returns the scenario's calls, expanding the single-call shorthand.
func (s *Scenario) AllCalls() []Call {
	if len(s.Calls) > 0 {
		return s.Calls
	}
	return []Call{{Name: "call", Caller: s.Caller, Turns: s.Turns, Expect: s.Expect}}
}

// Transports lists the transports the scenario runs under.
func (s *Scenario) Transports() []string {
	switch s.Transport {
	case TransportWebhook, TransportRelay:
		return []string{s.Transport}
	}
	return []string{TransportWebhook, TransportRelay}
}

// HasTag reports whether the scenario carries tag.
func (s *Scenario) HasTag(tag string) bool {
	for _, t := range s.Tags {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

// FaultValue returns the value of a fault ("as_slow=2s" → "2s", true).
func (s *Scenario) FaultValue(name string) (string, bool) {
	for _, f := range s.Faults {
		k, v, _ := strings.Cut(f, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// Parse decodes and validates one scenario. Unknown fields are errors so that
// a typo cannot silently disable an assertion.
func Parse(data []byte, file string) (*Scenario, error) {
	var sc Scenario
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	sc.File = file
	if err := sc.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &sc, nil
}

// ParseFile reads and parses one scenario file.
func ParseFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Load reads every *.yaml / *.yml file under dir (or the single file dir
// names), sorted by name. Scenario names must be unique.
func Load(dir string) ([]*Scenario, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		sc, err := ParseFile(dir)
		if err != nil {
			return nil, err
		}
		return []*Scenario{sc}, nil
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*Scenario
	var errs []error
	seen := map[string]string{}
	for _, f := range files {
		sc, err := ParseFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := seen[sc.Name]; ok {
			errs = append(errs, fmt.Errorf("%s: scenario name %q already used by %s", f, sc.Name, prev))
			continue
		}
		seen[sc.Name] = f
		out = append(out, sc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no scenario files (*.yaml)", dir)
	}
	return out, nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

func (s *Scenario) validate() error {
	if s.Name == "" {
		return errors.New("name: required")
	}
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("name %q: use lower-case letters, digits, '.', '_' and '-'", s.Name)
	}
	if s.Shared {
		// On a shared stack the AS traffic of concurrent calls is told apart
		// by time window only, so another caller's token would make this call
		// look authenticated: only the authenticated outcome can be asserted.
		for _, c := range s.AllCalls() {
			if (c.Expect.Outcome != "" && c.Expect.Outcome != OutcomeAuthenticated) || (c.Expect.TokenIssued != nil && !*c.Expect.TokenIssued) {
				return errors.New("shared: a shared stack cannot attribute the absence of a token to one call; expect outcome authenticated or drop shared")
			}
		}
	}
	if s.Clock != "" {
		if _, err := ParseClock(s.Clock); err != nil {
			return err
		}
		if s.Shared {
			return errors.New("clock: a shared stack runs on the suite's clock; drop shared: or clock:")
		}
	}
	if s.HasTag("pending") && strings.TrimSpace(s.Missing) == "" {
		return errors.New("tags: pending needs missing: (what the system lacks)")
	}
	switch s.Transport {
	case "":
		s.Transport = TransportBoth
	case TransportWebhook, TransportRelay, TransportBoth:
	default:
		return fmt.Errorf("transport %q: want webhook, relay or both", s.Transport)
	}
	switch s.Language {
	case "":
		s.Language = "en"
	case "en", "es":
	default:
		return fmt.Errorf("language %q: want en or es", s.Language)
	}
	for _, f := range s.Faults {
		k, v, hasV := strings.Cut(f, "=")
		if !knownFaults[k] {
			return fmt.Errorf("faults: unknown fault %q (known: as_slow, as_down, as_garbage, mcp_down, tamper_tools)", k)
		}
		if hasV {
			if _, err := time.ParseDuration(v); err != nil {
				return fmt.Errorf("faults: %s: bad duration %q", k, v)
			}
		}
	}
	if len(s.Faults) > 0 && s.Shared {
		return errors.New("shared: a scenario with faults needs its own stack")
	}
	if len(s.Calls) > 0 && (len(s.Turns) > 0 || s.Caller != (Caller{}) || !s.Expect.isZero()) {
		return errors.New("use either calls: or caller:/turns:/expect:, not both")
	}
	calls := s.AllCalls()
	for ci := range calls {
		c := &calls[ci]
		where := "turns"
		if len(s.Calls) > 0 {
			where = fmt.Sprintf("calls[%d].turns", ci)
		}
		if c.Repeat < 0 {
			return fmt.Errorf("calls[%d].repeat: must be ≥ 0", ci)
		}
		if len(c.Turns) == 0 {
			return fmt.Errorf("%s: at least one turn required", where)
		}
		if c.Caller.From == "" {
			return fmt.Errorf("%s: caller.from required", strings.TrimSuffix(where, ".turns"))
		}
		for ti := range c.Turns {
			if err := c.Turns[ti].validate(s.Transport); err != nil {
				return fmt.Errorf("%s[%d]: %w", where, ti, err)
			}
		}
		if err := c.Expect.validate(); err != nil {
			return fmt.Errorf("expect: %w", err)
		}
	}
	return nil
}

func (t *Turn) validate(transport string) error {
	n := 0
	for _, set := range []bool{t.Answer, t.Say != "", t.Press != "", t.Silence, t.Hangup, t.Interrupt != "", len(t.SendRaw) > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("exactly one of answer, say, press, silence, hangup, interrupt, send_raw (got %d)", n)
	}
	keys := strings.NewReplacer("{{otp}}", "", "{{wrong_otp}}", "").Replace(t.Press)
	if t.Press != "" && strings.Trim(keys, "0123456789*#") != "" {
		return fmt.Errorf("press %q: only 0-9, * and #", t.Press)
	}
	switch t.Signature {
	case "", "valid", "forged", "missing":
	default:
		return fmt.Errorf("signature %q: want valid, forged or missing", t.Signature)
	}
	if (t.Interrupt != "" || len(t.SendRaw) > 0 || t.ExpectClose != 0) && transport != TransportRelay {
		return errors.New("interrupt, send_raw and expect_close need transport: relay")
	}
	if t.Duplicate && transport != TransportWebhook {
		return errors.New("duplicate needs transport: webhook")
	}
	for _, e := range append(append([]string{}, t.Expect...), t.ExpectNot...) {
		if _, err := compileMatcher(e); err != nil {
			return err
		}
	}
	return nil
}

func (f *Final) validate() error {
	switch f.Outcome {
	case "", OutcomeAuthenticated, OutcomeTransferred, OutcomeHungUp, OutcomeFailed:
	default:
		return fmt.Errorf("outcome %q: want authenticated, transferred, caller_hung_up or failed", f.Outcome)
	}
	return nil
}

func (f *Final) isZero() bool {
	return f.Outcome == "" && f.TransferReason == "" && len(f.ToolsCalled) == 0 && len(f.ToolsNotCalled) == 0 &&
		len(f.Audit) == 0 && len(f.AuditAbsent) == 0 && len(f.MustNotContain) == 0 && len(f.ASErrors) == 0 && f.TokenIssued == nil && f.OTPSent == nil
}
