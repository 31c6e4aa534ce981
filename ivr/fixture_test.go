package ivr

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voiceauth/voiceauth/ivr/twiliotest"
	"github.com/voiceauth/voiceauth/session"
)

const testToken = "test-auth-token-0123456789abcdef"

// sign is Twilio's request signer (twiliotest), written independently of
// the twilio-go validator the server checks with.
var sign = twiliotest.Sign

type demoPatient struct {
	id, name, dob, ssn4 string
	mobile              bool
}

// The DEMO-DATA.md rows the fake AS knows.
var demoPatients = []demoPatient{
	{"pt-0001", "maria garcia", "1980-03-03", "4567", true},
	{"pt-0002", "james o'brien", "1955-11-30", "0912", true},
	{"pt-0004", "john smith", "1970-01-01", "1111", true},
	{"pt-0005", "john smith", "1970-01-01", "2222", true},
	{"pt-0007", "robert brown", "1948-02-29", "5050", false},
}

// fakeFlow is the fake adapter's opaque per-call state.
type fakeFlow struct {
	Fails   int    `json:"fails"`
	Patient string `json:"patient"`
	OTPOK   bool   `json:"otp_ok"`
	Code    string `json:"code"`
	OTPFail int    `json:"otp_fail"`
}

// fakeBackend implements Auth and Tools with the AS's observable behaviour
// (KBA-PROFILE.md): two KBA failures per call, same answer for OTP whether or
// not the details matched, step-up needed for medications.
type fakeBackend struct {
	mu       sync.Mutex
	acr      map[string]string // callSid → "kba" | "kba-otp"
	patient  map[string]string
	outbox   map[string]string // callSid → last code sent ("" when none was, e.g. mismatch)
	preauth  map[string]bool
	ended    map[string]int
	endedCh  chan string
	submits  int
	mode     string        // "", "down", "slow", "tools-down", "identity"
	release  chan struct{} // closes to let a slow call finish
	lastSeen []Answers
	// regHeld, when set, holds RegisterSubjectToken: it sends on regHeld and
	// waits for regRelease.
	regHeld, regRelease chan struct{}
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{acr: map[string]string{}, patient: map[string]string{}, outbox: map[string]string{},
		preauth: map[string]bool{}, ended: map[string]int{}, endedCh: make(chan string, 100), release: make(chan struct{})}
}

