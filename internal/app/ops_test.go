package app_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/session"
)

// metricValue sums the samples of name whose label text contains match.
func metricValue(t *testing.T, st *app.Stack, name, match string) float64 {
	t.Helper()
	text, err := st.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	v := 0.0
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if !strings.Contains(m[1], match) {
			continue
		}
		f, _ := strconv.ParseFloat(m[2], 64)
		v += f
	}
	return v
}

func getReadyz(t *testing.T, st *app.Stack) (int, string) {
	t.Helper()
	resp, err := http.Get(st.AdminURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdmissionBusyBeforeKBA: above the cap a new call hears that all lines
// are busy and is transferred before any question; the admitted call is
// not disturbed; a line freed by a hang-up admits the next call; an
// unsigned request never takes (or is told about) a line.
func TestAdmissionBusyBeforeKBA(t *testing.T) {
	st, _ := startStack(t, app.Config{MaxCalls: 1})
	a := &phone{t: t, st: st, callSid: "CA" + strings.Repeat("ad01", 8), from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := a.listen(a.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}}))
	if !asksName.MatchString(tr.said) {
		t.Fatalf("first call: greeting does not ask for a name: %q", tr.said)
	}

	b := &phone{t: t, st: st, callSid: "CA" + strings.Repeat("ad02", 8), from: "+15555550102", verstat: "TN-Validation-Passed-A"}
	busy := b.listen(b.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}}))
	if !busy.dial || !strings.Contains(busy.said, "lines are busy") || asksName.MatchString(busy.said) {
		t.Fatalf("second call: want 'all lines are busy' and a transfer before any question, got %+v", busy)
	}
	if got := metricValue(t, st, "voiceauth_admission_rejected_total", ""); got != 1 {
		t.Errorf("voiceauth_admission_rejected_total = %v, want 1", got)
	}
	if _, err := st.Store().GetCall(context.Background(), b.callSid); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("a rejected call left state in the store (err %v)", err)
	}

	// The admitted call goes on, and a retried /twilio/voice for it is not refused.
	if again := a.listen(a.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}})); again.dial {
		t.Fatalf("a retried /twilio/voice of the admitted call was turned away: %+v", again)
	}
	if tr = a.say(tr, "Maria Garcia"); !asksDOB.MatchString(tr.said) {
		t.Fatalf("admitted call: expected the date of birth question, heard %q", tr.said)
	}

	// An unsigned call at capacity is refused by the signature check, not told we are busy.
	form := url.Values{"CallSid": {"CA" + strings.Repeat("ad03", 8)}, "From": {"+15555550103"}}
	resp, err := http.Post(st.VoiceURL+"/twilio/voice", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned call at capacity: status %d, want 403", resp.StatusCode)
	}

	// Hang-up frees the line.
	if status, body := a.send("/twilio/status", url.Values{"CallStatus": {"completed"}}); status/100 != 2 {
		t.Fatalf("status callback: %d %s", status, body)
	}
	c := &phone{t: t, st: st, callSid: "CA" + strings.Repeat("ad04", 8), from: "+15555550104", verstat: "TN-Validation-Passed-A"}
	if tr := c.listen(c.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}})); !asksName.MatchString(tr.said) {
		t.Fatalf("after a hang-up the next call was not admitted: %+v", tr)
	}
}

// fullDisk is the real store with its writes failing, as SQLite fails them
// on a full disk, while full is set.
type fullDisk struct {
	session.Store
	full *atomic.Bool
}

var errFull = errors.New("session: database or disk is full")

func (f fullDisk) fail() error {
	if f.full.Load() {
		return errFull
	}
	return nil
}

func (f fullDisk) CreateCall(ctx context.Context, c *session.Call) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.CreateCall(ctx, c)
}

func (f fullDisk) CreateCallClaimed(ctx context.Context, claim *session.Record, c *session.Call) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.CreateCallClaimed(ctx, claim, c)
}

func (f fullDisk) UpdateCall(ctx context.Context, c *session.Call) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.UpdateCall(ctx, c)
}

func (f fullDisk) PutRecord(ctx context.Context, r *session.Record) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.PutRecord(ctx, r)
}

func (f fullDisk) AppendAudit(ctx context.Context, e *session.AuditEvent) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.AppendAudit(ctx, e)
}

func (f fullDisk) PutTokens(ctx context.Context, id string, ts session.TokenSet) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.PutTokens(ctx, id, ts)
}

