package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/session"
)

// opsMetrics are the instance's own series beside ivr's: every stage a
// clinic's operator watches (deploy/alerts.yaml and the dashboard name
// them; TestDeployNamesOnlyExistingMetrics keeps the two in step). Labels
// never carry an identifier, a number or a value a caller gave.
type opsMetrics struct {
	storeSeconds  *prometheus.HistogramVec // op
	storeErrors   *prometheus.CounterVec   // op, err_kind
	durableRetry  *prometheus.CounterVec   // op
	audit         *prometheus.CounterVec   // type, outcome
	tokens        *prometheus.CounterVec   // grant
	lockouts      *prometheus.CounterVec   // kind
	revocations   *prometheus.CounterVec   // result
	otpSends      *prometheus.CounterVec   // channel, result
	asRequests    *prometheus.CounterVec   // endpoint, code
	asSeconds     *prometheus.HistogramVec // endpoint
	asChallenge   *prometheus.CounterVec   // outcome
	mcpRequests   *prometheus.CounterVec   // code
	mcpSeconds    prometheus.Histogram
	toolCalls     *prometheus.CounterVec // tool, outcome
	toolSeconds   *prometheus.HistogramVec
	callsNow      prometheus.Gauge
	callsLimit    prometheus.Gauge
	admission     *prometheus.CounterVec // reason
	ready         prometheus.Gauge
	readyProblems *prometheus.GaugeVec   // check
	errors        *prometheus.CounterVec // component, err_kind
	keyReloads    *prometheus.CounterVec // result
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newOpsMetrics(reg prometheus.Registerer) *opsMetrics {
	m := &opsMetrics{
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "voiceauth_store_op_seconds",
			Help: "Store operation latency, by operation.", Buckets: latencyBuckets}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_store_errors_total",
			Help: "Store operations that failed (not-found and conflict answers excluded), by operation and error kind."}, []string{"op", "err_kind"}),
		durableRetry: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_store_durable_retries_total",
			Help: "Retries of writes that must not be lost (audit records, revocations)."}, []string{"op"}),
		audit: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_audit_records_total",
			Help: "Audit records written, by type and outcome."}, []string{"type", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_tokens_issued_total",
			Help: "Access tokens issued by the authorization server, by grant."}, []string{"grant"}),
		lockouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_lockouts_total",
			Help: "Identity locks and number blocks imposed (kind identity|number) and cleared by an operator (kind cleared)."}, []string{"kind"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_revocations_total",
			Help: "End-of-call token revocations, by result (revoked, retried, pending)."}, []string{"result"}),
		otpSends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_otp_sends_total",
			Help: "One-time codes sent, by channel and result (sent|failed)."}, []string{"channel", "result"}),
		asRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_as_requests_total",
			Help: "Authorization server requests, by endpoint and HTTP status."}, []string{"endpoint", "code"}),
		asSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "voiceauth_as_request_seconds",
			Help: "Authorization server request latency, by endpoint.", Buckets: latencyBuckets}, []string{"endpoint"}),
		asChallenge: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_as_challenge_outcomes_total",
			Help: "Authorization challenge answers, by outcome (authorization_code or the OAuth error)."}, []string{"outcome"}),
		mcpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_mcp_server_requests_total",
			Help: "Requests to the demo MCP server, by HTTP status."}, []string{"code"}),
		mcpSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "voiceauth_mcp_server_request_seconds",
			Help: "Demo MCP server request latency.", Buckets: latencyBuckets}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_mcp_tool_calls_total",
			Help: "MCP tool calls made for callers, by tool and outcome."}, []string{"tool", "outcome"}),
		toolSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "voiceauth_mcp_tool_call_seconds",
			Help: "MCP tool call latency (session setup included when the call opens it), by tool.", Buckets: latencyBuckets}, []string{"tool"}),
		callsNow: prometheus.NewGauge(prometheus.GaugeOpts{Name: "voiceauth_calls_in_progress",
			Help: "Calls admitted on this instance and not yet ended."}),
		callsLimit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "voiceauth_calls_limit",
			Help: "Configured maximum of calls in progress on this instance (-1 = no cap)."}),
		admission: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_admission_rejected_total",
			Help: "Calls turned away before any question (told all lines are busy and transferred), by reason."}, []string{"reason"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "voiceauth_ready",
			Help: "1 when the last readiness check passed, 0 when it failed."}),
		readyProblems: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "voiceauth_ready_check_failed",
			Help: "1 for each readiness check that failed at the last check."}, []string{"check"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_errors_total",
			Help: "Errors logged at ERROR level, by component and stable error kind."}, []string{"component", "err_kind"}),
		keyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_secrets_reloads_total",
			Help: "Reloads of the secrets file while serving, by result."}, []string{"result"}),
	}
	reg.MustRegister(m.storeSeconds, m.storeErrors, m.durableRetry, m.audit, m.tokens, m.lockouts, m.revocations,
		m.otpSends, m.asRequests, m.asSeconds, m.asChallenge, m.mcpRequests, m.mcpSeconds, m.toolCalls, m.toolSeconds,
		m.callsNow, m.callsLimit, m.admission, m.ready, m.readyProblems, m.errors, m.keyReloads)
	return m
}

// auditObserved derives the AS's decision series from the audit records it
// writes: every decision has exactly one record, so the metrics cannot
// disagree with the trail.
func (m *opsMetrics) auditObserved(e *session.AuditEvent) {
	m.audit.WithLabelValues(e.Type, e.Outcome).Inc()
	switch e.Type {
	case "token.issued":
		m.tokens.WithLabelValues(firstNonEmpty(e.Detail["grant"], "unknown")).Inc()
	case "token.exchanged":
		m.tokens.WithLabelValues("token_exchange").Inc()
	case "kba.locked":
		m.lockouts.WithLabelValues("identity").Inc()
	case "number.blocked":
		m.lockouts.WithLabelValues("number").Inc()
	case "lock.cleared":
		m.lockouts.WithLabelValues("cleared").Inc()
	}
}

