package ivr

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/voiceauth/voiceauth/session"
)

// countingStore records which store methods the webhooks call.
type countingStore struct {
	CallStore
	mu  sync.Mutex
	ops []string
}

func (c *countingStore) note(op string) {
	c.mu.Lock()
	c.ops = append(c.ops, op)
	c.mu.Unlock()
}

func (c *countingStore) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
}

func (c *countingStore) CreateCall(ctx context.Context, call *session.Call) error {
	c.note("CreateCall")
	return c.CallStore.CreateCall(ctx, call)
}

func (c *countingStore) CreateCallClaimed(ctx context.Context, r *session.Record, call *session.Call) error {
	c.note("CreateCallClaimed")
	return c.CallStore.CreateCallClaimed(ctx, r, call)
}

func (c *countingStore) GetCall(ctx context.Context, id string) (*session.Call, error) {
	c.note("GetCall")
	return c.CallStore.GetCall(ctx, id)
}

func (c *countingStore) UpdateCall(ctx context.Context, call *session.Call) error {
	c.note("UpdateCall")
	return c.CallStore.UpdateCall(ctx, call)
}

func (c *countingStore) PutRecord(ctx context.Context, r *session.Record) error {
	c.note("PutRecord")
	return c.CallStore.PutRecord(ctx, r)
}

func (c *countingStore) GetRecord(ctx context.Context, kind, key string) (*session.Record, error) {
	c.note("GetRecord")
	return c.CallStore.GetRecord(ctx, kind, key)
}

func (c *countingStore) UpdateRecord(ctx context.Context, r *session.Record) error {
	c.note("UpdateRecord")
	return c.CallStore.UpdateRecord(ctx, r)
}

// A new incoming call costs one store write (claim and call in one
// transaction) and no store read; a retried /twilio/voice still finds the
// call, answers the same TwiML and creates nothing, and a host registration
// for the call is refused afterwards (the claim was written).
func TestIncomingCallStoreWork(t *testing.T) {
	for _, frontend := range []string{FrontendGather, FrontendRelay} {
		t.Run(frontend, func(t *testing.T) {
			cs := &countingStore{}
			f := newFixture(t, frontend, func(c *Config) { cs.CallStore = c.Store; c.Store = cs })
			sid := "CA" + strings.Repeat("7", 32)
			read := func(resp *http.Response) string {
				t.Helper()
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
				}
				return string(b)
			}
			first := read(f.post("/twilio/voice", callForm(sid), nil))
			if ops := cs.take(); !slices.Equal(ops, []string{"CreateCallClaimed"}) {
				t.Fatalf("new call: store work %v, want [CreateCallClaimed]", ops)
			}
			if _, err := f.store.GetCall(context.Background(), sid); err != nil {
				t.Fatalf("call not stored before the answer: %v", err)
			}
			again := read(f.post("/twilio/voice", callForm(sid), nil))
			if slices.Contains(cs.take(), "CreateCall") {
				t.Error("a retried /twilio/voice created the call again")
			}
			if frontend == FrontendGather && canon(t, again) != canon(t, first) {
				t.Errorf("retried /twilio/voice answered\n%s\nwant\n%s", again, first)
			}
			if frontend == FrontendRelay && !strings.Contains(first, "<Connect") {
				t.Errorf("relay answer without <Connect>: %s", first)
			}
			if err := f.srv.claimForHost(context.Background(), sid); err == nil {
				t.Error("a host could register a call after it was answered")
			}
		})
	}
}

