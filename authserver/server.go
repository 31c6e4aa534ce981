// Package authserver is the reference authorization server of the voice KBA
// profile (docs/kba-profile.md): RFC 8414 metadata, the FiPA authorization
// challenge endpoint, the token endpoint (authorization_code + PKCE,
// refresh_token rotation, RFC 8693 token exchange), JWKS, RFC 7662
// introspection and RFC 7009 revocation.
//
// All state — auth sessions, codes, refresh tokens, OTPs, lockout counters —
// lives in a session.Store, so several instances sharing one store enforce
// the same limits.
package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/session"
)

// Scopes of the demo resource and the assurance each needs.
const (
	ScopeAppointmentsRead    = "appointments:read"
	ScopeMedicationsRead     = "medications:read"
	ScopePrescriptionsRefill = "prescriptions:refill"
)

// maxBody is the largest request body any endpoint reads.
const maxBody = 64 << 10

// Config configures a Server. Zero values take the defaults of KBA-PROFILE.md.
type Config struct {
	Issuer         string // e.g. http://127.0.0.1:8081
	Store          Store
	Pepper         []byte            // HMAC key for DOB / SSN-4 references
	LogKey         []byte            // key for session.Pseudonym in logs and audit
	SigningKeys    []jose.JSONWebKey // ES256 private keys; first signs, all are published
	Clients        []Client
	Resources      []string // allow list for `resource` (RFC 8707)
	OTP            OTPChannel
	TrustedIssuers []TrustedIssuer // RFC 8693 subject-token issuers
	Policy         Policy
	// Registry holds the clients added with `voiceauth clients add`,
	// consulted after Clients; nil = Clients only.
	Registry *Registry
	// ScopeACR says which acr each scope needs; nil → the demo scopes
	// (appointments:read at kba, medications:read and prescriptions:refill at kba-otp).
	ScopeACR   map[string]string
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
}

// Client is a registered OAuth client.
type Client struct {
	ID            string
	Secret        string   // hashed at New into SecretSHA256 when set
	SecretSHA256  [32]byte // client_secret_basic; zero = no secret
	JWKS          *jose.JSONWebKeySet
	FirstParty    bool     // may use the authorization challenge endpoint
	Scopes        []string // scopes it may ask for; nil = all known
	Resources     []string // resources it may ask for; nil = all allowed
	TokenExchange bool     // may use RFC 8693
	Kind          string   // voice | host | exchange (registry kinds); "" = none of them

	PrevSecretSHA256 [32]byte  // a rotated-out secret, accepted …
	PrevSecretUntil  time.Time // … until then
}

// Policy holds the limits of the profile. Zero fields take the defaults.
type Policy struct {
	SessionIdle        time.Duration // 10 min
	SessionAbsolute    time.Duration // 30 min
	SessionRequestsMin int           // 10 requests per minute per auth_session
	SessionKBAFailures int           // 2 failed KBA submissions per auth_session

	IdentityFailures int             // 3 failures …
	IdentityWindow   time.Duration   // … in 15 min → lock
	IdentityLocks    []time.Duration // 15 min, 1 h, 24 h (escalating)
	IdentityCap24h   int             // 10 failures / 24 h → locked
	IdentityCap30d   int             // 20 failures / 30 days → locked

	NumberFailures int           // 5 failures per caller_phone …
	NumberWindow   time.Duration // … per hour → blocked
	NumberBlock    time.Duration // for 1 h

	// NumberIdentities distinct identities resolved from one caller_phone
	// within NumberIdentityWindow raise an alert (audit kba.number_identities):
	// the accepted residual of "no oracle through risk". Defaults 3, 24 h.
	NumberIdentities     int
	NumberIdentityWindow time.Duration

	OTPTTL       time.Duration // 10 min
	OTPChecks    int           // 5
	OTPSends     int           // 3 sends per identity …
	OTPSendEvery time.Duration // … per 10 min

	CodeTTL        time.Duration // 60 s
	AccessTokenTTL time.Duration // 10 min (never above 15 min)
	RefreshTTL     time.Duration // 12 h
	ReverifyAfter  time.Duration // 1 h: a refresh after this long since authentication needs KBA again
	ExchangeMaxACR string        // default cap for exchanged tokens: kba

	// WebOnlyScopes are scopes the AS grants only in a browser: asking for
	// one at the challenge endpoint answers redirect_to_web.
	WebOnlyScopes []string
}

