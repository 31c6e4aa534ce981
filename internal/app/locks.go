package app

import (
	"context"
	"time"

	"github.com/voiceauth/voiceauth/authserver"
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

// ClearLock lifts a patient's or a number's lock through the reference AS's
// own logic, so the clear is audited like any other decision.
func ClearLock(ctx context.Context, cfg Config, patientIDOrNumber string) error {
	st, secrets, err := OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	as, err := authserver.New(authserver.Config{
		Issuer: "http://operator.invalid", Store: st, Pepper: secrets.Pepper, LogKey: secrets.LogKey,
		SigningKeys: secrets.ASSigningKeys, OTP: &authserver.OutboxChannel{Path: OutboxPath(Defaults(cfg).DataDir), Store: st},
	})
	if err != nil {
		return err
	}
	return as.ClearLock(ctx, patientIDOrNumber)
}
