package ivr

import (
	"sync"

	"github.com/voiceauth/voiceauth/session"
)

// callCache remembers the version and state this instance last wrote for a
// gather call, so the next turn's update starts from it instead of reading
// the store first. It is only a guess: the write is a compare-and-swap on
// the version, so a stale entry (another instance, the relay, a job driver
// moved the call on) loses the swap and update reads the store; a turn that
// the cached state would not apply is also re-checked against the store
// before it is answered. Entries go when the call ends; the cache is
// bounded, the call cached longest ago making room (calls are short).
type callCache struct {
	mu    sync.Mutex
	calls map[string]session.Call
	order []string // ring of the CallSids cached, oldest at next
	next  int
}

// maxCachedCalls bounds the cache (a state is about 1 KiB).
const maxCachedCalls = 8192

func (cc *callCache) get(sid string) (*session.Call, bool) {
	cc.mu.Lock()
	c, ok := cc.calls[sid]
	cc.mu.Unlock()
	if !ok {
		return nil, false
	}
	return &c, true // State is never written in place, only replaced
}

func (cc *callCache) put(c *session.Call) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if c.Ended {
		delete(cc.calls, c.ID)
		return
	}
	if cc.calls == nil {
		cc.calls = map[string]session.Call{}
		cc.order = make([]string, maxCachedCalls)
	}
	if _, ok := cc.calls[c.ID]; !ok {
		// The slot's previous call goes (if it is still here; an ended
		// call left an empty place behind, which the map no longer counts).
		delete(cc.calls, cc.order[cc.next])
		cc.order[cc.next] = c.ID
		cc.next = (cc.next + 1) % len(cc.order)
	}
	cc.calls[c.ID] = *c
}

func (cc *callCache) drop(sid string) {
	cc.mu.Lock()
	delete(cc.calls, sid)
	cc.mu.Unlock()
}
