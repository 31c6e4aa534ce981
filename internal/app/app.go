// Package app assembles the embedded voiceauth stack: the voice service, the
// reference authorization server and the demo MCP server, all speaking real
// HTTP on loopback over one store. `voiceauth serve` and the scenario runner
// both start it through Start; nothing here has behaviour of its own beyond
// wiring, readiness and housekeeping.
package app

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/broker"
	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/healthmcp"
	"github.com/voiceauth/voiceauth/ivr"
	"github.com/voiceauth/voiceauth/mcpclient"
	"github.com/voiceauth/voiceauth/session"
)

// Config is the resolved configuration of one instance. Zero values mean the
// embedded defaults of ARCHITECTURE.md.
type Config struct {
	DataDir     string // default ./data
	Addr        string // voice service, default 127.0.0.1:8080
	ASAddr      string // reference AS, default 127.0.0.1:8081
	MCPAddr     string // demo MCP server, default 127.0.0.1:8082
	AdminAddr   string // optional separate listener for /metrics and /readyz
	PublicURL   string // what Twilio signs against; default http://<Addr>
	Frontend    string // gather | relay
	Store       string // SQLite path or postgres://…; default <DataDir>/voiceauth.db
	SecretsFile string // default <DataDir>/secrets.json

	TwilioAuthToken string // overrides the secrets file; may list two, comma-separated
	ClientID        string // voice client at the AS; default voiceauth-ivr
	ClientSecret    string // overrides the secrets file
	TransferNumber  string // default +15555550100
	Production      bool   // refuse generated secrets and plain-http public URLs

	MCPURL   string // external MCP server: neither embedded server starts
	ASIssuer string // pin: the PRM must name exactly this issuer

	TrustedIssuersFile string // YAML list of RFC 8693 subject-token issuers
	GeneratedPatients  int    // synthetic patients to seed besides the demo ones

	// HostClients may register subject tokens (hosts.go).
	HostClients []string
	// MaxCalls caps the calls in progress on this instance; above it new
	// calls hear "all lines are busy" and are transferred before any
	// question. 0 means the default, 400; -1 means no cap.
	MaxCalls int

	HoldAfter, GiveUpAfter time.Duration
	WrapAS, WrapMCP        func(http.Handler) http.Handler   // fault injection for tests and scenarios
	WrapStore              func(session.Store) session.Store // fault injection (full disk) for tests

	OTP OTPConfig // how one-time codes are texted; zero = the dev outbox

	LogLevel  slog.Level
	LogWriter io.Writer // default os.Stderr
	Now       func() time.Time
}

// Stack is a running instance.
type Stack struct {
	VoiceURL, ASURL, MCPURL, PublicURL string
	AdminURL                           string
	TwilioAuthToken                    string
	DataDir                            string
	HostClientID, HostClientSecret     string
	ClientID, ClientSecret             string
	SecretsCreated                     bool

	cfg          Config
	secrets      *Secrets
	store        session.Store
	registry     *prometheus.Registry
	reg          *recordingRegisterer
	metrics      *opsMetrics
	obsStore     *observedStore
	admit        *admission
	sealer       *session.Sealer
	reloadMu     sync.Mutex
	readySeq     atomic.Int64
	readyMu      sync.Mutex
	readyApplied int64
	logger       *slog.Logger
	voice        *ivr.Server
	as           *authserver.Server
	backend      *broker.Broker
	servers      []*http.Server
	stop         context.CancelFunc
	wg           sync.WaitGroup
	closeMu      sync.Once
}

// DefaultMaxCalls is the admission cap of one instance: what one 2-core
// instance carries with every turn answered in time (docs/PERFORMANCE.md).
const DefaultMaxCalls = 400

const (
	defaultClientID = "voiceauth-ivr"
	hostClientID    = "voiceauth-host-demo"
	partnerIssuer   = "urn:voiceauth:dev-partner"
	allScopes       = "appointments:read medications:read prescriptions:refill"
)

