package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/voiceauth/voiceauth/session"
)

// Lockouts: failed-KBA counting, identity locks and number blocks (all
// state in the store, so every instance sharing it enforces them).

type lockData struct {
	Level int       `json:"level"`
	Until time.Time `json:"until"`
}

func (s *Server) getLock(ctx context.Context, kind, key string) (*session.Record, lockData, error) {
	var l lockData
	rec, err := s.cfg.Store.GetRecord(ctx, kind, key)
	if errors.Is(err, session.ErrNotFound) {
		return nil, l, nil
	}
	if err != nil {
		return nil, l, err
	}
	json.Unmarshal(rec.Data, &l)
	return rec, l, nil
}

func (s *Server) putLock(ctx context.Context, rec *session.Record, kind, key string, l lockData, keep time.Duration) error {
	data, _ := json.Marshal(l)
	if rec == nil {
		rec = &session.Record{Kind: kind, Key: key}
		rec.Data, rec.ExpiresAt = data, l.Until.Add(keep)
		err := s.cfg.Store.PutRecord(ctx, rec)
		if errors.Is(err, session.ErrExists) {
			return nil // another instance locked it first
		}
		return err
	}
	rec.Data, rec.ExpiresAt = data, l.Until.Add(keep)
	err := s.cfg.Store.UpdateRecord(ctx, rec)
	if errors.Is(err, session.ErrConflict) {
		return nil
	}
	return err
}

func identityKey(id string) string { return hashKey("identity|" + id) }
func numberKey(n string) string    { return hashKey("number|" + n) }

func (s *Server) identityLocked(ctx context.Context, id string, now time.Time) (bool, error) {
	_, l, err := s.getLock(ctx, kindIdentity, identityKey(id))
	return err == nil && now.Before(l.Until), err
}

func identityEvent(id string) string { return "kba_fail:" + identityKey(id) }
func numberEvent(n string) string    { return "kba_fail_num:" + numberKey(n) }

// countFailures records one failure against each resolved identity
// (counted 30 days back) and against the calling number (counted over
// NumberWindow), all in one store transaction, then locks what reached a
// limit.
func (s *Server) countFailures(ctx context.Context, ids []string, number string, now time.Time) error {
	evs := make([]session.EventWindow, len(ids), len(ids)+2)
	for i, id := range ids {
		evs[i] = session.EventWindow{Key: identityEvent(id), Since: now.Add(-30 * 24 * time.Hour)}
	}
	if number != "" {
		if len(ids) == 0 {
			// Nothing resolved: a stand-in row in the same transaction, so
			// the store work does not tell whether name + DOB or name +
			// SSN-4 matched someone. It never locks anything.
			evs = append(evs, session.EventWindow{Key: "kba_fail_unresolved:" + numberKey(number), Since: now.Add(-s.pol.NumberWindow)})
		}
		evs = append(evs, session.EventWindow{Key: numberEvent(number), Since: now.Add(-s.pol.NumberWindow)})
	}
	if len(evs) == 0 {
		return nil
	}
	counts, err := s.cfg.Store.AddEvents(ctx, now, evs)
	if err != nil {
		return err
	}
	for i, id := range ids {
		if err := s.identityCounted(ctx, id, counts[i], now); err != nil {
			return err
		}
	}
	if number != "" {
		return s.numberCounted(ctx, number, counts[len(evs)-1], now)
	}
	return nil
}

