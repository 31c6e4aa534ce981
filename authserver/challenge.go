package authserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/session"
)

// otpDownFor is how long one failed send marks the OTP channel as failing.
const otpDownFor = 2 * time.Minute

// Store record kinds owned by the AS.
const (
	kindAuthSession = "auth_session"
	kindCode        = "code"
	kindRefresh     = "refresh"
	kindFamily      = "refresh_family"
	kindRevokedJTI  = "revoked_jti"
	kindIdentity    = "identity_lock"
	kindNumber      = "number_block"
)

// Stages of an auth_session.
const (
	stageKBA  = "kba"
	stageOTP  = "otp"
	stageDone = "done"
)

// authSession is the stored state behind one auth_session value. The store
// seals Data at rest; partial answers live here only until all three are in.
type authSession struct {
	Client      string      `json:"client"`
	CallRef     string      `json:"call_ref,omitempty"`
	Created     time.Time   `json:"created"`
	Reqs        []time.Time `json:"reqs"`
	Resource    string      `json:"resource"`
	Scope       []string    `json:"scope"`
	Challenge   string      `json:"cc"`
	Name        string      `json:"n,omitempty"`
	DOB         string      `json:"d,omitempty"`
	SSN4        string      `json:"s,omitempty"`
	CallerPhone string      `json:"phone,omitempty"`
	Stir        string      `json:"stir,omitempty"`
	KBAFailures int         `json:"kba_failures"`
	Stage       string      `json:"stage"`
	Patient     string      `json:"patient,omitempty"`
	Phantom     bool        `json:"phantom,omitempty"` // OTP step after a mismatch: every code fails
	OTPRef      string      `json:"otp_ref,omitempty"`
	OTPChecks   int         `json:"otp_checks"`
	ACR         string      `json:"acr,omitempty"`
	AuthTime    time.Time   `json:"auth_time,omitzero"`
	// ACRWant is the strongest acr_values the client asked for (RFC 9470);
	// it raises the level the KBA stage asks for, like the scope does.
	ACRWant string `json:"acr_want,omitempty"`
	// UsedChallenges are the code_challenges that already got a code: every
	// code has its own verifier, so none is accepted again on this session.
	UsedChallenges []string `json:"used_cc,omitempty"`
	// OTPSentAt is when the live code was sent; Policy.OTPTTL runs from it
	// whatever the channel's own expiry.
	OTPSentAt time.Time `json:"otp_sent,omitzero"`
}

var (
	reDate  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	reSSN4  = regexp.MustCompile(`^\d{4}$`)
	reOTP   = regexp.MustCompile(`^\d{6}$`)
	reE164  = regexp.MustCompile(`^\+[1-9]\d{6,14}$`)
	rePKCE  = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	kbaAll  = []string{challenge.FieldName, challenge.FieldBirthdate, challenge.FieldSSNLast4}
	stirOK  = "TN-Validation-Passed-A"
	nameMax = 200
)

// challengeInput is the validated request.
type challengeInput struct {
	client                       *Client
	session                      string
	name, dob, ssn4, otp         string
	resend                       bool
	phone, stir, callRef         string
	scope                        []string
	scopeGiven                   bool
	resource, codeChallenge, acr string
	maxAge                       time.Duration // -1 when absent
}