func (c *Config) defaults() {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.ASAddr == "" {
		c.ASAddr = "127.0.0.1:8081"
	}
	if c.MCPAddr == "" {
		c.MCPAddr = "127.0.0.1:8082"
	}
	if c.Frontend == "" {
		c.Frontend = "gather"
	}
	if c.SecretsFile == "" {
		c.SecretsFile = filepath.Join(c.DataDir, "secrets.json")
	}
	if c.Store == "" {
		c.Store = filepath.Join(c.DataDir, "voiceauth.db")
	}
	if c.ClientID == "" {
		c.ClientID = defaultClientID
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = DefaultMaxCalls
	}
	if c.TransferNumber == "" {
		c.TransferNumber = "+15555550100"
	}
	if c.LogWriter == nil {
		c.LogWriter = os.Stderr
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Start opens the store, starts the listeners and returns once every
// server accepts connections.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	cfg.defaults()
	if err := CheckIssuerPin(cfg.MCPURL, cfg.ASIssuer); err != nil {
		return nil, err
	}
	if cfg.Production {
		if err := checkProduction(cfg); err != nil {
			return nil, err
		}
	}
	if err := checkListen(cfg); err != nil {
		return nil, err
	}
	if err := checkDataDir(cfg); err != nil {
		return nil, err
	}
	// The outbox holds one-time codes; the authserver creates it 0600, and
	// one left by an older version is tightened here.
	if err := restrictFile(OutboxPath(cfg.DataDir)); err != nil {
		return nil, err
	}
	logger := NewLogger(cfg.LogWriter, cfg.LogLevel)
	secrets, created, err := LoadSecrets(cfg.SecretsFile, !cfg.Production)
	if err != nil {
		return nil, err
	}
	s := &Stack{cfg: cfg, secrets: secrets, logger: logger, DataDir: cfg.DataDir, SecretsCreated: created,
		registry: prometheus.NewRegistry(), HostClientID: hostClientID, HostClientSecret: secrets.HostClientSecret,
		ClientID: cfg.ClientID, ClientSecret: firstNonEmpty(cfg.ClientSecret, secrets.ClientSecret)}
	s.TwilioAuthToken = firstNonEmpty(cfg.TwilioAuthToken, secrets.TwilioAuthToken)
	s.reg = &recordingRegisterer{Registerer: s.registry}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newOpsMetrics(s.reg)
	logger = slog.New(errorCounter{next: logger.Handler(), c: s.metrics.errors})
	s.logger = logger
	runCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	defer func() {
		if err != nil {
			s.Close(context.Background())
		}
	}()

	sealer, err := session.NewSealer(secrets.SealingKeys, secrets.SealingCurrent)
	if err != nil {
		return nil, err
	}
	s.sealer = sealer
	raw, err := session.Open(ctx, cfg.Store, session.Options{Sealer: sealer, Now: cfg.Now, Logger: logger,
		AuditKeys: secrets.AuditKeys, AuditKeyCurrent: secrets.AuditCurrent})
	if err != nil {
		return nil, storeStartErr(cfg.Store, err)
	}
	if cfg.WrapStore != nil {
		raw = cfg.WrapStore(raw)
	}
	s.obsStore = newObservedStore(raw, s.metrics, logger.With("component", "store"))
	s.store = s.obsStore

	voiceLn, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("voice listener: %w", err)
	}
	s.VoiceURL = "http://" + voiceLn.Addr().String()
	s.PublicURL = strings.TrimRight(firstNonEmpty(cfg.PublicURL, s.VoiceURL), "/")

	httpClient := &http.Client{Timeout: 10 * time.Second}
	mcpURL := cfg.MCPURL
	issuerPin := cfg.ASIssuer
	if mcpURL == "" {
		if err := s.startEmbedded(ctx, httpClient); err != nil {
			return nil, err
		}
		mcpURL = s.MCPURL
		issuerPin = s.ASURL
	} else {
		s.MCPURL = mcpURL
	}

	ch := challenge.New(challenge.Config{
		ClientID: cfg.ClientID, ClientSecret: s.ClientSecret, Issuer: issuerPin,
		HTTPClient: httpClient, Logger: logger.With("component", "challenge"), Now: cfg.Now,
	})
	// Redeeming a code and revoking tokens get a longer per-request timeout:
	// a token the AS issued while we had stopped listening could never be
	// revoked.
	durable := challenge.New(challenge.Config{
		ClientID: cfg.ClientID, ClientSecret: s.ClientSecret, Issuer: issuerPin, RequestTimeout: 20 * time.Second,
		HTTPClient: &http.Client{Timeout: 25 * time.Second}, Logger: logger.With("component", "challenge"), Now: cfg.Now,
	})
	mc := mcpclient.New(mcpclient.Config{
		HTTPClient: httpClient, Logger: logger.With("component", "mcpclient"), Now: cfg.Now,
		Pins: broker.PinStore(s.store, nil), Policy: mcpclient.Policy{Mode: mcpclient.PolicyPinned, RequireExtSignature: true},
	})
	load := newLoadGauge(cfg.GiveUpAfter, time.Now)
	s.backend = broker.New(broker.Config{
		Challenge: ch, Durable: durable, MCP: mc, MCPURL: mcpURL, Store: s.store, HTTPClient: httpClient,
		Logger: logger.With("component", "backend"), LogKey: secrets.LogKey, Now: cfg.Now, Hooks: brokerHooks(s.metrics, load),
	})
	hosts, err := hostPolicy(cfg, s.ClientKind)
	if err != nil {
		return nil, err
	}
	s.voice, err = ivr.New(ivr.Config{
		PublicURL: s.PublicURL, AuthTokens: SplitTokens(s.TwilioAuthToken), Frontend: cfg.Frontend,
		TransferNumber: cfg.TransferNumber, Store: s.store, Auth: s.backend, Tools: s.backend,
		CallRefKey: secrets.CallRefKey, LogKey: secrets.LogKey,
		HoldAfter: cfg.HoldAfter, GiveUpAfter: cfg.GiveUpAfter,
		Registerer: s.reg, Logger: logger.With("component", "ivr"), Now: cfg.Now, Hosts: hosts,
	})
	if err != nil {
		return nil, fmt.Errorf("ivr: %w", err)
	}

	mux := http.NewServeMux()
	s.admit = newAdmission(cfg.MaxCalls, s.voice.CheckSigned, cfg.TransferNumber, s.metrics, cfg.Now)
	s.admit.load = load
	mux.Handle("/", s.admit.wrap(s.voice.Handler()))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	admin := mux
	if cfg.AdminAddr != "" {
		admin = http.NewServeMux()
		adminLn, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
		s.AdminURL = "http://" + adminLn.Addr().String()
		admin.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
		s.serve(adminLn, admin)
	} else {
		s.AdminURL = s.VoiceURL
	}
	admin.HandleFunc("GET /readyz", s.readyz)
	admin.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	s.serve(voiceLn, mux)

	s.wg.Add(3)
	go s.housekeeping(runCtx)
	go s.readiness(runCtx)
	go s.watchSecrets(runCtx, secretsPoll)
	logger.Info("voiceauth started", "voice", s.VoiceURL, "public_url", s.PublicURL, "as", s.ASURL,
		"mcp", s.MCPURL, "frontend", cfg.Frontend, "data_dir", cfg.DataDir)
	return s, nil
}

