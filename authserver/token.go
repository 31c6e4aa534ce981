package authserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/session"
)

// AccessClaims are the RFC 9068 claims of an access token.
type AccessClaims struct {
	jwt.Claims
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time,omitempty"`
}

// grant is what a token is issued for.
type grant struct {
	client   string
	subject  string
	resource string
	scope    []string
	acr      string
	authTime time.Time
	callRef  string // carried into refresh tokens for re-verification
}

// mintAccess signs an RFC 9068 JWT access token.
func (s *Server) mintAccess(g grant) (tok, jti string, exp time.Time, err error) {
	now := s.now()
	exp = now.Add(s.pol.AccessTokenTTL)
	jti = randomToken(16)
	c := AccessClaims{
		Claims: jwt.Claims{Issuer: s.cfg.Issuer, Subject: g.subject, Audience: jwt.Audience{g.resource},
			Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ID: jti},
		ClientID: g.client, Scope: strings.Join(g.scope, " "), ACR: g.acr, AMR: amrFor(g.acr),
	}
	if !g.authTime.IsZero() {
		c.AuthTime = g.authTime.Unix()
	}
	tok, err = jwt.Signed(s.keys.Load().signer).Claims(c).Serialize()
	return tok, jti, exp, err
}

func (s *Server) handleToken(ctx context.Context, r *http.Request, f url.Values) (any, error) {
	c, oe := s.authenticateClient(ctx, r, f, s.cfg.Issuer+"/token")
	if oe != nil {
		return nil, oe
	}
	switch f.Get("grant_type") {
	case "authorization_code":
		return s.grantCode(ctx, c, f)
	case "refresh_token":
		return s.grantRefresh(ctx, c, f)
	case challenge.GrantTypeTokenExchange:
		return s.grantExchange(ctx, c, f)
	case "":
		return nil, newErr(challenge.ErrInvalidRequest, "grant_type is required")
	}
	return nil, newErr(challenge.ErrUnsupportedGrantType, "")
}

func pkceS256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range v {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	return true
}

func (s *Server) grantCode(ctx context.Context, c *Client, f url.Values) (any, error) {
	code := f.Get("code")
	if code == "" {
		return nil, newErr(challenge.ErrInvalidRequest, "code is required")
	}
	rec, err := s.cfg.Store.GetRecord(ctx, kindCode, hashKey(code))
	if errors.Is(err, session.ErrNotFound) {
		return nil, newErr(challenge.ErrInvalidGrant, "")
	}
	if err != nil {
		return nil, err
	}
	var cd codeData
	if json.Unmarshal(rec.Data, &cd) != nil {
		return nil, newErr(challenge.ErrInvalidGrant, "")
	}
	now := s.now()
	if cd.Used {
		// RFC 6749 §4.1.2: a second redemption revokes what the first issued.
		s.revokeIssued(ctx, cd.JTI, cd.Family, now)
		s.audit(ctx, "code.reused", c.ID, cd.Subject, "", "", "revoked", nil)
		return nil, newErr(challenge.ErrInvalidGrant, "")
	}
	if now.Sub(cd.Issued) > s.pol.CodeTTL || cd.Client != c.ID {
		return nil, newErr(challenge.ErrInvalidGrant, "")
	}
	verifier := f.Get("code_verifier")
	if !validVerifier(verifier) || subtle.ConstantTimeCompare([]byte(pkceS256(verifier)), []byte(cd.Challenge)) != 1 {
		return nil, newErr(challenge.ErrInvalidGrant, "")
	}
	if rs := f["resource"]; len(rs) > 1 || (len(rs) == 1 && rs[0] != cd.Resource) {
		return nil, newErr(challenge.ErrInvalidTarget, "")
	}
	// Mark used first (CAS): of two racing redemptions exactly one proceeds.
	cd.Used = true
	cd.JTI = ""
	cd.Family = randomToken(16)
	g := grant{client: c.ID, subject: cd.Subject, resource: cd.Resource, scope: cd.Scope, acr: cd.ACR, authTime: cd.AuthTime, callRef: cd.CallRef}
	tok, jti, exp, err := s.mintAccess(g)
	if err != nil {
		return nil, err
	}
	cd.JTI = jti
	rec.Data, _ = json.Marshal(cd)
	if err := s.cfg.Store.UpdateRecord(ctx, rec); err != nil {
		if errors.Is(err, session.ErrConflict) {
			return nil, newErr(challenge.ErrInvalidGrant, "")
		}
		return nil, err
	}
	rt, err := s.newRefresh(ctx, cd.Family, g, jti, false)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "token.issued", c.ID, cd.Subject, "", "", "issued", map[string]string{"grant": "authorization_code", "acr": cd.ACR, "jti": jti})
	return tokenResponse{TokenResponse: challenge.TokenResponse{AccessToken: tok, TokenType: "Bearer",
		ExpiresIn: int(exp.Sub(s.now()).Round(time.Second).Seconds()), RefreshToken: rt, Scope: strings.Join(g.scope, " ")},
		AuthSession: s.rotateSession(ctx, cd.Session, cd.SessionData)}, nil
}