// instrument wraps h so it is timed and counted per endpoint, and also
// serves this process's /metrics (the AS and MCP listeners have their own
// ports; a scraper pointed at either sees the whole process).
func instrument(reg *prometheus.Registry, h http.Handler, observe func(r *http.Request, code int, d time.Duration, body []byte)) http.Handler {
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/metrics" {
			metrics.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK, keep: r.URL.Path == "/challenge"}
		h.ServeHTTP(rec, r)
		observe(r, rec.code, time.Since(start), rec.body.Bytes())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
	keep bool
	body bytes.Buffer
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.keep && s.body.Len() < 4096 {
		s.body.Write(p[:min(len(p), 4096-s.body.Len())])
	}
	return s.ResponseWriter.Write(p)
}

// Flush keeps streaming responses (MCP SSE) streaming.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

var asEndpoints = map[string]bool{"/challenge": true, "/token": true, "/introspect": true, "/revoke": true, "/jwks": true}

func (m *opsMetrics) observeAS(r *http.Request, code int, d time.Duration, body []byte) {
	ep := r.URL.Path
	if strings.HasPrefix(ep, "/.well-known/") {
		ep = "metadata"
	} else if !asEndpoints[ep] {
		ep = "other"
	}
	m.asRequests.WithLabelValues(ep, strconv.Itoa(code)).Inc()
	m.asSeconds.WithLabelValues(ep).Observe(d.Seconds())
	if ep != "/challenge" {
		return
	}
	// The challenge endpoint's answer: a code, or an OAuth error whose name
	// is a fixed vocabulary (never caller input).
	var reply struct {
		Code  string `json:"authorization_code"`
		Error string `json:"error"`
	}
	outcome := "unreadable"
	if json.Unmarshal(body, &reply) == nil {
		switch {
		case reply.Code != "":
			outcome = "authorization_code"
		case reply.Error != "" && len(reply.Error) <= 48 && !strings.ContainsAny(reply.Error, " \"<>"):
			outcome = reply.Error
		}
	}
	m.asChallenge.WithLabelValues(outcome).Inc()
}

func (m *opsMetrics) observeMCP(_ *http.Request, code int, d time.Duration, _ []byte) {
	m.mcpRequests.WithLabelValues(strconv.Itoa(code)).Inc()
	m.mcpSeconds.Observe(d.Seconds())
}

// countingOTP counts sends of an OTP channel by result.
type countingOTP struct {
	next    authserver.OTPChannel
	channel string
	m       *opsMetrics
}

func (c countingOTP) Send(ctx context.Context, to string) (string, error) {
	ref, err := c.next.Send(ctx, to)
	result := "sent"
	if err != nil {
		result = "failed"
	}
	c.m.otpSends.WithLabelValues(c.channel, result).Inc()
	return ref, err
}

func (c countingOTP) Check(ctx context.Context, ref, code string) (bool, error) {
	return c.next.Check(ctx, ref, code)
}

// ErrKind names an error for logs and metric labels: a stable, short
// vocabulary (the sentinel it wraps, or the class of system failure) that
// an operator can alert on, unlike a Go type name.
func ErrKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, session.ErrNotFound):
		return "not_found"
	case errors.Is(err, session.ErrConflict):
		return "conflict"
	case errors.Is(err, session.ErrExists):
		return "exists"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	msg := strings.ToLower(err.Error())
	for _, k := range []struct{ needle, kind string }{
		{"disk is full", "disk_full"}, {"no space left", "disk_full"}, {"database or disk is full", "disk_full"},
		{"read-only", "read_only"}, {"readonly", "read_only"}, {"permission denied", "permission_denied"},
		{"disk i/o error", "io_error"}, {"input/output error", "io_error"},
		{"database is locked", "busy"}, {"store is closed", "closed"},
		{"connection refused", "unreachable"}, {"no such host", "unreachable"},
		{"unknown key version", "sealing_key_missing"}, {"message authentication failed", "unseal_failed"},
	} {
		if strings.Contains(msg, k.needle) {
			return k.kind
		}
	}
	return "internal"
}

// errorCounter counts ERROR records into voiceauth_errors_total by the
// logger's component and the record's err_kind (else "unclassified"), so an
// alert can fire on errors without anyone reading logs.
type errorCounter struct {
	next      slog.Handler
	component string
	c         *prometheus.CounterVec
}

func (h errorCounter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h errorCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		kind := "unclassified"
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err_kind" {
				kind = a.Value.String()
				return false
			}
			return true
		})
		h.c.WithLabelValues(firstNonEmpty(h.component, "main"), kind).Inc()
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h errorCounter) WithAttrs(as []slog.Attr) slog.Handler {
	for _, a := range as {
		if a.Key == "component" {
			h.component = a.Value.String()
		}
	}
	h.next = h.next.WithAttrs(as)
	return h
}

func (h errorCounter) WithGroup(name string) slog.Handler {
	h.next = h.next.WithGroup(name)
	return h
}

// recordingRegisterer remembers what was registered, so the instance can
// list every family it exports, including vectors with no sample yet.
type recordingRegisterer struct {
	prometheus.Registerer
	mu sync.Mutex
	cs []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.cs = append(r.cs, c)
	r.mu.Unlock()
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recordingRegisterer) names() []string {
	r.mu.Lock()
	cs := append([]prometheus.Collector(nil), r.cs...)
	r.mu.Unlock()
	seen := map[string]bool{}
	for _, c := range cs {
		ch := make(chan *prometheus.Desc, 256)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
				seen[m[1]] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