// startEmbedded starts the reference AS and the demo MCP server.
func (s *Stack) startEmbedded(ctx context.Context, httpClient *http.Client) error {
	cfg := s.cfg
	asLn, err := net.Listen("tcp", cfg.ASAddr)
	if err != nil {
		return fmt.Errorf("AS listener: %w", err)
	}
	s.ASURL = "http://" + asLn.Addr().String()
	mcpLn, err := net.Listen("tcp", cfg.MCPAddr)
	if err != nil {
		asLn.Close()
		return fmt.Errorf("MCP listener: %w", err)
	}
	s.MCPURL = "http://" + mcpLn.Addr().String() + "/mcp"

	trusted, err := s.trustedIssuers()
	if err != nil {
		return err
	}
	otp, err := s.otpChannel()
	if err != nil {
		return err
	}
	as, err := authserver.New(authserver.Config{
		Issuer: s.ASURL, Store: s.store, Pepper: s.secrets.Pepper, LogKey: s.secrets.LogKey,
		SigningKeys: s.secrets.ASSigningKeys,
		Clients: []authserver.Client{
			{ID: cfg.ClientID, Secret: s.ClientSecret, FirstParty: true, TokenExchange: true, Kind: authserver.KindVoice,
				Scopes: strings.Fields(allScopes), Resources: []string{s.MCPURL}},
			{ID: hostClientID, Secret: s.secrets.HostClientSecret, Kind: authserver.KindHost},
		},
		Registry:       &authserver.Registry{Store: s.store, Now: cfg.Now},
		Resources:      []string{s.MCPURL},
		OTP:            countingOTP{next: otp, channel: s.otpChannelName(), m: s.metrics},
		TrustedIssuers: trusted,
		HTTPClient:     httpClient, Logger: s.logger.With("component", "authserver"), Now: cfg.Now,
	})
	if err != nil {
		return fmt.Errorf("authserver: %w", err)
	}
	s.as = as
	patients := authserver.DemoPatients()
	if cfg.GeneratedPatients > 0 {
		patients = append(patients, authserver.GeneratePatients(cfg.GeneratedPatients)...)
	}
	if cfg.Production {
		// A clinic's directory holds its own people (`voiceauth patients
		// import`), never the demo rows; generated ones only when asked for.
		patients = patients[len(authserver.DemoPatients()):]
	}
	if err := authserver.Seed(ctx, s.store, s.secrets.Pepper, patients); err != nil {
		return fmt.Errorf("seed patients: %w", err)
	}
	attestations, err := Attestations(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("identity attestations: %w", err)
	}
	hm, err := healthmcp.New(healthmcp.Config{
		Attestations: attestations,
		Resource:     s.MCPURL, Issuer: s.ASURL, JWKSURL: as.Metadata().JWKSURI,
		IdentityKey: s.secrets.MCPIdentityKey, Store: s.store, LogKey: s.secrets.LogKey,
		HTTPClient: httpClient, Logger: s.logger.With("component", "healthmcp"), Now: cfg.Now,
	})
	if err != nil {
		return fmt.Errorf("healthmcp: %w", err)
	}
	s.serve(asLn, wrap(cfg.WrapAS, instrument(s.registry, as.Handler(), s.metrics.observeAS)))
	s.serve(mcpLn, wrap(cfg.WrapMCP, instrument(s.registry, hm.Handler(), s.metrics.observeMCP)))
	return nil
}

