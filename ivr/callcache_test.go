package ivr

import (
	"fmt"
	"testing"

	"github.com/voiceauth/voiceauth/session"
)

// The cache stays within maxCachedCalls, lets the call cached longest ago
// go first, keeps a call that is written again in its place, and forgets
// ended calls.
func TestCallCacheBounded(t *testing.T) {
	var cc callCache
	sid := func(i int) string { return fmt.Sprintf("CA%032d", i) }
	for i := range maxCachedCalls + 10 {
		cc.put(&session.Call{ID: sid(i), Version: 1})
		if i == 5 {
			cc.put(&session.Call{ID: sid(0), Version: 2}) // rewritten, same slot
		}
	}
	if n := len(cc.calls); n != maxCachedCalls {
		t.Fatalf("%d calls cached, want %d", n, maxCachedCalls)
	}
	for i := range 10 {
		if _, ok := cc.get(sid(i)); ok {
			t.Errorf("call %d (among the oldest) still cached", i)
		}
	}
	for _, i := range []int{10, maxCachedCalls + 9} {
		if c, ok := cc.get(sid(i)); !ok || c.Version != 1 {
			t.Errorf("call %d: cached %v, version %v", i, ok, c)
		}
	}
	cc.put(&session.Call{ID: sid(20), Version: 2, Ended: true})
	if _, ok := cc.get(sid(20)); ok {
		t.Error("ended call still cached")
	}
	cc.drop(sid(21))
	if _, ok := cc.get(sid(21)); ok {
		t.Error("dropped call still cached")
	}
}