func (p Policy) withDefaults() Policy {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defi := func(i *int, v int) {
		if *i <= 0 {
			*i = v
		}
	}
	def(&p.SessionIdle, 10*time.Minute)
	def(&p.SessionAbsolute, 30*time.Minute)
	defi(&p.SessionRequestsMin, 10)
	defi(&p.SessionKBAFailures, 2)
	defi(&p.IdentityFailures, 3)
	def(&p.IdentityWindow, 15*time.Minute)
	if len(p.IdentityLocks) == 0 {
		p.IdentityLocks = []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour}
	}
	defi(&p.IdentityCap24h, 10)
	defi(&p.IdentityCap30d, 20)
	defi(&p.NumberFailures, 5)
	def(&p.NumberWindow, time.Hour)
	def(&p.NumberBlock, time.Hour)
	defi(&p.NumberIdentities, 3)
	def(&p.NumberIdentityWindow, 24*time.Hour)
	def(&p.OTPTTL, 10*time.Minute)
	defi(&p.OTPChecks, 5)
	defi(&p.OTPSends, 3)
	def(&p.OTPSendEvery, 10*time.Minute)
	def(&p.CodeTTL, 60*time.Second)
	def(&p.AccessTokenTTL, 10*time.Minute)
	if p.AccessTokenTTL > 15*time.Minute {
		p.AccessTokenTTL = 15 * time.Minute
	}
	def(&p.RefreshTTL, 12*time.Hour)
	def(&p.ReverifyAfter, time.Hour)
	if p.ExchangeMaxACR == "" {
		p.ExchangeMaxACR = challenge.ACRKBA
	}
	return p
}

// Server is the authorization server. It is safe for concurrent use.
type Server struct {
	cfg      Config
	pol      Policy
	log      *slog.Logger
	now      func() time.Time
	clients  map[string]*Client
	keys     atomic.Pointer[signingKeys]
	scopeACR map[string]string
	trusted  *trustedSet
	dummyKey []byte // stand-in DOB/SSN-4 hash for unknown names: HMAC-sized, not the pepper
	pepper   *session.MAC
	dir      directory    // keyed directory keys (names, numbers on file)
	logMAC   *session.MAC // audit pseudonyms
	otpDown  atomic.Int64 // unix nanos until which the OTP channel counts as failing
}

// signingKeys is the AS's token keys: the first signs, all are published.
type signingKeys struct {
	signer jose.Signer
	keyID  string
	jwks   jose.JSONWebKeySet
}

// SetSigningKeys replaces the token keys while serving (key rotation): the
// first key signs new tokens, every key is published in the JWKS, so tokens
// signed under a key still listed keep verifying.
func (s *Server) SetSigningKeys(keys []jose.JSONWebKey) error {
	if len(keys) == 0 {
		return errors.New("authserver: at least one signing key is required")
	}
	first := keys[0]
	if first.KeyID == "" || !first.Valid() || first.IsPublic() {
		return errors.New("authserver: the first signing key must be a private key with a kid")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: first},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return fmt.Errorf("authserver: signer: %w", err)
	}
	sk := &signingKeys{signer: signer, keyID: first.KeyID}
	for _, k := range keys {
		pub := k.Public()
		pub.Use, pub.Algorithm = "sig", string(jose.ES256)
		sk.jwks.Keys = append(sk.jwks.Keys, pub)
	}
	s.keys.Store(sk)
	return nil
}