// TestFullDiskMidRun: the disk fills while serving. /readyz fails naming
// the store, the error metric moves, a caller hears a sentence and is
// transferred, the log names the error kind (not a Go type); once space is
// back, everything recovers without a restart.
func TestFullDiskMidRun(t *testing.T) {
	var full atomic.Bool
	st, logs := startStack(t, app.Config{WrapStore: func(s session.Store) session.Store { return fullDisk{s, &full} }})
	if code, body := getReadyz(t, st); code != http.StatusOK {
		t.Fatalf("readyz before the disk filled: %d %s", code, body)
	}

	full.Store(true)
	code, body := getReadyz(t, st)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "store cannot write (disk_full)") {
		t.Fatalf("readyz with a full disk: %d %q, want 503 naming the store", code, body)
	}
	if got := metricValue(t, st, "voiceauth_store_errors_total", `err_kind="disk_full"`); got == 0 {
		t.Error("voiceauth_store_errors_total{err_kind=disk_full} did not move")
	}
	if got := metricValue(t, st, "voiceauth_ready", ""); got != 0 {
		t.Errorf("voiceauth_ready = %v while not ready", got)
	}
	p := &phone{t: t, st: st, callSid: "CA" + strings.Repeat("df01", 8), from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := p.listen(p.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}}))
	if !tr.dial || !strings.Contains(tr.said, "something went wrong") || !strings.Contains(tr.said, "connect you with someone") {
		t.Fatalf("caller during the full disk: want an apology and a transfer, got %+v", tr)
	}
	if got := metricValue(t, st, "voiceauth_ivr_calls_total", `reason="store_error"`); got != 1 {
		t.Errorf("voiceauth_ivr_calls_total{reason=store_error} = %v, want 1", got)
	}
	if got := metricValue(t, st, "voiceauth_ivr_transfers_total", `reason="store_error"`); got != 1 {
		t.Errorf("voiceauth_ivr_transfers_total{reason=store_error} = %v, want 1", got)
	}
	if l := logs.String(); !strings.Contains(l, `"err_kind":"disk_full"`) || strings.Contains(l, "fmt.wrapError") {
		t.Errorf("the store failure is not logged with err_kind disk_full:\n%s", l)
	}

	full.Store(false)
	if code, body := getReadyz(t, st); code != http.StatusOK {
		t.Fatalf("readyz after space came back: %d %s", code, body)
	}
	q := &phone{t: t, st: st, callSid: "CA" + strings.Repeat("df02", 8), from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	if tr := q.listen(q.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}})); !asksName.MatchString(tr.said) {
		t.Fatalf("after recovery the caller was not greeted: %+v", tr)
	}
}

// TestRevocationNeverDropped: the AS cannot revoke when the call ends; the
// tokens stay (sealed) with a pending mark, and the retry revokes them once
// the AS is back — the revocation is late, never lost.
func TestRevocationNeverDropped(t *testing.T) {
	var down atomic.Bool
	st, _ := startStack(t, app.Config{WrapAS: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() && r.URL.Path == "/revoke" {
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	p := &phone{t: t, st: st, callSid: "CA" + strings.Repeat("rv01", 8), from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := p.listen(p.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}}))
	tr = p.say(tr, "Maria Garcia")
	tr = p.say(tr, "March third nineteen eighty")
	for i := 0; i < 2 && !asksSSN.MatchString(tr.said); i++ {
		tr = p.say(tr, "yes")
	}
	if tr = p.press(tr, "4567"); tr.action == "" {
		t.Fatalf("did not authenticate: %+v", tr)
	}
	down.Store(true)
	if status, _ := p.send("/twilio/status", url.Values{"CallStatus": {"completed"}}); status/100 != 2 {
		t.Fatalf("status callback: %d", status)
	}
	ctx := context.Background()
	if _, err := st.Store().GetTokens(ctx, p.callSid); err != nil {
		t.Fatalf("tokens were dropped although revocation failed: %v", err)
	}
	if got := metricValue(t, st, "voiceauth_revocations_total", `result="pending"`); got != 1 {
		t.Errorf("voiceauth_revocations_total{result=pending} = %v, want 1", got)
	}
	if left, err := st.RetryRevocations(ctx); err != nil || left != 1 {
		t.Fatalf("retry while the AS still refuses: left %d, err %v; want 1 left", left, err)
	}
	down.Store(false)
	if left, err := st.RetryRevocations(ctx); err != nil || left != 0 {
		t.Fatalf("retry with the AS back: left %d, err %v", left, err)
	}
	if _, err := st.Store().GetTokens(ctx, p.callSid); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("tokens still held after the revocation succeeded (err %v)", err)
	}
	evs, err := st.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, e := range evs {
		if e.Type == "token.revoked" && e.Detail["type"] == "access_token" {
			revoked++
		}
	}
	if revoked != 1 {
		t.Errorf("%d access-token revocations audited, want 1", revoked)
	}
}