func (s *Server) parseChallenge(ctx context.Context, r *http.Request, f url.Values) (*challengeInput, error) {
	c, oe := s.authenticateClient(ctx, r, f, s.cfg.Issuer+"/challenge")
	if oe != nil {
		return nil, oe
	}
	if !c.FirstParty {
		return nil, newErr(challenge.ErrUnauthorizedClient, "client may not use the authorization challenge endpoint")
	}
	in := &challengeInput{client: c, session: f.Get(challenge.FieldAuthSession)}
	rt := f.Get("response_type")
	switch {
	case rt == "" && in.session == "":
		return nil, newErr(challenge.ErrInvalidRequest, "response_type is required")
	case rt != "" && rt != "code":
		return nil, newErr(challenge.ErrUnsupportedResponseType, "only response_type=code")
	}
	bad := func(field string) error { return newErr(challenge.ErrInvalidRequest, field+" is malformed") }
	in.name = strings.TrimSpace(f.Get(challenge.FieldName))
	if len(in.name) > nameMax {
		return nil, bad(challenge.FieldName)
	}
	if in.dob = f.Get(challenge.FieldBirthdate); in.dob != "" {
		if _, err := time.Parse("2006-01-02", in.dob); err != nil || !reDate.MatchString(in.dob) {
			return nil, bad(challenge.FieldBirthdate)
		}
	}
	if in.ssn4 = f.Get(challenge.FieldSSNLast4); in.ssn4 != "" && !reSSN4.MatchString(in.ssn4) {
		return nil, bad(challenge.FieldSSNLast4)
	}
	if in.otp = f.Get(challenge.FieldOTP); in.otp != "" && !reOTP.MatchString(in.otp) {
		return nil, bad(challenge.FieldOTP)
	}
	switch f.Get(challenge.FieldOTPResend) {
	case "", "false":
	case "true":
		in.resend = true
	default:
		return nil, bad(challenge.FieldOTPResend)
	}
	if in.phone = f.Get(challenge.FieldCallerPhone); in.phone != "" && !reE164.MatchString(in.phone) {
		return nil, bad(challenge.FieldCallerPhone)
	}
	in.stir = f.Get(challenge.FieldStirVerstat)
	in.callRef = f.Get(challenge.FieldCallRef)
	if len(in.stir) > 64 || len(in.callRef) > 128 {
		return nil, newErr(challenge.ErrInvalidRequest, "field too long")
	}
	in.maxAge = -1
	if ma := f.Get("max_age"); ma != "" {
		n, err := strconv.Atoi(ma)
		if err != nil || n < 0 || len(ma) > 9 {
			return nil, bad("max_age")
		}
		in.maxAge = time.Duration(n) * time.Second
	}
	in.acr = f.Get("acr_values")
	for _, a := range strings.Fields(in.acr) {
		if acrRank(a) == 0 {
			return nil, newErr(challenge.ErrInvalidRequest, "unknown acr_values")
		}
	}
	in.scopeGiven = f.Has("scope")
	sc, oe := s.parseScope(c, f.Get("scope"))
	if oe != nil {
		return nil, oe
	}
	in.scope = sc
	if rs := f["resource"]; len(rs) > 1 {
		return nil, newErr(challenge.ErrInvalidTarget, "one resource per request")
	} else if len(rs) == 1 {
		in.resource = rs[0]
		if !s.resourceAllowed(c, in.resource) {
			return nil, newErr(challenge.ErrInvalidTarget, "resource not allowed")
		}
	}
	in.codeChallenge = f.Get("code_challenge")
	if in.codeChallenge != "" || f.Has("code_challenge_method") {
		if f.Get("code_challenge_method") != "S256" || !rePKCE.MatchString(in.codeChallenge) {
			return nil, newErr(challenge.ErrInvalidRequest, "code_challenge must be S256")
		}
	}
	if in.session == "" {
		if in.resource == "" {
			return nil, newErr(challenge.ErrInvalidTarget, "resource is required")
		}
		if in.codeChallenge == "" {
			return nil, newErr(challenge.ErrInvalidRequest, "code_challenge is required")
		}
		// The auth_session is bound to the call from its first request.
		if in.callRef == "" {
			return nil, newErr(challenge.ErrInvalidRequest, "call_ref is required")
		}
	}
	return in, nil
}

