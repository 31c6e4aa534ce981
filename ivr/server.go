package ivr

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twilio/twilio-go/client"

	"github.com/voiceauth/voiceauth/session"
)

// Config configures a Server. Store, Auth, Tools, PublicURL and at least one
// AuthToken are required.
type Config struct {
	PublicURL      string   // e.g. http://127.0.0.1:8080; signatures cover PublicURL + request URI
	AuthTokens     []string // Twilio auth tokens (two during rotation)
	Frontend       string   // "gather" (default) or "relay"
	TransferNumber string   // default +15555550100
	Store          CallStore
	Auth           Auth
	Tools          Tools
	CallRefKey     []byte // call_ref = HMAC-SHA256(CallRefKey, CallSid)
	LogKey         []byte // identifiers in logs are session.Pseudonym(LogKey, ...)
	HoldAfter      time.Duration
	GiveUpAfter    time.Duration
	Registerer     prometheus.Registerer
	Logger         *slog.Logger
	Now            func() time.Time
	// Hosts says who may register subject tokens; nil: nobody.
	Hosts HostPolicy
}

// Front ends.
const (
	FrontendGather = "gather"
	FrontendRelay  = "relay"
)

const (
	maxBody = 64 << 10
	// continueWait bounds how long a continuation request waits for a
	// background job before answering with another hold phrase; with the
	// hold phrase itself it keeps every silence under 3 s.
	continueWait = 2 * time.Second
	// staleJob: a pending job this much past GiveUpAfter belongs to an
	// instance that died; the caller is handed to a person.
	staleJob = 2 * time.Second
)

// Server serves the Twilio webhooks, the ConversationRelay websocket and the
// subject-token registration endpoint.
type Server struct {
	cfg        Config
	publicURL  string
	validators []client.RequestValidator
	sigKeys    []*sigKey // the same tokens, for the webhook forms (signedform.go)
	sigURLs    sigURLs
	logMAC     *session.MAC // under cfg.LogKey, for pseudo
	eng        engine
	log        *slog.Logger
	now        func() time.Time
	m          metrics
	interDigit time.Duration // relay keypad entry ends after this pause

	mu       sync.Mutex
	inflight map[string]*driveRun // CallSid → its running job driver
	cache    callCache            // last written state per gather call (callcache.go)
	relays   sync.WaitGroup
	shutdown bool // guarded by mu; no new relay sessions once set
	closing  chan struct{}
	closeOne sync.Once
	base     context.Context
	stopBase context.CancelFunc
}

type metrics struct {
	calls      *prometheus.CounterVec
	turns      *prometheus.CounterVec
	turnTime   *prometheus.HistogramVec
	relayConns prometheus.Gauge
	rejected   *prometheus.CounterVec
	transfers  *prometheus.CounterVec // every transfer, also after authentication
}

// New checks cfg and fills defaults.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil || cfg.Auth == nil || cfg.Tools == nil:
		return nil, errors.New("ivr: Store, Auth and Tools are required")
	case len(cfg.AuthTokens) == 0:
		return nil, errors.New("ivr: at least one Twilio auth token is required")
	case !strings.HasPrefix(cfg.PublicURL, "http://") && !strings.HasPrefix(cfg.PublicURL, "https://"):
		return nil, errors.New("ivr: PublicURL must be an http(s) URL")
	}
	if cfg.Frontend == "" {
		cfg.Frontend = FrontendGather
	}
	if cfg.Frontend != FrontendGather && cfg.Frontend != FrontendRelay {
		return nil, fmt.Errorf("ivr: unknown frontend %q", cfg.Frontend)
	}
	if cfg.TransferNumber == "" {
		cfg.TransferNumber = "+15555550100"
	}
	if cfg.HoldAfter <= 0 {
		cfg.HoldAfter = 1500 * time.Millisecond
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = 6 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:        cfg,
		publicURL:  strings.TrimRight(cfg.PublicURL, "/"),
		log:        log,
		now:        cfg.Now,
		eng:        engine{now: cfg.Now},
		inflight:   map[string]*driveRun{},
		closing:    make(chan struct{}),
		interDigit: 3 * time.Second,
		logMAC:     session.NewMAC(cfg.LogKey),
	}
	s.base, s.stopBase = context.WithCancel(context.Background())
	for _, t := range cfg.AuthTokens {
		s.validators = append(s.validators, client.NewRequestValidator(t))
		s.sigKeys = append(s.sigKeys, newSigKey(t))
	}
	s.m = metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_ivr_calls_total",
			Help: "Calls by final outcome, transfer reason and front end."}, []string{"outcome", "reason", "frontend"}),
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_ivr_turns_total",
			Help: "Caller turns handled, by front end."}, []string{"frontend"}),
		turnTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "voiceauth_ivr_turn_seconds",
			Help:    "Time from caller input to the first response, by front end.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 1.5, 3, 6}}, []string{"frontend"}),
		relayConns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "voiceauth_ivr_relay_connections",
			Help: "Open ConversationRelay websockets."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_ivr_rejected_requests_total",
			Help: "Requests refused before reaching the dialog, by cause."}, []string{"cause"}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "voiceauth_ivr_transfers_total",
			Help: "Calls handed to a person, by reason and front end, whatever the call's outcome was before (an authenticated caller transferred for a backend failure counts here)."}, []string{"reason", "frontend"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.m.calls, s.m.turns, s.m.turnTime, s.m.relayConns, s.m.rejected, s.m.transfers} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("ivr: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Handler routes every endpoint the voice service exposes to Twilio and hosts.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /twilio/voice", s.handleVoice)
	mux.HandleFunc("POST /twilio/gather", s.handleGather)
	mux.HandleFunc("POST /twilio/continue", s.handleContinue)
	mux.HandleFunc("POST /twilio/status", s.handleStatus)
	mux.HandleFunc("GET /twilio/relay", s.handleRelay)
	mux.HandleFunc("POST /twilio/relay/done", s.handleRelayDone)
	mux.HandleFunc("POST /v1/calls/{CallSid}/subject-token", s.handleSubjectToken)
	return mux
}