// A caller turn on a call this instance wrote costs one store write and no
// read; when the store moved on meanwhile (another instance, the job driver)
// the stale start loses the version swap and the turn is judged on the
// stored state; a turn the cached state refuses is checked against the store
// before it is answered.
func TestGatherTurnStoreWork(t *testing.T) {
	cs := &countingStore{}
	f := newFixture(t, FrontendGather, func(c *Config) { cs.CallStore = c.Store; c.Store = cs })
	ctx := context.Background()
	sid := "CA" + strings.Repeat("8", 32)
	gather := func(turn int, digits, idem string) twimlDoc {
		t.Helper()
		return parseTwiML(t, f.post("/twilio/gather?turn="+strconv.Itoa(turn), callForm(sid, "Digits", digits),
			map[string]string{"I-Twilio-Idempotency-Token": idem}))
	}
	parseTwiML(t, f.post("/twilio/voice", callForm(sid), nil))
	cs.take()

	// Turn 0, "*" (repeat): one write, no read.
	if a := gather(0, "*", "i1").Verbs[0].Attr("action"); a != "/twilio/gather?turn=1" {
		t.Fatalf("after turn 0: action %q", a)
	}
	if ops := cs.take(); !slices.Equal(ops, []string{"UpdateCall"}) {
		t.Fatalf("caller turn: store work %v, want [UpdateCall]", ops)
	}

	// Another instance takes turn 1 behind this one's back.
	c, err := f.store.GetCall(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := decodeState(c)
	if !f.srv.eng.handle(st, Input{Digits: "*"}) {
		t.Fatal("engine refused *")
	}
	c.State, _ = json.Marshal(st)
	if err := f.store.UpdateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	version := c.Version

	// Turn 1 is stale now: it must change nothing and answer turn 2's TwiML.
	if a := gather(1, "*", "i2").Verbs[0].Attr("action"); a != "/twilio/gather?turn=2" {
		t.Errorf("stale turn answered with action %q, want turn 2's", a)
	}
	if c, _ := f.store.GetCall(ctx, sid); c.Version != version {
		t.Errorf("stale turn was applied: version %d, want %d", c.Version, version)
	}
	// A repeated delivery of the cached turn is checked against the store too.
	if a := gather(0, "*", "i1").Verbs[0].Attr("action"); a != "/twilio/gather?turn=2" {
		t.Errorf("retried delivery answered with action %q, want turn 2's", a)
	}
	// The current turn applies on the stored state.
	if a := gather(2, "*", "i3").Verbs[0].Attr("action"); a != "/twilio/gather?turn=3" {
		t.Errorf("current turn: action %q, want turn 3's", a)
	}
	if c, _ := f.store.GetCall(ctx, sid); c.Version != version+1 {
		t.Errorf("version %d after the current turn, want %d", c.Version, version+1)
	}
}

// registeredAuth is an Auth whose Preauthorized can only be true after a
// RegisterSubjectToken (as the service's adapter); it counts lookups.
type registeredAuth struct {
	*fakeBackend
	mu      sync.Mutex
	lookups int
}

func (r *registeredAuth) PreauthOnlyByRegistration() bool { return true }

func (r *registeredAuth) Preauthorized(ctx context.Context, sid string) (bool, error) {
	r.mu.Lock()
	r.lookups++
	r.mu.Unlock()
	return r.fakeBackend.Preauthorized(ctx, sid)
}

// With such an Auth a new call skips the preauthorization lookup (it
// could only answer false), and a call a host registered first is still
// looked up and preauthorized.
func TestNewCallSkipsPreauthLookup(t *testing.T) {
	ra := &registeredAuth{}
	f := newFixture(t, FrontendGather, func(c *Config) { ra.fakeBackend = c.Auth.(*fakeBackend); c.Auth = ra })
	fresh := "CA" + strings.Repeat("5", 32)
	body(t, f.post("/twilio/voice", callForm(fresh, "CallStatus", "ringing"), nil))
	if _, st := f.state(fresh); st.Authenticated || ra.lookups != 0 {
		t.Fatalf("new call: authenticated %v after %d lookups, want false after 0", st.Authenticated, ra.lookups)
	}

	hosted := "CA" + strings.Repeat("6", 32)
	if code, e := registerHost(t, f, hosted, "host-app", "host-secret"); code != http.StatusNoContent {
		t.Fatalf("registration: %d %v", code, e)
	}
	body(t, f.post("/twilio/voice", callForm(hosted, "CallStatus", "ringing"), nil))
	if _, st := f.state(hosted); !st.Authenticated || ra.lookups != 1 {
		t.Fatalf("registered call: authenticated %v after %d lookups, want true after 1", st.Authenticated, ra.lookups)
	}
}

// lateCallStore makes the first GetCall miss a call that /twilio/voice
// creates right then: the host's first look happens just before the call's
// one-statement insert (session.Store.CreateCallClaimed on SQLite writes no
// claim record).
type lateCallStore struct {
	CallStore
	create func() // run once, on the first GetCall, which then says not found
}

func (l *lateCallStore) GetCall(ctx context.Context, id string) (*session.Call, error) {
	if c := l.create; c != nil {
		l.create = nil
		c()
		return nil, session.ErrNotFound
	}
	return l.CallStore.GetCall(ctx, id)
}

// A call created between a host's look for the call and its claim came
// first: the registration is refused, the claim says "call", and the call
// keeps its state (no host token can be attached to an answered call).
func TestHostClaimAfterUnseenCall(t *testing.T) {
	ls := &lateCallStore{}
	f := newFixture(t, FrontendGather, func(c *Config) { ls.CallStore = c.Store; c.Store = ls })
	ctx := context.Background()
	sid := "CA" + strings.Repeat("4", 32)
	ls.create = func() {
		if _, _, err := f.srv.newCall(ctx, CallInfo{CallSid: sid, From: "+15555550101", To: "+15555550199"}); err != nil {
			t.Errorf("new call: %v", err)
		}
	}
	if err := f.srv.claimForHost(ctx, sid); !errors.Is(err, errCallExists) {
		t.Fatalf("host claim after the call was created: %v, want errCallExists", err)
	}
	if ls.create != nil {
		t.Fatal("the race was not staged")
	}
	r, err := f.store.GetRecord(ctx, claimKind, f.srv.callRef(sid))
	if err != nil || string(r.Data) != claimCall {
		t.Fatalf("claim after the refused registration: %v %v", r, err)
	}
	if err := f.srv.claimForHost(ctx, sid); !errors.Is(err, errCallExists) {
		t.Fatalf("second host claim: %v, want errCallExists", err)
	}
}
