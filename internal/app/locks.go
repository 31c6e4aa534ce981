package app

import (
	"time"

	"github.com/voiceauth/voiceauth/session"
)

// Lock is one active lock as the audit trail tells it (pseudonymous).
type Lock struct {
	Kind  string // identity | number
	Who   string // keyed hash, as in the audit trail
	Since time.Time
	Until string
}

// ActiveLocks replays lock and clear events to find the locks still in force.
func ActiveLocks(evs []session.AuditEvent, now time.Time) []Lock {
	active := map[string]Lock{}
	var order []string
	for _, e := range evs {
		who, kind := e.Subject, "identity"
		if who == "" {
			who, kind = e.Number, "number"
		}
		switch e.Type {
		case "kba.locked", "number.blocked":
			until := e.Detail["until"]
			if until == "" {
				until = "(see policy)"
			}
			if t, err := time.Parse(time.RFC3339, until); err == nil && t.Before(now) {
				delete(active, who)
				continue
			}
			if _, ok := active[who]; !ok {
				order = append(order, who)
			}
			active[who] = Lock{Kind: kind, Who: who, Since: e.Time, Until: until}
		case "lock.cleared":
			delete(active, who)
		}
	}
	var out []Lock
	for _, w := range order {
		if l, ok := active[w]; ok {
			out = append(out, l)
			delete(active, w)
		}
	}
	return out
}