func (f *fakeBackend) wait(ctx context.Context) error {
	f.mu.Lock()
	mode := f.mode
	f.mu.Unlock()
	switch mode {
	case "down":
		return fmt.Errorf("dial tcp 127.0.0.1:8081: connection refused")
	case "slow":
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *fakeBackend) Submit(ctx context.Context, call CallInfo, flow []byte, a Answers, stepUp bool) (AuthStep, []byte, error) {
	if err := f.wait(ctx); err != nil {
		return AuthStep{}, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submits++
	f.lastSeen = append(f.lastSeen, a)
	var st fakeFlow
	if len(flow) > 0 {
		if err := json.Unmarshal(flow, &st); err != nil {
			return AuthStep{}, nil, err
		}
	}
	out := func(k AuthKind) (AuthStep, []byte, error) {
		b, _ := json.Marshal(st)
		return AuthStep{Kind: k}, b, nil
	}
	if stepUp || st.Patient != "" && !st.OTPOK && a.OTP != "" {
		var p *demoPatient
		for i := range demoPatients {
			if demoPatients[i].id == st.Patient {
				p = &demoPatients[i]
			}
		}
		if p != nil && !p.mobile {
			return out(AuthTransfer) // redirect_to_web: no OTP possible
		}
		if a.OTP == "" || a.OTPResend {
			st.Code = ""
			if p != nil {
				st.Code = fmt.Sprintf("%06d", 100000+f.submits*7919%900000)
				f.outbox[call.CallSid] = st.Code
			}
			return out(AuthNeedOTP)
		}
		if st.Code != "" && a.OTP == st.Code {
			st.OTPOK = true
			f.acr[call.CallSid] = "kba-otp"
			return out(AuthAuthenticated)
		}
		if st.OTPFail++; st.OTPFail >= 3 {
			return out(AuthDenied)
		}
		return out(AuthRetryOTP)
	}
	var match *demoPatient
	for i, p := range demoPatients {
		if strings.EqualFold(a.Name, p.name) && a.Birthdate == p.dob && a.SSNLast4 == p.ssn4 {
			match = &demoPatients[i]
		}
	}
	if match == nil {
		if st.Fails++; st.Fails >= 2 {
			return out(AuthDenied)
		}
		return out(AuthRetryKBA)
	}
	st.Patient = match.id
	f.acr[call.CallSid] = "kba"
	f.patient[call.CallSid] = match.id
	return out(AuthAuthenticated)
}

func (f *fakeBackend) Preauthorized(_ context.Context, callSid string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.preauth[callSid] {
		f.acr[callSid] = "kba"
	}
	return f.preauth[callSid], nil
}

func (f *fakeBackend) RegisterSubjectToken(_ context.Context, callSid, host, secret, tok, typ string) error {
	if host != "host-app" || secret != "host-secret" {
		return ErrUnauthorizedHost
	}
	if tok != "good-subject-token" || typ != "urn:ietf:params:oauth:token-type:access_token" {
		return ErrRejected
	}
	if f.regHeld != nil {
		f.regHeld <- struct{}{}
		<-f.regRelease
	}
	f.mu.Lock()
	f.preauth[callSid] = true
	f.mu.Unlock()
	return nil
}

func (f *fakeBackend) EndCall(_ context.Context, callSid string) error {
	f.mu.Lock()
	f.ended[callSid]++
	delete(f.acr, callSid)
	f.mu.Unlock()
	f.endedCh <- callSid
	return nil
}

func (f *fakeBackend) Call(ctx context.Context, callSid, tool string, args map[string]any) (json.RawMessage, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch f.mode {
	case "tools-down":
		return nil, ErrBackendDown
	case "identity":
		return nil, ErrIdentity
	}
	acr := f.acr[callSid]
	if acr == "" {
		return nil, ErrToolDenied
	}
	switch tool {
	case "list_appointments":
		return json.RawMessage(`{"appointments":[{"id":"ap-1","start":"2026-12-02T09:30:00-05:00","clinician":"Dr. Lee","department":"Cardiology","location":"Main Street Clinic"},{"id":"ap-2","start":"2026-12-10T14:00:00-05:00","clinician":"Dr. Patel","department":"Dermatology","location":"Main Street Clinic"}]}`), nil
	case "list_medications", "request_refill":
		if acr != "kba-otp" {
			return nil, ErrStepUp
		}
		if tool == "request_refill" {
			if args["medication_id"] != "rx-1" {
				return nil, fmt.Errorf("not refillable")
			}
			return json.RawMessage(`{"status":"requested","medication":"Lisinopril","ready_on":"2026-11-27"}`), nil
		}
		return json.RawMessage(`{"medications":[{"id":"rx-1","name":"Lisinopril","dose":"10 mg once daily","refillable":true,"refills_left":2},{"id":"rx-2","name":"Metformin","dose":"500 mg twice daily","refillable":false,"refills_left":0},{"id":"rx-3","name":"Atorvastatin","dose":"20 mg at bedtime","refillable":true,"refills_left":0}]}`), nil
	}
	return nil, ErrToolDenied
}

func (f *fakeBackend) code(callSid string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.outbox[callSid]
}

func (f *fakeBackend) setMode(m string) {
	f.mu.Lock()
	f.mode = m
	f.mu.Unlock()
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixture is one voice service on loopback with a real SQLite store.
type fixture struct {
	t     testing.TB
	srv   *Server
	http  *httptest.Server
	store session.Store
	be    *fakeBackend
	logs  *syncBuffer
	reg   *prometheus.Registry
	base  string // the configured public URL (= the httptest URL)

	currentSid string
	onHold     func(*fixture)
}

func (f *fixture) held() {
	if h := f.onHold; h != nil {
		f.onHold = nil
		h(f)
	}
}

var storeSeq sync.Mutex

func openStore(t testing.TB) session.Store {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := session.NewSealer(map[uint32][]byte{1: key}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := session.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), session.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newFixture(t testing.TB, frontend string, tweak func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, store: openStore(t), be: newFakeBackend(), logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	mux := http.NewServeMux()
	f.http = httptest.NewServer(mux)
	t.Cleanup(f.http.Close)
	f.base = f.http.URL
	cfg := Config{
		PublicURL: f.base, AuthTokens: []string{"old-token-rotated-out", testToken}, Frontend: frontend,
		Store: f.store, Auth: f.be, Tools: f.be, Hosts: HostList{"host-app"}, CallRefKey: []byte("callref-key"), LogKey: []byte("log-key"),
		Registerer: f.reg, Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: time.Now,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.interDigit = 30 * time.Millisecond
	f.srv = srv
	mux.Handle("/", srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return f
}

// post sends a signed form POST to path (which may carry a query), as
// Twilio would (twiliotest.Phone).
func (f *fixture) post(path string, form url.Values, hdr map[string]string) *http.Response {
	f.t.Helper()
	h := http.Header{}
	for k, v := range hdr {
		h.Set(k, v)
	}
	resp, err := f.phone().Post(context.Background(), path, form, h)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// phone is Twilio's side of calls into the fixture's server.
func (f *fixture) phone() *twiliotest.Phone {
	return &twiliotest.Phone{PublicURL: f.base, AuthToken: testToken}
}

func callForm(sid string, extra ...string) url.Values {
	v := url.Values{"CallSid": {sid}, "AccountSid": {"AC0123"}, "From": {"+15555550101"}, "To": {"+15555550199"},
		"CallStatus": {"in-progress"}, "Direction": {"inbound"}, "ApiVersion": {"2010-04-01"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

func (f *fixture) state(sid string) (*session.Call, *State) {
	f.t.Helper()
	c, st, err := f.srv.load(context.Background(), sid)
	if err != nil {
		f.t.Fatalf("load %s: %v", sid, err)
	}
	return c, st
}

func (f *fixture) waitEnded(sid string) {
	f.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.be.mu.Lock()
		n := f.be.ended[sid]
		f.be.mu.Unlock()
		if n > 0 {
			return
		}
		select {
		case <-f.be.endedCh:
		case <-deadline:
			f.t.Fatalf("EndCall(%s) never called", sid)
		}
	}
}