func wrap(w func(http.Handler) http.Handler, h http.Handler) http.Handler {
	if w == nil {
		return h
	}
	return w(h)
}

func (s *Stack) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.servers = append(s.servers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// readyz reports whether this instance can take a call now: the store
// accepts a write, no sealed value failed to open for a missing key, and
// the AS and the MCP server answer. A failing check is named, with its
// error kind, so an operator knows where to look.
func (s *Stack) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	problems := s.checkReady(ctx)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", strings.Join(problems, ", "))
		return
	}
	io.WriteString(w, "ready\n")
}

// checkReady runs every readiness check and records the result in metrics
// (a check that started later wins, whichever finishes first).
func (s *Stack) checkReady(ctx context.Context) []string {
	seq := s.readySeq.Add(1)
	var problems []string
	fail := map[string]bool{}
	if err := s.probeWrite(ctx); err != nil {
		problems = append(problems, "store cannot write ("+ErrKind(err)+")")
		fail["store_write"] = true
	}
	if s.obsStore.sealingMissingSince(time.Now().Add(-time.Minute)) {
		problems = append(problems, "a sealing key needed to open stored data is missing (reload the secrets file)")
		fail["sealing_key"] = true
	}
	if err := s.backend.Ready(ctx); err != nil {
		problems = append(problems, err.Error())
		fail["backends"] = true
	}
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if seq < s.readyApplied {
		return problems
	}
	s.readyApplied = seq
	for _, c := range []string{"store_write", "sealing_key", "backends"} {
		v := 0.0
		if fail[c] {
			v = 1
		}
		s.metrics.readyProblems.WithLabelValues(c).Set(v)
	}
	if len(problems) > 0 {
		s.metrics.ready.Set(0)
	} else {
		s.metrics.ready.Set(1)
	}
	return problems
}

// probeWrite writes and deletes a short-lived record: a store that answers
// reads but cannot write (full disk, read-only file, lost primary) is not
// ready, whatever Ping says.
func (s *Stack) probeWrite(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	key := "probe-" + hex.EncodeToString(randomBytes(8))
	err := s.store.PutRecord(ctx, &session.Record{Kind: "readyz_probe", Key: key, Data: []byte{1},
		ExpiresAt: s.cfg.Now().Add(time.Minute)})
	if err != nil {
		return err
	}
	return s.store.DeleteRecord(ctx, "readyz_probe", key)
}