// tokenResponse adds FiPA's auth_session to the RFC 6749 token response, so
// that a client which got its code on the first request can still step up.
type tokenResponse struct {
	challenge.TokenResponse
	AuthSession string `json:"auth_session,omitempty"`
}

// rotateSession moves the auth_session behind a redeemed code to a fresh
// value (the old one stops working) and returns it; "" when it is gone.
//
// A session whose code was issued on its very first request was never
// written (its value was never handed out); its state rides in the code
// record (pending) and is stored here for the first time.
func (s *Server) rotateSession(ctx context.Context, key string, pending []byte) string {
	if key == "" {
		return ""
	}
	next := randomToken(32)
	if pending != nil {
		var as authSession
		if json.Unmarshal(pending, &as) != nil {
			return ""
		}
		rec := &session.Record{Kind: kindAuthSession, Key: hashKey(next), Data: pending, ExpiresAt: s.sessionExpiry(&as, s.now())}
		if err := s.cfg.Store.PutRecord(ctx, rec); err != nil {
			if ctx.Err() != nil {
				s.log.Warn("authserver: store auth_session: client went away", "err_kind", "canceled")
			} else {
				s.log.Error("authserver: store auth_session", "error", err.Error(), "err_kind", errKind(err))
			}
			return ""
		}
		return next
	}
	rec, err := s.cfg.Store.GetRecord(ctx, kindAuthSession, key)
	if err != nil {
		return ""
	}
	nrec := &session.Record{Kind: kindAuthSession, Key: hashKey(next), Data: rec.Data, ExpiresAt: rec.ExpiresAt}
	if err := s.cfg.Store.PutRecord(ctx, nrec); err != nil {
		s.log.Error("authserver: rotate auth_session", "err", err)
		return ""
	}
	if err := s.cfg.Store.DeleteRecord(ctx, kindAuthSession, key); err != nil {
		s.cfg.Store.DeleteRecord(ctx, kindAuthSession, nrec.Key)
		return ""
	}
	return next
}

// refreshData is the stored form of a refresh token.
type refreshData struct {
	Family   string    `json:"family"`
	Client   string    `json:"client"`
	Subject  string    `json:"sub"`
	Resource string    `json:"resource"`
	Scope    []string  `json:"scope"`
	ACR      string    `json:"acr"`
	AuthTime time.Time `json:"auth_time"`
	CallRef  string    `json:"call_ref,omitempty"`
	Used     bool      `json:"used"`
	JTI      string    `json:"jti,omitempty"` // access token issued with this refresh token
}

type familyData struct {
	Revoked bool     `json:"revoked"`
	JTIs    []string `json:"jtis,omitempty"`
}