func (s *Server) handleChallenge(ctx context.Context, r *http.Request, f url.Values) (any, error) {
	in, err := s.parseChallenge(ctx, r, f)
	if err != nil {
		return nil, err
	}
	for _, sc := range in.scope {
		if slices.Contains(s.pol.WebOnlyScopes, sc) {
			s.audit(ctx, "challenge.redirect_to_web", in.client.ID, "", in.phone, in.callRef, "redirect_to_web", nil)
			return nil, newErr(challenge.ErrRedirectToWeb, "")
		}
	}
	now := s.now()
	var rec *session.Record
	var as authSession
	token := in.session
	if token == "" {
		token = randomToken(32)
		as = authSession{Client: in.client.ID, CallRef: in.callRef, Created: now, Resource: in.resource, Scope: in.scope,
			Challenge: in.codeChallenge, Stage: stageKBA, CallerPhone: in.phone, Stir: in.stir}
		rec = &session.Record{Kind: kindAuthSession, Key: hashKey(token)}
	} else {
		rec, err = s.cfg.Store.GetRecord(ctx, kindAuthSession, hashKey(token))
		if errors.Is(err, session.ErrNotFound) {
			return nil, newErr(challenge.ErrInvalidSession, "")
		}
		if err != nil {
			return nil, err
		}
		if json.Unmarshal(rec.Data, &as) != nil || as.Client != in.client.ID ||
			(as.CallRef != "" && in.callRef != as.CallRef) ||
			now.Sub(as.Created) >= s.pol.SessionAbsolute ||
			(len(as.Reqs) > 0 && now.Sub(as.Reqs[len(as.Reqs)-1]) >= s.pol.SessionIdle) {
			return nil, newErr(challenge.ErrInvalidSession, "")
		}
		if in.resource != "" && in.resource != as.Resource {
			return nil, newErr(challenge.ErrInvalidTarget, "resource differs from the one this session is for")
		}
		if in.phone != "" {
			as.CallerPhone = in.phone
		}
		if in.stir != "" {
			as.Stir = in.stir
		}
	}
	// Requests per minute on this auth_session, kept inside the record so the
	// CAS update makes it exact across instances.
	cut := now.Add(-time.Minute)
	as.Reqs = slices.DeleteFunc(as.Reqs, func(t time.Time) bool { return !t.After(cut) })
	as.Reqs = append(as.Reqs, now)
	if len(as.Reqs) > s.pol.SessionRequestsMin {
		return s.deny(ctx, rec, &as, in, "session.rate_limited")
	}
	if as.CallerPhone != "" {
		blocked, err := s.numberBlocked(ctx, as.CallerPhone, now)
		if err != nil {
			return nil, err
		}
		if blocked {
			return s.deny(ctx, rec, &as, in, "number.blocked")
		}
	}
	st := &step{s: s, ctx: ctx, rec: rec, as: &as, in: in, token: token, now: now}
	return st.run()
}

// step carries one challenge request through the session's state machine.
type step struct {
	s     *Server
	ctx   context.Context
	rec   *session.Record
	as    *authSession
	in    *challengeInput
	token string
	now   time.Time
}

func (st *step) run() (any, error) {
	as, in := st.as, st.in
	if err := st.takeChallenge(); err != nil {
		return nil, err
	}
	switch as.Stage {
	case stageKBA:
		if in.name != "" {
			as.Name = in.name
		}
		if in.dob != "" {
			as.DOB = in.dob
		}
		if in.ssn4 != "" {
			as.SSN4 = in.ssn4
		}
		if in.scopeGiven {
			as.Scope = in.scope
		}
		if in.acr != "" {
			as.ACRWant = strongestACR(in.acr)
		}
		var missing []string
		for i, v := range []string{as.Name, as.DOB, as.SSN4} {
			if v == "" {
				missing = append(missing, kbaAll[i])
			}
		}
		if len(missing) > 0 {
			if err := st.save(); err != nil {
				return nil, err
			}
			return nil, &oauthError{resp: challenge.ErrorResponse{Error: challenge.ErrInsufficientAuthorization, AuthSession: st.token, KBARequired: missing}}
		}
		return st.verifyKBA()
	case stageOTP:
		return st.otpStep()
	case stageDone:
		return st.reenter()
	}
	return nil, newErr(challenge.ErrInvalidSession, "")
}