// identityCounted locks the identity when a limit is reached, given its
// failures in the last 30 days (n30, this one included): 3 / 15 min →
// 15 min, then 1 h, 24 h (the level is remembered for 24 h after a lock
// ends); 10 / 24 h → 24 h; 20 / 30 days → 30 days.
func (s *Server) identityCounted(ctx context.Context, id string, n30 int, now time.Time) error {
	// The 15-min and 24-h counts can only be smaller than the 30-day one,
	// so most failures stop here.
	if n30 < min(s.pol.IdentityFailures, s.pol.IdentityCap24h, s.pol.IdentityCap30d) {
		return nil
	}
	key, ev := identityKey(id), identityEvent(id)
	rec, l, err := s.getLock(ctx, kindIdentity, key)
	if err != nil {
		return err
	}
	since := now.Add(-s.pol.IdentityWindow)
	if l.Until.After(since) {
		since = l.Until
	}
	n, err := s.cfg.Store.CountEvents(ctx, ev, since)
	if err != nil {
		return err
	}
	n24, err := s.cfg.Store.CountEvents(ctx, ev, now.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	var until time.Time
	level := l.Level
	switch {
	case n30 >= s.pol.IdentityCap30d:
		until = now.Add(30 * 24 * time.Hour)
	case n24 >= s.pol.IdentityCap24h:
		until = now.Add(24 * time.Hour)
	case n >= s.pol.IdentityFailures:
		level++
		until = now.Add(s.pol.IdentityLocks[min(level, len(s.pol.IdentityLocks))-1])
	default:
		return nil
	}
	if !until.After(l.Until) {
		return nil // already locked at least that long
	}
	s.audit(ctx, "kba.locked", "authserver", id, "", "", "locked", map[string]string{"until": until.UTC().Format(time.RFC3339)})
	return s.putLock(ctx, rec, kindIdentity, key, lockData{Level: level, Until: until}, 24*time.Hour)
}

func (s *Server) numberBlocked(ctx context.Context, number string, now time.Time) (bool, error) {
	_, l, err := s.getLock(ctx, kindNumber, numberKey(number))
	return err == nil && now.Before(l.Until), err
}

// numberCounted blocks a caller_phone for 1 h after 5 failures within an
// hour (n: its failures in that hour, this one included).
func (s *Server) numberCounted(ctx context.Context, number string, n int, now time.Time) error {
	if n < s.pol.NumberFailures {
		return nil
	}
	key, ev := numberKey(number), numberEvent(number)
	rec, l, err := s.getLock(ctx, kindNumber, key)
	if err != nil {
		return err
	}
	if l.Until.After(now.Add(-s.pol.NumberWindow)) {
		// Failures before the end of the last block (or an operator clear) do not count again.
		if n, err = s.cfg.Store.CountEvents(ctx, ev, l.Until); err != nil || n < s.pol.NumberFailures {
			return err
		}
	}
	s.audit(ctx, "number.blocked", "authserver", "", number, "", "blocked", nil)
	return s.putLock(ctx, rec, kindNumber, key, lockData{Until: now.Add(s.pol.NumberBlock)}, 0)
}

// LockUntil reports until when a patient id or an E.164 number is locked
// (the zero time when it is not). For `voiceauth lockouts list`.
func (s *Server) LockUntil(ctx context.Context, patientIDOrNumber string) (time.Time, error) {
	kind, key := kindIdentity, identityKey(patientIDOrNumber)
	if strings.HasPrefix(patientIDOrNumber, "+") {
		kind, key = kindNumber, numberKey(patientIDOrNumber)
	}
	_, l, err := s.getLock(ctx, kind, key)
	if err != nil || !s.now().Before(l.Until) {
		return time.Time{}, err
	}
	return l.Until, nil
}

// ClearLock lifts an identity lock (patient id) or a number block (E.164
// number) and writes an audit record. For `voiceauth lockouts clear`.
func (s *Server) ClearLock(ctx context.Context, patientIDOrNumber string) error {
	kind, key, subj, num := kindIdentity, identityKey(patientIDOrNumber), patientIDOrNumber, ""
	if strings.HasPrefix(patientIDOrNumber, "+") {
		kind, key, subj, num = kindNumber, numberKey(patientIDOrNumber), "", patientIDOrNumber
	}
	// Not a delete: a zero-level lock that ended now also makes the
	// failures before it stop counting towards the next lock.
	rec, _, err := s.getLock(ctx, kind, key)
	if err != nil {
		return err
	}
	if err := s.putLock(ctx, rec, kind, key, lockData{Until: s.now()}, 24*time.Hour); err != nil {
		return err
	}
	s.audit(ctx, "lock.cleared", "operator", subj, num, "", "cleared", nil)
	return nil
}