// newRefresh stores a refresh token of the family. The family record is
// written only from the first rotation on (it lists the access tokens issued
// by rotations, so a reuse revokes them all); before that, "no family
// record" means "not revoked" and the first access token is named by the code.
func (s *Server) newRefresh(ctx context.Context, family string, g grant, jti string, rotation bool) (string, error) {
	rt := randomToken(32)
	exp := s.now().Add(s.pol.RefreshTTL)
	data, _ := json.Marshal(refreshData{Family: family, Client: g.client, Subject: g.subject, Resource: g.resource,
		Scope: g.scope, ACR: g.acr, AuthTime: g.authTime, CallRef: g.callRef})
	if err := s.cfg.Store.PutRecord(ctx, &session.Record{Kind: kindRefresh, Key: hashKey(rt), Data: data, ExpiresAt: exp}); err != nil {
		return "", err
	}
	if !rotation {
		return rt, nil
	}
	err := s.updateFamily(ctx, family, exp.Add(s.pol.RefreshTTL), func(fd *familyData) error {
		if fd.Revoked {
			return newErr(challenge.ErrInvalidGrant, "")
		}
		fd.JTIs = append(fd.JTIs, jti)
		return nil
	})
	if err != nil {
		return "", err
	}
	return rt, nil
}

// updateFamily applies fn to the family record (created when absent) with CAS retries.
func (s *Server) updateFamily(ctx context.Context, family string, exp time.Time, fn func(*familyData) error) error {
	for range 5 {
		var fd familyData
		rec, err := s.cfg.Store.GetRecord(ctx, kindFamily, family)
		switch {
		case errors.Is(err, session.ErrNotFound):
			rec = nil
		case err != nil:
			return err
		default:
			json.Unmarshal(rec.Data, &fd)
		}
		if err := fn(&fd); err != nil {
			return err
		}
		data, _ := json.Marshal(fd)
		if rec == nil {
			err = s.cfg.Store.PutRecord(ctx, &session.Record{Kind: kindFamily, Key: family, Data: data, ExpiresAt: exp})
		} else {
			rec.Data = data
			if exp.After(rec.ExpiresAt) {
				rec.ExpiresAt = exp
			}
			err = s.cfg.Store.UpdateRecord(ctx, rec)
		}
		if !errors.Is(err, session.ErrExists) && !errors.Is(err, session.ErrConflict) {
			return err
		}
	}
	return errors.New("authserver: refresh family contention")
}