// takeChallenge binds the request's code_challenge to the session. A
// challenge that already got a code on this session is refused (every code
// has its own verifier), and a code can only be issued against one: a
// session without a live challenge (a re-entry, or a re-verification opened
// by a refresh) must be sent a fresh one.
func (st *step) takeChallenge() error {
	as, in := st.as, st.in
	if in.codeChallenge != "" {
		if slices.Contains(as.UsedChallenges, in.codeChallenge) {
			return newErr(challenge.ErrInvalidRequest, "code_challenge already used for a code: send a fresh one")
		}
		as.Challenge = in.codeChallenge
	}
	if as.Challenge == "" {
		return newErr(challenge.ErrInvalidRequest, "code_challenge is required for a new code")
	}
	return nil
}

// strongestACR is the highest-ranked of space-separated acr values (all are
// known: parseChallenge refuses unknown ones).
func strongestACR(values string) string {
	best := ""
	for _, a := range strings.Fields(values) {
		if acrRank(a) > acrRank(best) {
			best = a
		}
	}
	return best
}

// wantACR is the level this session must reach: what its scope needs, or
// more when the client asked for more with acr_values.
func (s *Server) wantACR(as *authSession) string {
	want := s.neededACR(as.Scope)
	if acrRank(as.ACRWant) > acrRank(want) {
		want = as.ACRWant
	}
	return want
}

// sessionExpiry is the earlier of the idle and the absolute deadline.
func (s *Server) sessionExpiry(as *authSession, now time.Time) time.Time {
	exp := as.Created.Add(s.pol.SessionAbsolute)
	if idle := now.Add(s.pol.SessionIdle); idle.Before(exp) {
		exp = idle
	}
	return exp
}

// save writes the session (create or CAS update) with its sliding expiry.
func (st *step) save() error {
	data, err := json.Marshal(st.as)
	if err != nil {
		return err
	}
	st.rec.Data, st.rec.ExpiresAt = data, st.s.sessionExpiry(st.as, st.now)
	if st.rec.Version == 0 && st.in.session == "" {
		err = st.s.cfg.Store.PutRecord(st.ctx, st.rec)
	} else {
		err = st.s.cfg.Store.UpdateRecord(st.ctx, st.rec)
	}
	if errors.Is(err, session.ErrConflict) {
		// A concurrent request on the same auth_session won; this one is not
		// applied, and the client must resend with the latest state.
		return newErr(challenge.ErrInvalidSession, "concurrent request on this auth_session")
	}
	return err
}

// deny ends the session: access_denied, and the auth_session is dead.
func (s *Server) deny(ctx context.Context, rec *session.Record, as *authSession, in *challengeInput, why string) (any, error) {
	if in.session != "" {
		if err := s.cfg.Store.DeleteRecord(ctx, kindAuthSession, rec.Key); err != nil {
			return nil, err
		}
	}
	s.audit(ctx, "challenge.denied", in.client.ID, as.Patient, as.CallerPhone, as.CallRef, "access_denied", map[string]string{"reason": why})
	return nil, newErr(challenge.ErrAccessDenied, "")
}

func (st *step) kbaRetry() error {
	return &oauthError{resp: challenge.ErrorResponse{Error: challenge.ErrInsufficientAuthorization, AuthSession: st.token, KBARequired: kbaAll, KBARetry: true}}
}

// otpRequired asks for the one-time code. While the OTP channel is failing
// (otpDownFor after a failed send), every answer that would ask for a new
// code — for a caller who matched and for a phantom alike, so the answer
// still says nothing about the KBA — is temporarily_unavailable instead:
// nobody is told a code was texted when none could be.
func (st *step) otpRequired(retry bool) error {
	if !retry && st.s.otpDown.Load() > st.now.UnixNano() {
		return newErr(errTemporarilyUnavailable, "one-time codes cannot be sent right now")
	}
	return &oauthError{resp: challenge.ErrorResponse{Error: challenge.ErrInsufficientAuthorization, AuthSession: st.token, OTPRequired: true, OTPRetry: retry}}
}