// Shutdown stops accepting relay turns, lets the current ones finish, then
// cancels background work.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	s.closeOne.Do(func() { close(s.closing) })
	done := make(chan struct{})
	go func() { s.relays.Wait(); close(done) }()
	defer s.stopBase()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) callRef(sid string) string {
	m := hmac.New(sha256.New, s.cfg.CallRefKey)
	m.Write([]byte(sid))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// pseudo is session.Pseudonym(LogKey, kind, v), with pooled keyed states
// (hmac.New per log line was ≈ 1 % of a busy instance's time).
func (s *Server) pseudo(kind, v string) string { return s.logMAC.Pseudonym(kind, v) }

// validSignature checks X-Twilio-Signature over url and params with every
// configured auth token.
func (s *Server) validSignature(url string, params map[string]string, sig string) bool {
	if sig == "" {
		return false
	}
	for i := range s.validators {
		if s.validators[i].Validate(url, params, sig) {
			return true
		}
	}
	return false
}

var errStateCorrupt = errors.New("ivr: call state unreadable")

func decodeState(c *session.Call) (*State, error) {
	st := &State{}
	if len(c.State) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(c.State, st); err != nil {
		return nil, errStateCorrupt
	}
	return st, nil
}

// load reads a call and its dialog state.
func (s *Server) load(ctx context.Context, sid string) (*session.Call, *State, error) {
	c, err := s.cfg.Store.GetCall(ctx, sid)
	if err != nil {
		return nil, nil, err
	}
	st, err := decodeState(c)
	return c, st, err
}

// update applies fn to the current state and writes it with optimistic
// concurrency, re-reading and re-applying on conflict. fn returns false to
// leave the call unchanged. Outcome transitions are counted here, once, by the
// writer that wins.
//
// The first attempt starts from this instance's last write (callcache.go)
// when it has one: the swap on the version makes a stale start lose, and a
// change fn refuses on it is checked against the store before it is answered.
func (s *Server) update(ctx context.Context, sid string, fn func(c *session.Call, st *State) bool) (*State, error) {
	for attempt := 0; ; attempt++ {
		var (
			c      *session.Call
			st     *State
			err    error
			cached bool
		)
		if attempt == 0 {
			c, cached = s.cache.get(sid)
		}
		if cached {
			if st, err = decodeState(c); err != nil {
				s.cache.drop(sid)
				continue
			}
		} else if c, st, err = s.load(ctx, sid); err != nil {
			return nil, err
		}
		before := *st
		if !fn(c, st) {
			if cached {
				continue // the store may be ahead of the cache
			}
			return st, nil
		}
		c.State, err = json.Marshal(st)
		if err != nil {
			return nil, err
		}
		err = s.cfg.Store.UpdateCall(ctx, c)
		if err != nil {
			s.cache.drop(sid)
		}
		if errors.Is(err, session.ErrConflict) && attempt < 20 {
			continue
		}
		if errors.Is(err, session.ErrNotFound) && cached {
			continue // report what the store says, as without the cache
		}
		if err != nil {
			return nil, err
		}
		s.remember(c)
		s.observe(sid, &before, st)
		return st, nil
	}
}

// remember caches a call this instance just wrote (gather front end only:
// relay calls are driven by their socket and stay out of memory).
func (s *Server) remember(c *session.Call) {
	if s.cfg.Frontend == FrontendGather {
		s.cache.put(c)
	}
}

// observe reports state transitions worth a metric or a log line.
func (s *Server) observe(sid string, before, after *State) {
	if before.Outcome == "" && after.Outcome != "" {
		s.m.calls.WithLabelValues(after.Outcome, after.Reason, s.cfg.Frontend).Inc()
		s.log.Info("call outcome", "call", s.pseudo("call", sid), "outcome", after.Outcome, "reason", after.Reason)
	}
	if before.Out.End == "" && after.Out.End == endTransfer {
		s.m.transfers.WithLabelValues(after.Out.Reason, s.cfg.Frontend).Inc()
	}
	if before.Out.End == "" && after.Out.End != "" {
		s.log.Info("call end", "call", s.pseudo("call", sid), "end", after.Out.End, "reason", after.Out.Reason)
		go s.endCall(sid)
	}
}

func (s *Server) endCall(sid string) {
	ctx, cancel := context.WithTimeout(s.base, s.cfg.GiveUpAfter)
	defer cancel()
	if err := s.cfg.Auth.EndCall(ctx, sid); err != nil {
		s.log.Warn("end call", "call", s.pseudo("call", sid), "err", errKind(err))
	}
}

// errKind names an error for logs without its text (adapters may wrap
// messages that carry request details).
func errKind(err error) string {
	if err == nil {
		return "none"
	}
	for _, e := range []error{ErrStepUp, ErrReverify, ErrToolDenied, ErrBackendDown, ErrIdentity, ErrUnauthorizedHost, ErrRejected,
		session.ErrNotFound, session.ErrConflict, session.ErrExists, context.DeadlineExceeded, context.Canceled, errStateCorrupt} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return failureKind(err)
}

// newCall creates the call record with a started dialog. An existing call
// (a retried /twilio/voice) is returned as is. On the relay front end a new
// call gets its one-time relay nonce (relaygrant.go), returned once, here.
//
// A new call costs one preauthorization read and one transaction that
// writes the call claim (callclaim.go) and the call together; only when
// either already exists (a retry, a host registration, a race) does it take
// the slow path that loads, waits for a registration in flight and claims.
func (s *Server) newCall(ctx context.Context, info CallInfo) (*State, string, error) {
	preauth := false
	if ra, ok := s.cfg.Auth.(RegisteredPreauth); !ok || !ra.PreauthOnlyByRegistration() {
		preauth = s.preauthorized(ctx, info.CallSid)
	}
	st, nonce, c, err := s.startCall(info, preauth)
	if err != nil {
		return nil, "", err
	}
	// The claim insert fails if any host registration was ever started
	// for this call, so preauth (read just before) cannot be missing one.
	err = s.cfg.Store.CreateCallClaimed(ctx, s.claimRecord(info.CallSid, claimCall), c)
	if err == nil {
		s.remember(c)
		s.started(info, st, preauth)
		return st, nonce, nil
	}
	if !errors.Is(err, session.ErrExists) {
		return nil, "", err
	}
	if _, st, err := s.load(ctx, info.CallSid); err == nil {
		return st, "", nil
	} else if !errors.Is(err, session.ErrNotFound) {
		return nil, "", err
	}
	// From now on no host may register this call (callclaim.go).
	if err := s.claimForCall(ctx, info.CallSid); err != nil {
		s.log.Warn("call claim", "call", s.pseudo("call", info.CallSid), "err", errKind(err))
	}
	preauth = s.preauthorized(ctx, info.CallSid)
	if st, nonce, c, err = s.startCall(info, preauth); err != nil {
		return nil, "", err
	}
	if err := s.cfg.Store.CreateCall(ctx, c); errors.Is(err, session.ErrExists) {
		_, st, err = s.load(ctx, info.CallSid)
		return st, "", err
	} else if err != nil {
		return nil, "", err
	}
	s.started(info, st, preauth)
	return st, nonce, nil
}

// preauthorized asks Auth whether a host registered the call; a failed
// lookup falls back to KBA, never to trust.
func (s *Server) preauthorized(ctx context.Context, sid string) bool {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.HoldAfter)
	ok, err := s.cfg.Auth.Preauthorized(pctx, sid)
	cancel()
	if err != nil {
		s.log.Warn("preauthorized lookup", "call", s.pseudo("call", sid), "err", errKind(err))
		return false
	}
	return ok
}

