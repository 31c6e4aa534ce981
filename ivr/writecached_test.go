package ivr

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/session"
)

// writeCached writes a held copy with its version and no read; a stale copy
// loses the swap and the change is re-applied to the stored state (both
// writers' changes survive); any other store error is returned as is.
func TestWriteCachedFallsBackToUpdate(t *testing.T) {
	f := newFixture(t, FrontendGather, nil)
	ctx := context.Background()
	sid := "CA" + strings.Repeat("6", 32)
	f.post("/twilio/voice", callForm(sid), nil).Body.Close()
	mark := func(m string) func(*session.Call, *State) bool {
		return func(_ *session.Call, st *State) bool { st.Carry = append(st.Carry, m); return true }
	}
	write := func(call *session.Call, st *State, fn func(*session.Call, *State) bool) (bool, error) {
		before := *st
		fn(call, st)
		return f.srv.writeCached(ctx, sid, call, &before, st, fn)
	}

	ca, sa := f.state(sid)
	cb, sb := f.state(sid) // a second holder of the same version
	v := ca.Version
	if fresh, err := write(ca, sa, mark("a")); !fresh || err != nil {
		t.Fatalf("first holder: fresh %v, err %v; want a direct write", fresh, err)
	}
	if ca.Version != v+1 {
		t.Fatalf("held copy version %d after the write, want %d", ca.Version, v+1)
	}
	if fresh, err := write(cb, sb, mark("b")); fresh || err != nil {
		t.Fatalf("stale holder: fresh %v, err %v; want the update fallback", fresh, err)
	}
	c, st := f.state(sid)
	if want := []string{"a", "b"}; !slices.Equal(st.Carry, want) || c.Version != v+2 {
		t.Fatalf("stored carry %q version %d, want %q version %d", st.Carry, c.Version, want, v+2)
	}

	gone := &session.Call{ID: "CA" + strings.Repeat("5", 32), Version: 1}
	fresh, err := f.srv.writeCached(ctx, gone.ID, gone, &State{}, &State{}, mark("c"))
	if fresh || !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("missing call: fresh %v, err %v; want session.ErrNotFound", fresh, err)
	}
}