// verifyKBA resolves name + DOB + SSN-4 to exactly one patient, doing the
// same hashing and store work whether or not the name is known.
func (st *step) verifyKBA() (any, error) {
	s, as := st.s, st.as
	name, dob, ssn4 := as.Name, as.DOB, as.SSN4
	as.Name, as.DOB, as.SSN4 = "", "", ""
	cands, err := s.cfg.Store.FindPatients(st.ctx, s.dir.nameKeys(name))
	if err != nil {
		return nil, err
	}
	// Whether the calling number is on file for some patient depends on the
	// number only; it is looked up on every verification (timing).
	onFile, err := s.numberOnFile(st.ctx, as.CallerPhone)
	if err != nil {
		return nil, err
	}
	var match *session.Patient
	matches := 0
	// resolved: the patients whose name and DOB, or name and SSN-4, matched.
	// Only they (and the number) are charged with a failure: knowing a name
	// alone must not let anyone lock out everyone who sounds like it.
	var resolved []string
	work := cands
	if len(work) == 0 {
		work = []session.Patient{{ID: "pt-dummy", DOBHash: s.dummyKey, SSN4Hash: s.dummyKey}}
	}
	for i := range work {
		p := &work[i]
		okD := subtle.ConstantTimeCompare(fieldHash(s.pepper, p.ID, fieldDOB, dob), p.DOBHash)
		okS := subtle.ConstantTimeCompare(fieldHash(s.pepper, p.ID, fieldSSN4, ssn4), p.SSN4Hash)
		if len(cands) == 0 {
			continue
		}
		if okD&okS == 1 {
			matches++
			match = p
		}
		if okD|okS == 1 {
			resolved = append(resolved, p.ID)
		}
	}
	if matches != 1 {
		match = nil
	}
	// One lock read whatever happened (timing), on the matched patient, the
	// one partly resolved patient, or a stand-in.
	lockID := work[0].ID
	switch {
	case match != nil:
		lockID = match.ID
	case len(resolved) == 1:
		lockID = resolved[0]
	}
	locked, err := s.identityLocked(st.ctx, lockID, st.now)
	if err != nil {
		return nil, err
	}
	s.noteIdentities(st.ctx, as, resolved, st.now)
	if match == nil || locked {
		reason := "mismatch"
		switch {
		case locked:
			reason = "locked"
		case matches > 1:
			reason = "ambiguous"
		case len(cands) == 0:
			reason = "unknown"
		}
		if locked {
			resolved = slices.DeleteFunc(resolved, func(id string) bool { return id == lockID }) // not counted again
		}
		subject := ""
		if len(resolved) == 1 {
			subject = resolved[0]
		}
		return st.kbaFailed(resolved, subject, reason, onFile)
	}
	as.Patient = match.ID
	as.AuthTime = st.now
	as.ACR = challenge.ACRKBA
	if st.needsOTP(match.Phone) {
		as.Stage = stageOTP
		st.sendOTP(match)
		if err := st.save(); err != nil {
			return nil, err
		}
		s.audit(st.ctx, "kba.verified", st.in.client.ID, match.ID, as.CallerPhone, as.CallRef, "otp_required", nil)
		return nil, st.otpRequired(false)
	}
	return st.issueCode("kba.verified")
}

