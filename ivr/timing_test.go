package ivr

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voiceauth/voiceauth/session"
)

// memCalls is the call part of session.Store in memory, with the same
// optimistic-version contract. It exists only so the timing rules can run
// inside a synctest bubble (the SQLite store's goroutines live outside it);
// every other test uses the real store.
type memCalls struct {
	session.Store // nil: any other method panics
	mu            sync.Mutex
	calls         map[string]session.Call
}

func (m *memCalls) CreateCall(_ context.Context, c *session.Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.calls[c.ID]; ok {
		return session.ErrExists
	}
	c.Version = 1
	m.calls[c.ID] = *c
	return nil
}

func (m *memCalls) GetCall(_ context.Context, id string) (*session.Call, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.calls[id]
	if !ok {
		return nil, session.ErrNotFound
	}
	c.State = append([]byte(nil), c.State...)
	return &c, nil
}

func (m *memCalls) UpdateCall(_ context.Context, c *session.Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.calls[c.ID].Version != c.Version {
		return session.ErrConflict
	}
	c.Version++
	m.calls[c.ID] = *c
	return nil
}

// CreateCallClaimed is CreateCall (the claim is accepted, as in PutRecord).
func (m *memCalls) CreateCallClaimed(ctx context.Context, _ *session.Record, c *session.Call) error {
	return m.CreateCall(ctx, c)
}

// PutRecord accepts the call claim (callclaim.go); no host registers here.
func (m *memCalls) PutRecord(context.Context, *session.Record) error { return nil }

// sleepyBackend answers Submit after a fixed (bubble) delay.
type sleepyBackend struct {
	*fakeBackend
	delay time.Duration
}

func (s sleepyBackend) Submit(ctx context.Context, call CallInfo, flow []byte, a Answers, stepUp bool) (AuthStep, []byte, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return AuthStep{}, nil, ctx.Err()
	}
	return AuthStep{Kind: AuthAuthenticated}, nil, nil
}

// The timing rules with the real defaults (1.5 s hold, 6 s give-up), on a
// fake clock: the hold phrase comes at exactly 1.5 s, a 2 s answer is used,
// a 10 s answer is abandoned at 6 s with a transfer (backend_down).
func TestHoldAndGiveUpTiming(t *testing.T) {
	tests := []struct {
		delay      time.Duration
		held       bool
		doneAt     time.Duration
		wantPhase  phase
		wantReason string
	}{
		{delay: 200 * time.Millisecond, held: false, doneAt: 200 * time.Millisecond, wantPhase: phaseMenu},
		{delay: 2 * time.Second, held: true, doneAt: 2 * time.Second, wantPhase: phaseMenu},
		{delay: 10 * time.Second, held: true, doneAt: 6 * time.Second, wantPhase: phaseDone, wantReason: ReasonBackendDown},
	}
	for _, tc := range tests {
		t.Run(tc.delay.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				be := newFakeBackend()
				store := &memCalls{calls: map[string]session.Call{}}
				srv, err := New(Config{PublicURL: "http://127.0.0.1:8080", AuthTokens: []string{"x"}, Store: store,
					Auth: sleepyBackend{be, tc.delay}, Tools: be})
				if err != nil {
					t.Fatal(err)
				}
				defer srv.Shutdown(context.Background())
				ctx := context.Background()
				sid := "CA-timing"
				if _, _, err := srv.newCall(ctx, CallInfo{CallSid: sid}); err != nil {
					t.Fatal(err)
				}
				for _, in := range []Input{{Speech: "Maria Garcia"}, {Digits: "03031980"}, {Digits: "4567"}} {
					if _, err := srv.update(ctx, sid, func(_ *session.Call, st *State) bool { return srv.eng.handle(st, in) }); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				finished := srv.awaitJob(sid, srv.cfg.HoldAfter)
				if finished == tc.held {
					t.Fatalf("finished within HoldAfter = %v", finished)
				}
				if tc.held && time.Since(start) != 1500*time.Millisecond {
					t.Errorf("hold phrase after %v", time.Since(start))
				}
				<-srv.drive(sid)
				if got := time.Since(start); got != tc.doneAt {
					t.Errorf("job settled after %v, want %v", got, tc.doneAt)
				}
				_, st, _ := srv.load(ctx, sid)
				if st.Phase != tc.wantPhase || st.Reason != tc.wantReason || st.Pending != nil {
					t.Errorf("phase %s reason %q pending %v", st.Phase, st.Reason, st.Pending)
				}
			})
		})
	}
}

// A continuation whose job runs on another instance waits continueWait on
// the store and answers with another short hold phrase; once the job is
// older than GiveUpAfter+staleJob (its instance died) the caller is handed
// to a person instead of waiting forever.
func TestContinuationForeignJob(t *testing.T) {
	tests := []struct {
		age      time.Duration
		wantDial bool
	}{
		{age: 0, wantDial: false},
		{age: 6*time.Second + staleJob + time.Second, wantDial: true},
	}
	for _, tc := range tests {
		t.Run(tc.age.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				be := newFakeBackend()
				store := &memCalls{calls: map[string]session.Call{}}
				srv, _ := New(Config{PublicURL: "http://127.0.0.1:8080", AuthTokens: []string{testToken}, Store: store, Auth: be, Tools: be})
				defer srv.Shutdown(context.Background())
				ctx := context.Background()
				sid := "CA-foreign"
				srv.newCall(ctx, CallInfo{CallSid: sid})
				// Persist a pending job as another instance would have.
				c, _ := store.GetCall(ctx, sid)
				var st State
				json.Unmarshal(c.State, &st)
				srv.eng.schedule(&st, Job{Kind: jobSubmit})
				c.State, _ = json.Marshal(&st)
				store.UpdateCall(ctx, c)
				time.Sleep(tc.age)

				form := url.Values{"CallSid": {sid}}
				req := httptest.NewRequest(http.MethodPost, "/twilio/continue?turn=0", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Twilio-Signature", sign(testToken, "http://127.0.0.1:8080/twilio/continue?turn=0", form))
				rec := httptest.NewRecorder()
				start := time.Now()
				srv.Handler().ServeHTTP(rec, req)
				if waited := time.Since(start); waited != continueWait {
					t.Errorf("waited %v, want %v", waited, continueWait)
				}
				out := rec.Body.String()
				if got := strings.Contains(out, "<Dial>"); got != tc.wantDial {
					t.Errorf("dial=%v: %s", got, out)
				}
				if !tc.wantDial && !strings.Contains(out, "/twilio/continue?turn=0</Redirect>") {
					t.Errorf("no redirect back to the continuation: %s", out)
				}
				_, cur, _ := srv.load(ctx, sid)
				if tc.wantDial && cur.Reason != ReasonBackendDown {
					t.Errorf("reason %q", cur.Reason)
				}
			})
		})
	}
}