// startCall builds a new call's record with its dialog started.
func (s *Server) startCall(info CallInfo, preauth bool) (*State, string, *session.Call, error) {
	st := &State{}
	s.eng.start(st, info, preauth)
	now := s.now()
	nonce := ""
	if s.cfg.Frontend == FrontendRelay {
		st.Relay = &relayGrant{}
		nonce = st.Relay.issue(now)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, "", nil, err
	}
	return st, nonce, &session.Call{ID: info.CallSid, State: raw, CreatedAt: now, UpdatedAt: now}, nil
}

// started reports a call this instance created.
func (s *Server) started(info CallInfo, st *State, preauth bool) {
	s.observe(info.CallSid, &State{}, st)
	if !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return // the two pseudonyms cost two HMACs that nobody would read
	}
	s.log.Info("call start", "call", s.pseudo("call", info.CallSid), "number", s.pseudo("number", info.From),
		"frontend", s.cfg.Frontend, "preauthorized", preauth)
}

// driveRun is one background driver of a call's jobs. call and st hold the
// state it last wrote (or read); they are set before done is closed.
type driveRun struct {
	done chan struct{}
	call *session.Call
	st   *State
}

// drive runs the call's pending jobs in the background until none is left
// and returns a channel closed when they are done.
func (s *Server) drive(sid string) <-chan struct{} { return s.startDrive(sid, nil, nil).done }