// TestStartupErrorsNamePath: a voice listener on every interface without
// a public URL, and a data dir that cannot be written, stop the start with
// an error that says what to do and names the path.
func TestStartupErrorsNamePath(t *testing.T) {
	_, err := app.Start(context.Background(), app.Config{DataDir: t.TempDir(), Addr: ":0", ASAddr: "127.0.0.1:0",
		MCPAddr: "127.0.0.1:0", LogWriter: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "VOICEAUTH_PUBLIC_URL") {
		t.Errorf("bound to all interfaces without a public URL: err %v", err)
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Root writes through permissions; /proc/self is a directory nobody can create files in.
		dir = "/proc/self"
	}
	_, err = app.Start(context.Background(), app.Config{DataDir: dir, Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0",
		MCPAddr: "127.0.0.1:0", LogWriter: io.Discard})
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not writable") {
		t.Errorf("read-only data dir: err %v, want one naming %s as not writable", err, dir)
	}
}

// TestDeployNamesOnlyExistingMetrics loads deploy/alerts.yaml and the
// Grafana dashboard and checks that every metric they name is one this
// instance exports, and that the alerts the runbook promises exist.
func TestDeployNamesOnlyExistingMetrics(t *testing.T) {
	st, _ := startStack(t, app.Config{})
	have := map[string]bool{}
	for _, n := range st.MetricNames() {
		have[n] = true
	}
	var exprs []string

	raw, err := os.ReadFile("../../deploy/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("alerts.yaml: rule %+v lacks alert or expr", r)
			}
			alerts[r.Alert] = true
			exprs = append(exprs, r.Expr)
		}
	}
	for _, want := range []string{"VoiceauthNotReady", "VoiceauthStoreErrors", "VoiceauthLockoutSpike",
		"VoiceauthOneNumberManyIdentities", "VoiceauthOTPSendFailures", "VoiceauthSMSPumping"} {
		if !alerts[want] {
			t.Errorf("alerts.yaml has no %s rule", want)
		}
	}

	raw, err = os.ReadFile("../../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if len(dash.Panels) < 10 {
		t.Errorf("dashboard has %d panels", len(dash.Panels))
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}

	nameRE := regexp.MustCompile(`\b(voiceauth_[a-z0-9_]+|process_[a-z0-9_]+|go_[a-z0-9_]+)\b`)
	named := 0
	for _, e := range exprs {
		for _, n := range nameRE.FindAllString(e, -1) {
			named++
			base := n
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suf); ok && have[b] {
					base = b
				}
			}
			if !have[base] {
				t.Errorf("deploy/ names %s, which this instance does not export", n)
			}
		}
	}
	if named < 20 {
		t.Errorf("only %d metric references found; the extraction is broken", named)
	}
	// Every stage the issue lists has a series.
	for _, want := range []string{"voiceauth_ivr_calls_total", "voiceauth_ivr_turn_seconds", "voiceauth_as_challenge_outcomes_total",
		"voiceauth_as_request_seconds", "voiceauth_tokens_issued_total", "voiceauth_otp_sends_total", "voiceauth_lockouts_total",
		"voiceauth_mcp_tool_calls_total", "voiceauth_store_op_seconds", "voiceauth_store_errors_total",
		"voiceauth_ivr_relay_connections", "voiceauth_admission_rejected_total", "voiceauth_ready"} {
		if !have[want] {
			t.Errorf("no metric %s", want)
		}
	}
}

// TestMetricsOnEveryListener: the AS and MCP ports serve /metrics too.
func TestMetricsOnEveryListener(t *testing.T) {
	st, _ := startStack(t, app.Config{})
	for _, base := range []string{st.ASURL, strings.TrimSuffix(st.MCPURL, "/mcp")} {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "voiceauth_ready") {
			t.Errorf("%s/metrics: %d, voiceauth_ready missing", base, resp.StatusCode)
		}
	}
	_ = time.Second
}