// New validates cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("authserver: Issuer is required")
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || u.Scheme == "" || u.Host == "" || u.Fragment != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("authserver: Issuer %q is not an absolute URL without query or fragment", cfg.Issuer)
	}
	if cfg.Store == nil {
		return nil, errors.New("authserver: Store is required")
	}
	if len(cfg.Pepper) < 16 {
		return nil, errors.New("authserver: Pepper must be at least 16 bytes")
	}
	if len(cfg.SigningKeys) == 0 {
		return nil, errors.New("authserver: at least one signing key is required")
	}
	s := &Server{cfg: cfg, pol: cfg.Policy.withDefaults(), log: cfg.Logger, now: cfg.Now, clients: map[string]*Client{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.HTTPClient == nil {
		s.cfg.HTTPClient = http.DefaultClient
	}
	s.cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	s.scopeACR = cfg.ScopeACR
	if s.scopeACR == nil {
		s.scopeACR = map[string]string{
			ScopeAppointmentsRead:    challenge.ACRKBA,
			ScopeMedicationsRead:     challenge.ACRKBAOTP,
			ScopePrescriptionsRefill: challenge.ACRKBAOTP,
		}
	}
	for _, w := range s.pol.WebOnlyScopes {
		if _, ok := s.scopeACR[w]; !ok {
			s.scopeACR[w] = challenge.ACRKBAOTP
		}
	}
	for i := range cfg.Clients {
		c := cfg.Clients[i]
		if c.ID == "" {
			return nil, errors.New("authserver: client without ID")
		}
		if c.Secret != "" {
			c.SecretSHA256 = sha256.Sum256([]byte(c.Secret))
			c.Secret = ""
		}
		if c.SecretSHA256 == [32]byte{} && c.JWKS == nil {
			return nil, fmt.Errorf("authserver: client %q has neither a secret nor a JWKS", c.ID)
		}
		if _, dup := s.clients[c.ID]; dup {
			return nil, fmt.Errorf("authserver: duplicate client %q", c.ID)
		}
		s.clients[c.ID] = &c
	}
	for _, r := range cfg.Resources {
		if !validResource(r) {
			return nil, fmt.Errorf("authserver: resource %q is not an absolute URI without fragment", r)
		}
	}
	if err := s.SetSigningKeys(cfg.SigningKeys); err != nil {
		return nil, err
	}
	s.trusted = newTrustedSet(s.cfg.Issuer, cfg.TrustedIssuers, s.cfg.HTTPClient, s.now)
	s.pepper, s.logMAC = session.NewMAC(cfg.Pepper), session.NewMAC(cfg.LogKey)
	s.dummyKey = dummyHash(s.pepper)
	s.dir = newDirectory(cfg.Pepper)
	return s, nil
}

// Metadata is the RFC 8414 document served at /.well-known/oauth-authorization-server.
func (s *Server) Metadata() challenge.ASMetadata {
	iss := s.cfg.Issuer
	scopes := make([]string, 0, len(s.scopeACR))
	for sc := range s.scopeACR {
		scopes = append(scopes, sc)
	}
	slices.Sort(scopes)
	return challenge.ASMetadata{
		Issuer:                            iss,
		AuthorizationChallengeEndpoint:    iss + "/challenge",
		TokenEndpoint:                     iss + "/token",
		JWKSURI:                           iss + "/jwks",
		IntrospectionEndpoint:             iss + "/introspect",
		RevocationEndpoint:                iss + "/revoke",
		ScopesSupported:                   scopes,
		ResponseTypesSupported:            []string{"code"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token", challenge.GrantTypeTokenExchange},
		CodeChallengeMethodsSupported:     []string{"S256"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "private_key_jwt"},
		TokenEndpointAuthSigningAlgs:      assertionAlgNames(),
		KBAFieldsSupported:                []string{challenge.FieldName, challenge.FieldBirthdate, challenge.FieldSSNLast4},
		ACRValuesSupported:                []string{challenge.ACRKBA, challenge.ACRKBAOTP},
		AuthorizationResponseISSSupported: true, // every challenge response carries iss (iss.go)
	}
}

// Handler serves every endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	wk := "/.well-known/oauth-authorization-server"
	if u, _ := url.Parse(s.cfg.Issuer); u != nil && u.Path != "" && u.Path != "/" {
		wk += u.Path // RFC 8414 §3.1: path-inserted form
	}
	mux.HandleFunc("GET "+wk, s.handleMetadata)
	mux.HandleFunc("GET /jwks", s.handleJWKS)
	mux.HandleFunc("POST /challenge", s.form(s.withIss(s.handleChallenge)))
	mux.HandleFunc("POST /token", s.form(s.handleToken))
	mux.HandleFunc("POST /introspect", s.form(s.handleIntrospect))
	mux.HandleFunc("POST /revoke", s.form(s.handleRevoke))
	return noStore(mux)
}

func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Metadata())
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	b, _ := json.Marshal(s.keys.Load().jwks)
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// formHandler handles one parsed form request; it returns the JSON body of a
// 200 answer or an *oauthError.
type formHandler func(ctx context.Context, r *http.Request, f url.Values) (any, error)