// startDrive is drive starting from a snapshot the caller hands over (and
// must not use again), which saves a store read. Only one driver runs per
// call in this process; a second start joins the first.
func (s *Server) startDrive(sid string, call *session.Call, st *State) *driveRun {
	s.mu.Lock()
	if run, ok := s.inflight[sid]; ok {
		s.mu.Unlock()
		return run
	}
	run := &driveRun{done: make(chan struct{})}
	s.inflight[sid] = run
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.inflight, sid)
			s.mu.Unlock()
			close(run.done)
		}()
		for {
			if call == nil {
				var err error
				if call, st, err = s.load(s.base, sid); err != nil {
					return
				}
			}
			if st.Pending == nil {
				run.call, run.st = call, st
				return
			}
			job := *st.Pending
			res := s.run(st, &job)
			apply := func(_ *session.Call, st *State) bool {
				if st.Pending == nil || st.Pending.ID != job.ID {
					return false
				}
				s.eng.finish(st, &job, res)
				return true
			}
			before := *st
			if !apply(call, st) {
				call = nil // someone else moved the call on; re-read
				continue
			}
			fresh, err := s.writeCached(s.base, sid, call, &before, st, apply)
			if err != nil {
				s.log.Error("job result", "call", s.pseudo("call", sid), "err", errKind(err))
				return
			}
			if !fresh {
				call = nil
			}
		}
	}()
	return run
}

// run performs one job against the backends within the call's time budget.
func (s *Server) run(st *State, j *Job) jobResult {
	left := s.cfg.GiveUpAfter - s.now().Sub(j.Started)
	if left <= 0 {
		return jobResult{Err: context.DeadlineExceeded}
	}
	ctx, cancel := context.WithTimeout(s.base, left)
	defer cancel()
	var r jobResult
	switch j.Kind {
	case jobSubmit:
		a := st.Answers
		a.OTPResend = j.Resend
		r.Step, r.Flow, r.Err = s.cfg.Auth.Submit(ctx, st.Call, st.Flow, a, j.StepUp)
	case jobTool:
		r.Data, r.Err = s.cfg.Tools.Call(ctx, st.Call.CallSid, j.Tool, j.Args)
	}
	if r.Err == nil && ctx.Err() != nil {
		r.Err = ctx.Err() // late answers count as timeouts: the caller was already waiting too long
	}
	if r.Err != nil {
		s.log.Warn("backend", "call", s.pseudo("call", st.Call.CallSid), "job", j.Kind, "tool", j.Tool, "err", errKind(r.Err))
	}
	return r
}

// awaitJob waits up to d for the call's jobs; true when they finished.
func (s *Server) awaitJob(sid string, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.drive(sid):
		return true
	case <-t.C:
		return false
	}
}