func (s *Server) familyRevoked(ctx context.Context, family string) (bool, error) {
	rec, err := s.cfg.Store.GetRecord(ctx, kindFamily, family)
	if errors.Is(err, session.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var fd familyData
	json.Unmarshal(rec.Data, &fd)
	return fd.Revoked, nil
}

// revokeIssued revokes an access token by jti and a whole refresh family.
func (s *Server) revokeIssued(ctx context.Context, jti, family string, now time.Time) {
	if jti != "" {
		s.revokeJTI(ctx, jti)
	}
	if family == "" {
		return
	}
	var jtis []string
	err := s.updateFamily(ctx, family, now.Add(2*s.pol.RefreshTTL), func(fd *familyData) error {
		fd.Revoked = true
		jtis = fd.JTIs
		return nil
	})
	if err != nil {
		s.log.Error("authserver: revoke refresh family", "err", err)
	}
	for _, j := range jtis {
		s.revokeJTI(ctx, j)
	}
}

func (s *Server) revokeJTI(ctx context.Context, jti string) {
	exp := s.now().Add(s.pol.AccessTokenTTL + time.Minute)
	err := s.cfg.Store.PutRecord(ctx, &session.Record{Kind: kindRevokedJTI, Key: jti, Data: []byte{1}, ExpiresAt: exp})
	if err != nil && !errors.Is(err, session.ErrExists) {
		s.log.Error("authserver: revoke jti", "err", err)
	}
	// The shared record the resource servers check on every request.
	if err := s.cfg.Store.RevokeToken(ctx, jti, exp); err != nil {
		s.log.Error("authserver: revoke jti for resource servers", "err", err)
	}
}

func (s *Server) grantRefresh(ctx context.Context, c *Client, f url.Values) (any, error) {
	rt := f.Get("refresh_token")
	if rt == "" {
		return nil, newErr(challenge.ErrInvalidRequest, "refresh_token is required")
	}
	rec, err := s.cfg.Store.GetRecord(ctx, kindRefresh, hashKey(rt))
	if errors.Is(err, session.ErrNotFound) {
		return nil, newErr(challenge.ErrInvalidGrant, "")
	}
	if err != nil {
		return nil, err
	}
	var rd refreshData
	if json.Unmarshal(rec.Data, &rd) != nil || rd.Client != c.ID {
		return nil, newErr(challenge.ErrInvalidGrant, "")
	}
	now := s.now()
	if rd.Used {
		s.revokeIssued(ctx, rd.JTI, rd.Family, now)
		s.audit(ctx, "refresh.reused", c.ID, rd.Subject, "", "", "family_revoked", nil)
		return nil, newErr(challenge.ErrInvalidGrant, "")
	}
	if revoked, err := s.familyRevoked(ctx, rd.Family); err != nil {
		return nil, err
	} else if revoked {
		return nil, newErr(challenge.ErrInvalidGrant, "")
	}
	if rs := f["resource"]; len(rs) > 1 || (len(rs) == 1 && rs[0] != rd.Resource) {
		return nil, newErr(challenge.ErrInvalidTarget, "")
	}
	scope := rd.Scope
	if f.Has("scope") {
		req, oe := s.parseScope(c, f.Get("scope"))
		if oe != nil {
			return nil, oe
		}
		for _, sc := range req {
			if !slices.Contains(rd.Scope, sc) {
				return nil, newErr(challenge.ErrInvalidScope, "refresh cannot widen the scope")
			}
		}
		scope = req
	}
	// A refresh long after the caller proved who they are needs the caller
	// again (checklist item 37): answer insufficient_authorization with a
	// fresh auth_session bound to the same client and call, which the client
	// resumes at the challenge endpoint. The refresh token stays unused.
	if now.Sub(rd.AuthTime) > s.pol.ReverifyAfter {
		return s.reverify(ctx, c, rd, now)
	}
	g := grant{client: c.ID, subject: rd.Subject, resource: rd.Resource, scope: scope, acr: rd.ACR, authTime: rd.AuthTime, callRef: rd.CallRef}
	tok, jti, exp, err := s.mintAccess(g)
	if err != nil {
		return nil, err
	}
	rd.Used, rd.JTI = true, jti
	rec.Data, _ = json.Marshal(rd)
	if err := s.cfg.Store.UpdateRecord(ctx, rec); err != nil {
		if errors.Is(err, session.ErrConflict) {
			return nil, newErr(challenge.ErrInvalidGrant, "")
		}
		return nil, err
	}
	g.scope = rd.Scope // the family keeps its original scope
	next, err := s.newRefresh(ctx, rd.Family, g, jti, true)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "token.issued", c.ID, rd.Subject, "", "", "issued", map[string]string{"grant": "refresh_token", "jti": jti})
	return challenge.TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(exp.Sub(now).Seconds()),
		RefreshToken: next, Scope: strings.Join(scope, " ")}, nil
}