// noteIdentities records which identities a complete submission from a
// number resolved to (name + DOB or name + SSN-4, right answers included)
// and raises an alert once one number has tried NumberIdentities distinct
// ones within the window. Every submission from a number writes one event,
// resolved or not, so the work does not tell the caller what resolved. An
// alert is an audit record and a log line; it changes no answer.
func (s *Server) noteIdentities(ctx context.Context, as *authSession, resolved []string, now time.Time) {
	if as.CallerPhone == "" {
		return
	}
	prefix := "kba_try:" + numberKey(as.CallerPhone) + ":"
	evs := []session.EventWindow{{Key: "kba_try_none:" + numberKey(as.CallerPhone), Since: now}}
	if len(resolved) > 0 {
		evs = evs[:0]
		for _, id := range resolved {
			evs = append(evs, session.EventWindow{Key: prefix + identityKey(id), Since: now})
		}
	}
	if _, err := s.cfg.Store.AddEvents(ctx, now, evs); err != nil {
		s.log.Error("authserver: record identities tried", "err", err)
		return
	}
	n, err := s.cfg.Store.CountDistinct(ctx, prefix, now.Add(-s.pol.NumberIdentityWindow))
	if err != nil {
		s.log.Error("authserver: count identities tried", "err", err)
		return
	}
	if n >= s.pol.NumberIdentities && len(resolved) > 0 {
		s.log.Warn("authserver: one number resolved several identities", "number", s.logMAC.Pseudonym("number", as.CallerPhone), "identities", n)
		s.audit(ctx, "kba.number_identities", "authserver", "", as.CallerPhone, as.CallRef, "alert",
			map[string]string{"identities": strconv.Itoa(n)})
	}
}

// numberOnFile reports whether phone is the number on file of some patient.
func (s *Server) numberOnFile(ctx context.Context, phone string) (bool, error) {
	if phone == "" {
		return false, nil
	}
	ps, err := s.cfg.Store.FindPatients(ctx, []string{s.dir.phoneKey(phone)})
	return len(ps) > 0, err
}

// needsOTP is the profile's risk rule for answers that matched.
func (st *step) needsOTP(phoneOnFile string) bool {
	as := st.as
	return st.s.wantACR(as) == challenge.ACRKBAOTP ||
		!strings.HasPrefix(as.Stir, stirOK) ||
		as.CallerPhone == "" || as.CallerPhone != phoneOnFile
}

// kbaFailed counts the failure against the resolved identities and the
// number, and answers by the profile's "no oracle through risk" rule: the
// body depends only on the request's number, attestation and scope (and
// acr_values), never on whom the answers name or why they failed. From a
// number on file for some patient, A-attested, at the KBA tier: kba_retry;
// otherwise otp_required (a phantom OTP step where every code fails and
// nothing is sent).
func (st *step) kbaFailed(resolved []string, subject, reason string, numberOnFile bool) (any, error) {
	s, as := st.s, st.as
	as.KBAFailures++
	if err := s.countFailures(st.ctx, resolved, as.CallerPhone, st.now); err != nil {
		return nil, err
	}
	if s.wantACR(as) == challenge.ACRKBAOTP || !strings.HasPrefix(as.Stir, stirOK) || !numberOnFile {
		as.Stage, as.Phantom = stageOTP, true
		if err := st.save(); err != nil {
			return nil, err
		}
		s.audit(st.ctx, "kba.failed", st.in.client.ID, subject, as.CallerPhone, as.CallRef, "otp_required", map[string]string{"reason": reason})
		return nil, st.otpRequired(false)
	}
	if as.KBAFailures >= s.pol.SessionKBAFailures {
		s.audit(st.ctx, "kba.failed", st.in.client.ID, subject, as.CallerPhone, as.CallRef, "access_denied", map[string]string{"reason": reason})
		if err := s.cfg.Store.DeleteRecord(st.ctx, kindAuthSession, st.rec.Key); err != nil && st.in.session != "" {
			return nil, err
		}
		return nil, newErr(challenge.ErrAccessDenied, "")
	}
	if err := st.save(); err != nil {
		return nil, err
	}
	s.audit(st.ctx, "kba.failed", st.in.client.ID, subject, as.CallerPhone, as.CallRef, "kba_retry", map[string]string{"reason": reason})
	return nil, st.kbaRetry()
}