// TestUnwritableOutboxNeverClaimsTexted: when the code cannot be sent (the
// outbox is not writable), the caller is not asked for a code that never
// left: they are transferred, the send failure is counted and audited.
func TestUnwritableOutboxNeverClaimsTexted(t *testing.T) {
	dir := t.TempDir()
	// A directory where the outbox file should be: every append fails, for root too.
	if err := os.Mkdir(app.OutboxPath(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	st, _ := startStack(t, app.Config{DataDir: dir})
	p := &phone{t: t, st: st, callSid: "CA" + strings.Repeat("ob01", 8), from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := authenticate(t, p, "Maria Garcia", "March third nineteen eighty", "4567")
	if !strings.Contains(tr.said, "verified") {
		t.Fatalf("KBA did not verify: %q", tr.said)
	}
	tr = p.say(tr, "medications")
	if asksCode.MatchString(tr.said) || strings.Contains(strings.ToLower(strings.Join(p.heard, " ")), "texted") {
		t.Fatalf("the caller was asked for a code that was never sent: %q", tr.said)
	}
	if !tr.dial {
		t.Fatalf("want a transfer when no code can be sent, got %+v", tr)
	}
	if got := metricValue(t, st, "voiceauth_otp_sends_total", `result="failed"`); got != 1 {
		t.Errorf("voiceauth_otp_sends_total{result=failed} = %v, want 1", got)
	}
	evs, err := st.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		found = found || e.Type == "otp.send_failed"
	}
	if !found {
		t.Error("no otp.send_failed audit record")
	}
}

// TestRotateWhileServing: both rotations done by an operator (or another
// instance) while a call is in progress are picked up by the running
// instance without a restart: the call carries on, the re-sealed data
// opens, new tokens are signed with the new key and accepted, readyz stays
// ready.
func TestRotateWhileServing(t *testing.T) {
	dir := t.TempDir()
	st, _ := startStack(t, app.Config{DataDir: dir})
	secretsFile := filepath.Join(dir, "secrets.json")
	ctx := context.Background()
	p := &phone{t: t, st: st, callSid: "CA" + strings.Repeat("rk01", 8), from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := p.listen(p.post("/twilio/voice", url.Values{"CallStatus": {"ringing"}}))
	tr = p.say(tr, "Maria Garcia")

	// Sealing: add (known, not used), reload, make current, reload, re-seal.
	sec, _, err := app.LoadSecrets(secretsFile, false)
	if err != nil {
		t.Fatal(err)
	}
	v := sec.AddSealingKey()
	if err := sec.Save(secretsFile); err != nil {
		t.Fatal(err)
	}
	if err := st.ReloadSecrets(); err != nil {
		t.Fatal(err)
	}
	sec.SealingCurrent = v
	// Signing: publish a new key and promote it in the same steps.
	kid, err := sec.AddSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := sec.PromoteSigningKey(kid); err != nil {
		t.Fatal(err)
	}
	// Audit: a new chain key, current at once; old records keep verifying.
	auditV := sec.RotateAuditKey()
	if err := sec.Save(secretsFile); err != nil {
		t.Fatal(err)
	}
	if err := st.ReloadSecrets(); err != nil {
		t.Fatal(err)
	}
	other, _, err := app.OpenStore(ctx, app.Config{DataDir: dir}) // the operator command's own store handle
	if err != nil {
		t.Fatal(err)
	}
	n, err := other.(session.Rewrapper).Rewrap(ctx)
	other.Close()
	if err != nil || n == 0 {
		t.Fatalf("rewrap: %d values, %v", n, err)
	}

	tr = p.say(tr, "March third nineteen eighty")
	for i := 0; i < 2 && !asksSSN.MatchString(tr.said); i++ {
		tr = p.say(tr, "yes")
	}
	if !asksSSN.MatchString(tr.said) {
		t.Fatalf("after the rotation the call lost its place: %q", tr.said)
	}
	tr = p.press(tr, "4567")
	if tr.action == "" || !strings.Contains(tr.said, "verified") {
		t.Fatalf("after the rotation the caller was not verified: %+v", tr)
	}
	if tr = p.say(tr, "appointments"); !strings.Contains(tr.said, "Dr. ") {
		t.Fatalf("tool call after the rotation failed: %q", tr.said)
	}
	tokens, err := st.Store().GetTokens(ctx, p.callSid)
	if err != nil {
		t.Fatal(err)
	}
	if got := jwtKID(t, tokens.AccessToken); got != kid {
		t.Errorf("new token signed by %q, want the rotated key %q", got, kid)
	}
	if probs := st.Ready(ctx); len(probs) != 0 {
		t.Errorf("not ready after the rotation: %v", probs)
	}
	if got := metricValue(t, st, "voiceauth_secrets_reloads_total", `result="ok"`); got != 2 {
		t.Errorf("voiceauth_secrets_reloads_total{result=ok} = %v, want 2", got)
	}
	evs, err := st.Audit(ctx)
	if err != nil || len(evs) == 0 {
		t.Fatalf("audit: %d records, %v", len(evs), err)
	}
	if last := evs[len(evs)-1]; len(last.Hash) < 4 || binary.BigEndian.Uint32(last.Hash) != auditV {
		t.Errorf("the newest audit record is not chained under the rotated key %d", auditV)
	}
	if rep, err := st.Store().VerifyAudit(ctx); err != nil || rep.Problem != "" {
		t.Errorf("audit chain after the rotation: %+v %v", rep, err)
	}
}

func jwtKID(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64URL(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	json.Unmarshal(raw, &h)
	return h.KID
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// TestReadyzNamesEachFailure: an unreachable MCP server or AS, and a stored
// value sealed under a key this instance has not loaded, each make /readyz
// fail and say which; each recovers.
func TestReadyzNamesEachFailure(t *testing.T) {
	var mcpDown, asDown atomic.Bool
	down := func(flag *atomic.Bool) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if flag.Load() {
					http.Error(w, "down", http.StatusBadGateway)
					return
				}
				h.ServeHTTP(w, r)
			})
		}
	}
	dir := t.TempDir()
	st, _ := startStack(t, app.Config{DataDir: dir, WrapMCP: down(&mcpDown), WrapAS: down(&asDown)})
	ctx := context.Background()
	if p := st.Ready(ctx); len(p) != 0 {
		t.Fatalf("not ready at start: %v", p)
	}
	mcpDown.Store(true)
	if code, body := getReadyz(t, st); code != http.StatusServiceUnavailable || !strings.Contains(body, "MCP server") {
		t.Errorf("MCP server down: %d %q", code, body)
	}
	mcpDown.Store(false)
	asDown.Store(true)
	if code, body := getReadyz(t, st); code != http.StatusServiceUnavailable || !strings.Contains(body, "authorization server") {
		t.Errorf("AS down: %d %q", code, body)
	}
	asDown.Store(false)
	if p := st.Ready(ctx); len(p) != 0 {
		t.Fatalf("not ready after the servers came back: %v", p)
	}

	// Another instance rotated the sealing key and wrote a call under it;
	// this one has not reloaded the file yet.
	secretsFile := filepath.Join(dir, "secrets.json")
	sec, _, err := app.LoadSecrets(secretsFile, false)
	if err != nil {
		t.Fatal(err)
	}
	sec.SealingCurrent = sec.AddSealingKey()
	if err := sec.Save(secretsFile); err != nil {
		t.Fatal(err)
	}
	other, _, err := app.OpenStore(ctx, app.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = other.CreateCall(ctx, &session.Call{ID: "CAsealed", State: []byte(`{}`), CreatedAt: now, UpdatedAt: now})
	other.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Store().GetCall(ctx, "CAsealed"); err == nil {
		t.Fatal("the running instance opened a value sealed under a key it never loaded")
	}
	if code, body := getReadyz(t, st); code != http.StatusServiceUnavailable || !strings.Contains(body, "sealing key") {
		t.Errorf("missing sealing key: %d %q", code, body)
	}
	if got := metricValue(t, st, "voiceauth_ready_check_failed", `check="sealing_key"`); got != 1 {
		t.Errorf("voiceauth_ready_check_failed{check=sealing_key} = %v", got)
	}
	if err := st.ReloadSecrets(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Store().GetCall(ctx, "CAsealed"); err != nil {
		t.Errorf("after the reload: %v", err)
	}
	if code, body := getReadyz(t, st); code != http.StatusOK {
		t.Errorf("after the reload: %d %q", code, body)
	}
}