func (s *Server) grantExchange(ctx context.Context, c *Client, f url.Values) (any, error) {
	if !c.TokenExchange {
		return nil, newErr(challenge.ErrUnauthorizedClient, "client may not exchange tokens")
	}
	subj, subjType := f.Get("subject_token"), f.Get("subject_token_type")
	if subj == "" || subjType == "" {
		return nil, newErr(challenge.ErrInvalidRequest, "subject_token and subject_token_type are required")
	}
	if f.Has("actor_token") != f.Has("actor_token_type") {
		return nil, newErr(challenge.ErrInvalidRequest, "actor_token and actor_token_type go together")
	}
	if f.Has("actor_token") {
		return nil, newErr(challenge.ErrInvalidRequest, "delegation (actor_token) is not supported")
	}
	if subjType != challenge.TokenTypeJWT && subjType != challenge.TokenTypeAccessToken && subjType != challenge.TokenTypeIDToken {
		return nil, newErr(challenge.ErrInvalidRequest, "unsupported subject_token_type")
	}
	if rt := f.Get("requested_token_type"); rt != "" && rt != challenge.TokenTypeAccessToken && rt != challenge.TokenTypeJWT {
		return nil, newErr(challenge.ErrInvalidRequest, "unsupported requested_token_type")
	}
	// Target: exactly one resource (or an audience naming one), allowed for this client.
	// An audience naming this AS itself (the ID-JAG convention, which the
	// challenge client follows) is not a second target.
	targets := append([]string{}, f["resource"]...)
	for _, a := range f["audience"] {
		if a != s.cfg.Issuer {
			targets = append(targets, a)
		}
	}
	slices.Sort(targets)
	targets = slices.Compact(targets)
	if len(targets) != 1 || !s.resourceAllowed(c, targets[0]) {
		return nil, newErr(challenge.ErrInvalidTarget, "")
	}
	resource := targets[0]
	scopes, oe := s.parseScope(c, f.Get("scope"))
	if oe != nil {
		return nil, oe
	}
	vt, err := s.trusted.verify(ctx, subj)
	if err != nil {
		s.log.Info("authserver: subject_token rejected", "reason", err.Error())
		s.audit(ctx, "exchange.rejected", c.ID, "", "", "", "invalid_request", map[string]string{"reason": err.Error()})
		return nil, newErr(challenge.ErrInvalidRequest, "subject_token not acceptable")
	}
	if _, err := s.cfg.Store.GetPatient(ctx, vt.subject); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			return nil, newErr(challenge.ErrInvalidRequest, "subject_token not acceptable")
		}
		return nil, err
	}
	// The acr is what the subject token vouches for, capped by the issuer's
	// MaxACR (or the policy default). No acr, or one this AS does not know,
	// vouches for nothing more than the lowest tier: it is never raised to
	// the cap.
	acr := vt.acr
	if acrRank(acr) == 0 {
		acr = challenge.ACRKBA
	}
	capACR := s.pol.ExchangeMaxACR
	if vt.maxACR != "" {
		capACR = vt.maxACR // configured per issuer
	}
	if acrRank(acr) > acrRank(capACR) {
		acr = capACR
	}
	granted := s.scopesFor(scopes, acr)
	if len(granted) == 0 {
		return nil, newErr(challenge.ErrInvalidScope, "no requested scope is allowed at this assurance")
	}
	// One exchange per subject token: its (issuer, jti) is kept until the
	// token could no longer be accepted (exp plus the 30 s leeway).
	if err := s.cfg.Store.UseJTI(ctx, hashKey("subject_jti|"+vt.issuer+"|"+vt.jti), vt.exp.Add(time.Minute)); err != nil {
		if errors.Is(err, session.ErrExists) {
			s.audit(ctx, "exchange.rejected", c.ID, vt.subject, "", "", "invalid_request", map[string]string{"reason": "jti replayed"})
			return nil, newErr(challenge.ErrInvalidRequest, "subject_token not acceptable")
		}
		return nil, err
	}
	g := grant{client: c.ID, subject: vt.subject, resource: resource, scope: granted, acr: acr, authTime: vt.authTime}
	tok, jti, exp, err := s.mintAccess(g)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "token.exchanged", c.ID, vt.subject, "", "", "issued", map[string]string{"issuer": vt.issuer, "acr": acr, "jti": jti})
	return challenge.TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(exp.Sub(s.now()).Seconds()),
		Scope: strings.Join(granted, " "), IssuedTokenType: challenge.TokenTypeAccessToken}, nil
}

// reverify opens a new auth_session for a refresh that needs the caller to
// prove who they are again.
func (s *Server) reverify(ctx context.Context, c *Client, rd refreshData, now time.Time) (any, error) {
	token := randomToken(32)
	as := authSession{Client: c.ID, CallRef: rd.CallRef, Created: now, Resource: rd.Resource, Scope: rd.Scope, Stage: stageKBA}
	data, _ := json.Marshal(as)
	rec := &session.Record{Kind: kindAuthSession, Key: hashKey(token), Data: data, ExpiresAt: s.sessionExpiry(&as, now)}
	if err := s.cfg.Store.PutRecord(ctx, rec); err != nil {
		return nil, err
	}
	s.audit(ctx, "refresh.reverify", c.ID, rd.Subject, "", rd.CallRef, "insufficient_authorization", nil)
	return nil, &oauthError{resp: challenge.ErrorResponse{Error: challenge.ErrInsufficientAuthorization, AuthSession: token, KBARequired: kbaAll}}
}