// sendOTP texts a code to the number on file when it is a mobile number and
// the send limit allows; otherwise nothing is sent and every code fails.
func (st *step) sendOTP(p *session.Patient) {
	s, as := st.s, st.as
	as.OTPRef, as.OTPChecks, as.OTPSentAt = "", 0, time.Time{}
	if p.LineType != "mobile" || s.cfg.OTP == nil {
		return
	}
	key := "otp_send:" + hashKey(p.ID)
	n, err := s.cfg.Store.CountEvents(st.ctx, key, st.now.Add(-s.pol.OTPSendEvery))
	if err != nil || n >= s.pol.OTPSends {
		return
	}
	if err := s.cfg.Store.AddEvent(st.ctx, key, st.now); err != nil {
		return
	}
	ref, err := s.cfg.OTP.Send(st.ctx, p.Phone)
	if err != nil {
		d := otpSendFailure(err)
		outcome := "otp_required"
		if otpChannelDown(d) {
			// The channel itself cannot send (Twilio unreachable, an
			// unwritable outbox): for a while every flow that would ask for a
			// new code, phantom or real, answers temporarily_unavailable, so no
			// caller is told a code was texted. An answer from Twilio (a
			// refusal, a rate limit, a 5xx) keeps the "texted" words (no
			// oracle); the IVR offers a person.
			outcome = "temporarily_unavailable"
			s.otpDown.Store(st.now.Add(otpDownFor).UnixNano())
		}
		s.log.Warn("authserver: OTP send failed", "subject", s.logMAC.Pseudonym("patient", p.ID), "reason", d["reason"], "twilio_code", d["twilio_code"])
		s.audit(st.ctx, "otp.send_failed", st.in.client.ID, p.ID, as.CallerPhone, as.CallRef, outcome, d)
		return
	}
	as.OTPRef, as.OTPSentAt = ref, st.now
}

func (st *step) otpStep() (any, error) {
	s, as, in := st.s, st.as, st.in
	if in.resend && in.otp == "" {
		if !as.Phantom {
			p, err := s.cfg.Store.GetPatient(st.ctx, as.Patient)
			if err != nil {
				return nil, err
			}
			keepChecks := as.OTPChecks
			st.sendOTP(p)
			as.OTPChecks = keepChecks
		}
		if err := st.save(); err != nil {
			return nil, err
		}
		s.audit(st.ctx, "otp.resend", in.client.ID, as.Patient, as.CallerPhone, as.CallRef, "otp_required", nil)
		return nil, st.otpRequired(false)
	}
	if in.otp == "" {
		if err := st.save(); err != nil {
			return nil, err
		}
		return nil, st.otpRequired(false)
	}
	as.OTPChecks++
	ok := false
	// Policy.OTPTTL is the AS's own limit on a code's life, on top of
	// whatever the channel enforces: an older code is not even checked.
	live := st.now.Before(as.OTPSentAt.Add(s.pol.OTPTTL))
	if !as.Phantom && as.OTPRef != "" && s.cfg.OTP != nil && live {
		var err error
		ok, err = s.cfg.OTP.Check(st.ctx, as.OTPRef, in.otp)
		if err != nil {
			return nil, err
		}
	}
	if ok {
		as.ACR, as.AuthTime, as.OTPRef = challenge.ACRKBAOTP, st.now, ""
		return st.issueCode("otp.verified")
	}
	if as.OTPChecks >= s.pol.OTPChecks {
		return s.deny(st.ctx, st.rec, as, in, "otp.checks_exhausted")
	}
	if err := st.save(); err != nil {
		return nil, err
	}
	s.audit(st.ctx, "otp.failed", in.client.ID, as.Patient, as.CallerPhone, as.CallRef, "otp_retry", nil)
	return nil, st.otpRequired(true)
}