// readiness keeps voiceauth_ready current between /readyz probes.
func (s *Stack) readiness(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s.checkReady(cctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// housekeeping sweeps expired state and purges old audit records.
func (s *Stack) housekeeping(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.cfg.Now()
		if s.admit != nil && s.admit.inProgress() == 0 {
			// After a peak the heap is garbage; hand the pages back now
			// rather than at the scavenger's pace, so RSS returns to baseline.
			debug.FreeOSMemory()
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := s.backend.RetryRevocations(sctx); err != nil {
			s.logger.Warn("pending revocations", "err", err.Error(), "err_kind", ErrKind(err))
		}
		s.store.SweepCalls(sctx, now.Add(-time.Hour))
		s.store.SweepRecords(sctx, now)
		// Revocations outlive their token by more than any verifier's leeway.
		s.store.SweepRevoked(sctx, now.Add(-5*time.Minute))
		s.store.SweepEvents(sctx, now.Add(-31*24*time.Hour))
		if now.Minute() == 0 && now.Hour() == 3 {
			s.store.PurgeAudit(sctx, now.Add(-2190*24*time.Hour))
		}
		cancel()
	}
}

// Close lets calls in progress finish their current turn, then stops every
// listener and closes the store.
func (s *Stack) Close(ctx context.Context) error {
	var err error
	s.closeMu.Do(func() {
		if s.voice != nil {
			err = errors.Join(err, s.voice.Shutdown(ctx))
		}
		for _, srv := range s.servers {
			err = errors.Join(err, srv.Shutdown(ctx))
		}
		if s.stop != nil {
			s.stop()
		}
		s.wg.Wait()
		if s.backend != nil {
			s.backend.Close()
		}
		if s.store != nil {
			err = errors.Join(err, s.store.Close())
		}
	})
	return err
}

// MetricNames lists every metric family this instance can export, whether
// or not it has a sample yet (deploy/ files may only name these).
func (s *Stack) MetricNames() []string { return s.reg.names() }

// RetryRevocations retries the revocations still pending now (housekeeping
// does it every minute) and reports how many are left.
func (s *Stack) RetryRevocations(ctx context.Context) (int, error) {
	return s.backend.RetryRevocations(ctx)
}

// Ready runs the readiness checks; nil problems means ready.
func (s *Stack) Ready(ctx context.Context) []string { return s.checkReady(ctx) }

// Store exposes the instance's store (for CLI subcommands and tests).
func (s *Stack) Store() session.Store { return s.store }

// Logger is the instance's redacting logger.
func (s *Stack) Logger() *slog.Logger { return s.logger }

// OTPOutboxPath is the fake SMS device of the embedded default.
func (s *Stack) OTPOutboxPath() string { return OutboxPath(s.cfg.DataDir) }

// LatestOTP reads the newest code texted to phone (tests, scenarios, demos).
func (s *Stack) LatestOTP(phone string) (string, error) {
	return authserver.LatestOutboxCode(s.OTPOutboxPath(), phone)
}

// Audit lists the audit trail.
func (s *Stack) Audit(ctx context.Context) ([]session.AuditEvent, error) {
	return s.store.ListAudit(ctx, session.AuditFilter{})
}

// MetricsText renders the Prometheus registry in the text format.
func (s *Stack) MetricsText() (string, error) {
	rec := &strings.Builder{}
	req, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
	rw := &textRecorder{b: rec, h: http.Header{}}
	promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}).ServeHTTP(rw, req)
	return rec.String(), nil
}

type textRecorder struct {
	b *strings.Builder
	h http.Header
}

func (t *textRecorder) Header() http.Header         { return t.h }
func (t *textRecorder) Write(p []byte) (int, error) { return t.b.Write(p) }
func (t *textRecorder) WriteHeader(int)             {}

func checkProduction(cfg Config) error {
	var missing []string
	if !strings.HasPrefix(cfg.PublicURL, "https://") {
		missing = append(missing, "VOICEAUTH_PUBLIC_URL must be an https URL")
	}
	if cfg.TwilioAuthToken == "" {
		missing = append(missing, "TWILIO_AUTH_TOKEN")
	}
	if cfg.ClientSecret == "" {
		missing = append(missing, "VOICEAUTH_CLIENT_SECRET")
	}
	if err := cfg.OTP.validate(true); err != nil {
		missing = append(missing, err.Error())
	}
	if _, err := os.Stat(cfg.SecretsFile); err != nil {
		missing = append(missing, "VOICEAUTH_SECRETS_FILE (an existing file; create it with `voiceauth secrets init`)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("VOICEAUTH_ENV=production refuses to start without explicit secrets: %s", strings.Join(missing, "; "))
	}
	return nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
