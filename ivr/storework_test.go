package ivr

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/voiceauth/voiceauth/session"
)

// countingStore records which store methods the webhooks call.
type countingStore struct {
	session.Store
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
	return c.Store.CreateCall(ctx, call)
}

func (c *countingStore) CreateCallClaimed(ctx context.Context, r *session.Record, call *session.Call) error {
	c.note("CreateCallClaimed")
	return c.Store.CreateCallClaimed(ctx, r, call)
}

func (c *countingStore) GetCall(ctx context.Context, id string) (*session.Call, error) {
	c.note("GetCall")
	return c.Store.GetCall(ctx, id)
}

func (c *countingStore) UpdateCall(ctx context.Context, call *session.Call) error {
	c.note("UpdateCall")
	return c.Store.UpdateCall(ctx, call)
}

func (c *countingStore) PutRecord(ctx context.Context, r *session.Record) error {
	c.note("PutRecord")
	return c.Store.PutRecord(ctx, r)
}

func (c *countingStore) GetRecord(ctx context.Context, kind, key string) (*session.Record, error) {
	c.note("GetRecord")
	return c.Store.GetRecord(ctx, kind, key)
}

func (c *countingStore) UpdateRecord(ctx context.Context, r *session.Record) error {
	c.note("UpdateRecord")
	return c.Store.UpdateRecord(ctx, r)
}

func (c *countingStore) GetTokens(ctx context.Context, id string) (session.TokenSet, error) {
	c.note("GetTokens")
	return c.Store.GetTokens(ctx, id)
}

// A new incoming call costs one store write (claim and call in one
// transaction) and no store read; a retried /twilio/voice still finds the
// call, answers the same TwiML and creates nothing, and a host registration
// for the call is refused afterwards (the claim was written).
func TestIncomingCallStoreWork(t *testing.T) {
	for _, frontend := range []string{FrontendGather, FrontendRelay} {
		t.Run(frontend, func(t *testing.T) {
			cs := &countingStore{}
			f := newFixture(t, frontend, func(c *Config) { cs.Store = c.Store; c.Store = cs })
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