// reenter handles a follow-up after a code was issued: a step-up (wider
// scope or acr_values above what was proven) asks for the OTP; otherwise a
// fresh code is issued at the proven level.
func (st *step) reenter() (any, error) {
	s, as, in := st.s, st.as, st.in
	if in.codeChallenge == "" {
		return nil, newErr(challenge.ErrInvalidRequest, "code_challenge is required for a new code")
	}
	as.Challenge = in.codeChallenge
	if in.scopeGiven {
		as.Scope = in.scope
	}
	want := s.neededACR(as.Scope)
	for _, a := range strings.Fields(in.acr) {
		if acrRank(a) > acrRank(want) {
			want = a
		}
	}
	// max_age (RFC 9470): a proof older than that needs a fresh one — the
	// code. max_age=0 asks for a fresh proof whatever the proof's age (as
	// prompt=login would), so it is stale even within the same second.
	stale := in.maxAge == 0 || (in.maxAge > 0 && st.now.Sub(as.AuthTime) > in.maxAge)
	if acrRank(want) <= acrRank(as.ACR) && !stale {
		return st.issueCode("code.reissued")
	}
	p, err := s.cfg.Store.GetPatient(st.ctx, as.Patient)
	if err != nil {
		return nil, err
	}
	as.Stage = stageOTP
	st.sendOTP(p)
	if err := st.save(); err != nil {
		return nil, err
	}
	s.audit(st.ctx, "stepup.otp_required", in.client.ID, as.Patient, as.CallerPhone, as.CallRef, "otp_required", nil)
	return nil, st.otpRequired(false)
}

// codeData is the stored form of an authorization code.
type codeData struct {
	Client    string    `json:"client"`
	Challenge string    `json:"cc"`
	Resource  string    `json:"resource"`
	Scope     []string  `json:"scope"`
	ACR       string    `json:"acr"`
	Subject   string    `json:"sub"`
	AuthTime  time.Time `json:"auth_time"`
	Issued    time.Time `json:"iat"`
	Used      bool      `json:"used"`
	Session   string    `json:"session,omitempty"` // store key of the auth_session, rotated on redemption
	// SessionData is the state of an auth_session that got its code on its
	// first request and so was never stored on its own.
	SessionData json.RawMessage `json:"session_data,omitempty"`
	CallRef     string          `json:"call_ref,omitempty"` // the call the auth_session was bound to
	JTI         string          `json:"jti,omitempty"`      // access token issued on redemption
	Family      string          `json:"family,omitempty"`   // refresh family issued on redemption
}

func (st *step) issueCode(event string) (any, error) {
	s, as := st.s, st.as
	as.Stage = stageDone
	scopes := s.scopesFor(as.Scope, as.ACR)
	if len(scopes) == 0 {
		return nil, newErr(challenge.ErrInvalidScope, "")
	}
	code := randomToken(32)
	cd := codeData{Client: as.Client, Challenge: as.Challenge, Resource: as.Resource, Scope: scopes,
		ACR: as.ACR, Subject: as.Patient, AuthTime: as.AuthTime, Issued: st.now, Session: st.rec.Key, CallRef: as.CallRef}
	as.UsedChallenges = append(as.UsedChallenges, as.Challenge)
	as.Challenge = ""            // one code per code_challenge
	fresh := st.in.session == "" // its value was never handed out: store it with the code
	if fresh {
		cd.SessionData, _ = json.Marshal(as)
	}
	data, _ := json.Marshal(cd)
	// Kept beyond its 60 s life so that a late second redemption still revokes.
	crec := &session.Record{Kind: kindCode, Key: hashKey(code), Data: data, ExpiresAt: st.now.Add(s.pol.CodeTTL + s.pol.AccessTokenTTL)}
	ev := s.auditEvent("code.issued", st.in.client.ID, as.Patient, as.CallerPhone, as.CallRef, "code_issued",
		map[string]string{"acr": as.ACR, "scope": strings.Join(scopes, " "), "via": event})
	if fresh {
		// The code and its audit record in one commit: no code without a record.
		if err := s.cfg.Store.PutRecordAudit(st.ctx, crec, ev); err != nil {
			return nil, err
		}
		return challenge.ChallengeSuccess{AuthorizationCode: code}, nil
	}
	if err := s.cfg.Store.PutRecord(st.ctx, crec); err != nil {
		return nil, err
	}
	if err := st.save(); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.AppendAudit(st.ctx, ev); err != nil {
		s.log.Error("authserver: audit append failed", "type", ev.Type, "err", err)
	}
	return challenge.ChallengeSuccess{AuthorizationCode: code}, nil
}