// form enforces the body limit and the content type, parses the form strictly
// (parseForm) and writes the answer.
func (s *Server) form(h formHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.writeErr(w, newErr(errTooLarge, "body larger than 64 KiB"))
				return
			}
			s.writeErr(w, newErr(challenge.ErrInvalidRequest, "unreadable body"))
			return
		}
		ct := r.Header.Get("Content-Type")
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		if !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
			s.writeErr(w, newErr(challenge.ErrInvalidRequest, "body must be application/x-www-form-urlencoded"))
			return
		}
		f, err := parseForm(body)
		if err != nil {
			s.writeErr(w, newErr(challenge.ErrInvalidRequest, err.Error()))
			return
		}
		out, err := h(r.Context(), r, f)
		if err != nil {
			var oe *oauthError
			if !errors.As(err, &oe) {
				if r.Context().Err() != nil {
					// The client stopped waiting; nothing failed on our side.
					s.log.Warn("authserver: client went away", "path", r.URL.Path, "err_kind", "canceled")
				} else {
					s.log.Error("authserver: internal error", "path", r.URL.Path, "error", err.Error(), "err_kind", errKind(err))
				}
				oe = newErr(errServerError, "")
			}
			s.writeErr(w, oe)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) writeErr(w http.ResponseWriter, e *oauthError) {
	st := statusOf(e.resp.Error)
	if st == http.StatusUnauthorized && e.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="voiceauth", charset="UTF-8"`)
	}
	writeJSON(w, st, e.resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// parseForm parses an application/x-www-form-urlencoded body strictly: every
// parameter except `resource` and `audience` may appear at most once (RFC 6749 §3.1),
// and values must be valid UTF-8 without control characters other than none.
func parseForm(body []byte) (url.Values, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("malformed form body")
	}
	for k, vs := range v {
		if len(vs) > 1 && k != "resource" && k != "audience" {
			return nil, fmt.Errorf("parameter %q repeated", safeName(k))
		}
		for _, x := range vs {
			if !validText(x) {
				return nil, fmt.Errorf("parameter %q is not valid text", safeName(k))
			}
		}
	}
	return v, nil
}

// safeName keeps an attacker-chosen parameter name out of error text unless it is short and plain.
func safeName(k string) string {
	if len(k) > 32 {
		return "?"
	}
	for _, c := range k {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return "?"
		}
	}
	return k
}

func validText(s string) bool {
	for _, c := range s {
		if c == 0xFFFD || c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validResource: absolute URI, no fragment (RFC 8707 §2).
func validResource(r string) bool {
	u, err := url.Parse(r)
	return err == nil && u.IsAbs() && u.Host != "" && u.Fragment == "" && !strings.Contains(r, "#")
}

func (s *Server) resourceAllowed(c *Client, r string) bool {
	if !validResource(r) || !slices.Contains(s.cfg.Resources, r) {
		return false
	}
	return c.Resources == nil || slices.Contains(c.Resources, r)
}

// parseScope validates a space-delimited scope against the known scopes and
// the client's allow list.
func (s *Server) parseScope(c *Client, raw string) ([]string, *oauthError) {
	if raw == "" {
		raw = ScopeAppointmentsRead
	}
	var out []string
	for _, sc := range strings.Fields(raw) {
		if _, ok := s.scopeACR[sc]; !ok {
			return nil, newErr(challenge.ErrInvalidScope, "unknown scope")
		}
		if c.Scopes != nil && !slices.Contains(c.Scopes, sc) {
			return nil, newErr(challenge.ErrInvalidScope, "scope not allowed for this client")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, newErr(challenge.ErrInvalidScope, "empty scope")
	}
	slices.Sort(out)
	return out, nil
}

// acrRank orders the assurance levels; unknown acrs rank 0.
func acrRank(acr string) int {
	switch acr {
	case challenge.ACRKBA:
		return 1
	case challenge.ACRKBAOTP:
		return 2
	}
	return 0
}

// scopesFor keeps only the scopes the acr allows.
func (s *Server) scopesFor(scopes []string, acr string) []string {
	var out []string
	for _, sc := range scopes {
		if need, ok := s.scopeACR[sc]; ok && acrRank(acr) >= acrRank(need) {
			out = append(out, sc)
		}
	}
	return out
}

// neededACR is the highest acr any of the scopes needs.
func (s *Server) neededACR(scopes []string) string {
	best := challenge.ACRKBA
	for _, sc := range scopes {
		if acrRank(s.scopeACR[sc]) > acrRank(best) {
			best = s.scopeACR[sc]
		}
	}
	return best
}

func amrFor(acr string) []string {
	if acr == challenge.ACRKBAOTP {
		return []string{"kba", "otp", "sms"}
	}
	return []string{"kba"}
}

// audit writes one audit record; failures are logged, never returned (the
// decision has been made already).
func (s *Server) audit(ctx context.Context, typ, actor, subject, number, callRef, outcome string, detail map[string]string) {
	if err := s.cfg.Store.AppendAudit(ctx, s.auditEvent(typ, actor, subject, number, callRef, outcome, detail)); err != nil {
		s.log.Error("authserver: audit append failed", "type", typ, "err", err)
	}
}

// auditEvent is one decision's audit record, identifiers pseudonymized.
func (s *Server) auditEvent(typ, actor, subject, number, callRef, outcome string, detail map[string]string) *session.AuditEvent {
	e := &session.AuditEvent{Time: s.now(), Type: typ, Actor: actor, CallRef: callRef, Outcome: outcome, Detail: detail}
	if subject != "" {
		e.Subject = s.logMAC.Pseudonym("patient", subject)
	}
	if number != "" {
		e.Number = s.logMAC.Pseudonym("number", number)
	}
	return e
}
