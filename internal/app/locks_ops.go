package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/session"
)

// LockView is one active lock named the way an operator names it: a patient
// id or an E.164 number (the audit trail's pseudonym when the directory
// cannot name it), with the expiry the AS enforces.
type LockView struct {
	Kind      string // identity | number
	Who       string // patient id, number, or the pseudonym
	Pseudonym string
	Since     time.Time
	Until     time.Time // zero when the store holds no lock (it was lifted or expired)
}

// operatorAS opens the store and an AS over it for operator commands.
func operatorAS(ctx context.Context, cfg Config) (session.Store, *Secrets, *authserver.Server, error) {
	st, secrets, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	as, err := authserver.New(authserver.Config{
		Issuer: "http://operator.invalid", Store: st, Pepper: secrets.Pepper, LogKey: secrets.LogKey,
		SigningKeys: secrets.ASSigningKeys, OTP: &authserver.OutboxChannel{Path: OutboxPath(Defaults(cfg).DataDir), Store: st},
	})
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return st, secrets, as, nil
}

// ListLocks lists the locks in force now.
func ListLocks(ctx context.Context, cfg Config, now time.Time) ([]LockView, error) {
	st, secrets, as, err := operatorAS(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	evs, err := st.ListAudit(ctx, session.AuditFilter{From: now.Add(-31 * 24 * time.Hour)})
	if err != nil {
		return nil, err
	}
	names := directoryNames(ctx, st, secrets)
	var out []LockView
	for _, l := range ActiveLocks(evs, now) {
		v := LockView{Kind: l.Kind, Who: l.Who, Pseudonym: l.Who, Since: l.Since}
		if real, ok := names[l.Who]; ok {
			v.Who = real
			if v.Until, err = as.LockUntil(ctx, real); err != nil {
				return nil, err
			}
			if v.Until.IsZero() {
				continue // lifted or expired in the store
			}
		} else if t, err := time.Parse(time.RFC3339, l.Until); err == nil {
			v.Until = t
		}
		out = append(out, v)
	}
	return out, nil
}

// directoryNames maps audit pseudonyms back to the patient ids and numbers
// of the patient directory this instance seeds (demo and generated).
func directoryNames(ctx context.Context, st session.Store, secrets *Secrets) map[string]string {
	names := map[string]string{}
	add := func(id, phone string) {
		names[session.Pseudonym(secrets.LogKey, "patient", id)] = id
		if phone != "" {
			names[session.Pseudonym(secrets.LogKey, "number", phone)] = phone
		}
	}
	demo := authserver.DemoPatients()
	for _, p := range demo {
		add(p.ID, p.Phone)
	}
	if n, err := st.CountPatients(ctx); err == nil && n > len(demo) {
		for _, p := range authserver.GeneratePatients(n - len(demo)) {
			add(p.ID, p.Phone)
		}
	}
	return names
}

// ErrUnknownPatient: lockouts clear was given an id the directory lacks.
var ErrUnknownPatient = errors.New("unknown patient id")

// ClearLock lifts a patient's or a number's lock through the reference AS's
// own logic, so the clear is audited like any other decision. An unknown
// patient id, or a patient or number that is not locked, is an error:
// nothing is written.
func ClearLock(ctx context.Context, cfg Config, patientIDOrNumber string) error {
	st, _, as, err := operatorAS(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if !strings.HasPrefix(patientIDOrNumber, "+") {
		if _, err := st.GetPatient(ctx, patientIDOrNumber); errors.Is(err, session.ErrNotFound) {
			return fmt.Errorf("%w %q", ErrUnknownPatient, patientIDOrNumber)
		} else if err != nil {
			return err
		}
	}
	until, err := as.LockUntil(ctx, patientIDOrNumber)
	if err != nil {
		return err
	}
	if until.IsZero() {
		return fmt.Errorf("%s is not locked", patientIDOrNumber)
	}
	return as.ClearLock(ctx, patientIDOrNumber)
}
