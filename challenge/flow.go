package challenge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/go-resty/resty/v2"
)

// Flow is the serializable state of one challenge flow. The IVR persists it
// as JSON between webhook turns (sealed by the store: Verifier and
// AuthSession are secrets). Every method that talks to the AS keeps
// AuthSession at the latest value the AS sent.
type Flow struct {
	Resource          string `json:"resource"`
	Issuer            string `json:"issuer"`
	Scope             string `json:"scope,omitempty"`
	Verifier          string `json:"verifier"`
	AuthSession       string `json:"auth_session,omitempty"`
	CallRef           string `json:"call_ref,omitempty"`
	ChallengeEndpoint string `json:"challenge_endpoint"`
	TokenEndpoint     string `json:"token_endpoint"`
	// Step-up state (RFC 9470 / MCP insufficient_scope), sent on every
	// challenge request once set.
	ACRValues string `json:"acr_values,omitempty"`
	MaxAge    int    `json:"max_age,omitempty"`
	// MaxAgeSet says MaxAge was given: max_age=0 ("prove it again now") is
	// meaningful and must be sent.
	MaxAgeSet bool `json:"max_age_set,omitempty"`
	StepUps   int  `json:"step_ups,omitempty"`
	// ChallengeSent: the AS has seen S256(Verifier) on this auth_session.
	// CodeIssued: Verifier is spent — bound to an issued code, or sent on an
	// auth_session that died; the next request needs a fresh verifier,
	// because every code has its own (the AS refuses a spent challenge).
	ChallengeSent bool `json:"challenge_sent,omitempty"`
	CodeIssued    bool `json:"code_issued,omitempty"`
}

// LogValue, String and GoString keep the verifier and auth_session out of
// logs and messages.
func (f Flow) LogValue() slog.Value {
	return slog.GroupValue(slog.String("resource", f.Resource), slog.String("issuer", f.Issuer),
		slog.String("scope", f.Scope), slog.Bool("has_auth_session", f.AuthSession != ""))
}

func (f Flow) String() string {
	return fmt.Sprintf("Flow{resource=%s issuer=%s scope=%q auth_session=%t}", f.Resource, f.Issuer, f.Scope, f.AuthSession != "")
}

func (f Flow) GoString() string { return f.String() }

// maxStepUps bounds insufficient_scope / acr re-challenges per flow.
const maxStepUps = 2

// NewFlow starts a flow for d with a fresh PKCE S256 verifier. An empty scope
// means d.Scopes (which may itself be empty: scope is then omitted).
func (c *Client) NewFlow(d *Discovery, scope, callRef string) (*Flow, error) {
	if d == nil || d.Resource == "" || d.AS.Issuer == "" || d.AS.AuthorizationChallengeEndpoint == "" || d.AS.TokenEndpoint == "" {
		return nil, &Error{Op: "challenge", Cause: fmt.Errorf("%w: discovery incomplete", ErrBadFlow)}
	}
	if scope == "" {
		scope = strings.Join(d.Scopes, " ")
	}
	v, err := newVerifier()
	if err != nil {
		return nil, &Error{Op: "challenge", Cause: err}
	}
	return &Flow{
		Resource:          d.Resource,
		Issuer:            d.AS.Issuer,
		Scope:             scope,
		Verifier:          v,
		CallRef:           callRef,
		ChallengeEndpoint: d.AS.AuthorizationChallengeEndpoint,
		TokenEndpoint:     d.AS.TokenEndpoint,
	}, nil
}

// newVerifier returns 64 base64url characters (48 random bytes): inside
// RFC 7636's 43–128.
func newVerifier() (string, error) {
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Answers is what the caller said this turn. Empty fields are not sent.
type Answers struct {
	Name, Birthdate, SSNLast4, OTP string
	OTPResend                      bool
	CallerPhone, StirVerstat       string
	// ACRValues and MaxAge override the flow's step-up values for this
	// request; MaxAge nil means "not given" (0 is a real value).
	ACRValues string
	MaxAge    *int
}

// LogValue, String and GoString: answers never reach a log.
func (a Answers) LogValue() slog.Value { return slog.StringValue("[answers redacted]") }
func (a Answers) String() string       { return "[answers redacted]" }
func (a Answers) GoString() string     { return "[answers redacted]" }

// Outcome is what the IVR acts on after one challenge request.
type Outcome int

const (
	Code             Outcome = iota // Result.Code holds an authorization code: Redeem it
	NeedMore                        // Result.Need lists the KBA fields still missing
	RetryKBA                        // answers complete but not accepted; ask all again
	NeedOTP                         // ask for the texted one-time code
	RetryOTP                        // the code was wrong or expired; ask again
	Denied                          // attempts used up or locked: the session is dead
	SessionInvalid                  // auth_session unknown/expired: start a new flow or transfer
	RedirectToWeb                   // the AS wants a browser: terminal for voice
	TransportFailure                // no usable answer (network, timeout, malformed, unexpected OAuth error)
)

var outcomeNames = [...]string{"Code", "NeedMore", "RetryKBA", "NeedOTP", "RetryOTP", "Denied", "SessionInvalid", "RedirectToWeb", "TransportFailure"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Result of one challenge request.
type Result struct {
	Outcome Outcome
	Code    string   // authorization code, only for Code
	Need    []string // KBA wire field names the AS asks for (NeedMore, RetryKBA)
	Err     *Error   // the wire error, or the transport failure
}

// challengeOutcomes is the one table from challenge-endpoint error codes to
// outcomes; insufficient_authorization is refined by the profile's hints.
// Codes not listed (invalid_client, invalid_target, …) are configuration or
// protocol faults the caller cannot fix: TransportFailure.
var challengeOutcomes = map[string]Outcome{
	ErrInsufficientAuthorization: NeedMore,
	ErrAccessDenied:              Denied,
	ErrInvalidSession:            SessionInvalid,
	ErrRedirectToWeb:             RedirectToWeb,
}

// Submit sends one challenge request carrying a's non-empty answers and
// classifies the answer. It never retries a request that reached the
// server. For TransportFailure it returns the Result and its Err as error;
// every other outcome returns a nil error.
func (c *Client) Submit(ctx context.Context, f *Flow, a Answers) (*Result, error) {
	if f == nil || f.Resource == "" || f.Issuer == "" || len(f.Verifier) < 43 || len(f.Verifier) > 128 {
		e := &Error{Op: "challenge", Cause: ErrBadFlow}
		return &Result{Outcome: TransportFailure, Err: e}, e
	}
	as, err := c.pinnedAS(ctx, f.Issuer, func(m ASMetadata) bool { return m.AuthorizationChallengeEndpoint == f.ChallengeEndpoint })
	if err != nil {
		e := asError("challenge", err)
		return &Result{Outcome: TransportFailure, Err: e}, e
	}
	if f.ChallengeEndpoint != as.AuthorizationChallengeEndpoint {
		e := &Error{Op: "challenge", Cause: fmt.Errorf("%w: challenge endpoint not published by its issuer", ErrBadFlow)}
		return &Result{Outcome: TransportFailure, Err: e}, e
	}
	if f.CodeIssued {
		v, err := newVerifier()
		if err != nil {
			e := &Error{Op: "challenge", Cause: err}
			return &Result{Outcome: TransportFailure, Err: e}, e
		}
		f.Verifier, f.CodeIssued, f.ChallengeSent = v, false, false
	}
	form := url.Values{}
	form.Set("response_type", "code")
	form.Set("client_id", c.cfg.ClientID)
	form.Set("resource", f.Resource)
	if f.Scope != "" {
		form.Set("scope", f.Scope)
	}
	if f.AuthSession != "" {
		form.Set(FieldAuthSession, f.AuthSession)
	}
	if f.AuthSession == "" || !f.ChallengeSent {
		form.Set("code_challenge", s256(f.Verifier))
		form.Set("code_challenge_method", "S256")
	}
	if f.CallRef != "" {
		form.Set(FieldCallRef, f.CallRef)
	}
	acr, maxAge, hasMaxAge := f.ACRValues, f.MaxAge, f.MaxAgeSet || f.MaxAge > 0
	if a.ACRValues != "" {
		acr = a.ACRValues
	}
	if a.MaxAge != nil && *a.MaxAge >= 0 {
		maxAge, hasMaxAge = *a.MaxAge, true
	}
	if acr != "" {
		form.Set("acr_values", acr)
	}
	if hasMaxAge {
		form.Set("max_age", strconv.Itoa(maxAge))
	}
	for k, v := range map[string]string{
		FieldName: a.Name, FieldBirthdate: a.Birthdate, FieldSSNLast4: a.SSNLast4, FieldOTP: a.OTP,
		FieldCallerPhone: a.CallerPhone, FieldStirVerstat: a.StirVerstat,
	} {
		if v != "" {
			form.Set(k, v)
		}
	}
	if a.OTPResend {
		form.Set(FieldOTPResend, "true")
	}
	resp, err := c.postForm(ctx, "challenge", as.AuthorizationChallengeEndpoint, f.Issuer, form)
	if err != nil {
		e := asError("challenge", err)
		return c.logResult(ctx, f, &Result{Outcome: TransportFailure, Err: e}), e
	}
	if err := checkChallengeIss(as, f.Issuer, resp); err != nil {
		// Neither the code nor the auth_session is used; the verifier may
		// have been seen by whoever answered, so the next request gets a
		// fresh one.
		f.CodeIssued = true
		e := &Error{Op: "challenge", StatusCode: resp.status, Cause: err}
		return c.logResult(ctx, f, &Result{Outcome: TransportFailure, Err: e}), e
	}
	res := c.classify(f, resp)
	if res.Err == nil || res.Err.ErrorResponse.Error != "" {
		f.ChallengeSent = true // the AS answered in protocol terms
	}
	if res.Outcome == Code {
		f.CodeIssued = true
	}
	if res.Outcome == TransportFailure {
		return c.logResult(ctx, f, res), res.Err
	}
	return c.logResult(ctx, f, res), nil
}

func (c *Client) classify(f *Flow, resp *response) *Result {
	if resp.status == http.StatusOK {
		var ok struct {
			ChallengeSuccess
			AuthSession string `json:"auth_session"`
		}
		if err := decodeJSON(resp.body, &ok); err != nil || ok.AuthorizationCode == "" {
			if err == nil {
				err = fmt.Errorf("%w: no authorization_code", ErrMalformedResponse)
			}
			return &Result{Outcome: TransportFailure, Err: &Error{Op: "challenge", StatusCode: resp.status, Cause: err}}
		}
		if ok.AuthSession != "" {
			f.AuthSession = ok.AuthSession
		}
		return &Result{Outcome: Code, Code: ok.AuthorizationCode}
	}
	var er ErrorResponse
	if err := decodeJSON(resp.body, &er); err != nil || er.Error == "" {
		if err == nil {
			err = fmt.Errorf("%w: no error member", ErrMalformedResponse)
		}
		if resp.status >= 500 {
			err = fmt.Errorf("%w: %w", ErrUnexpectedStatus, err)
		}
		return &Result{Outcome: TransportFailure, Err: &Error{Op: "challenge", StatusCode: resp.status, Cause: err}}
	}
	e := &Error{Op: "challenge", StatusCode: resp.status, ErrorResponse: er}
	if er.AuthSession != "" {
		f.AuthSession = er.AuthSession
	}
	out, known := challengeOutcomes[er.Error]
	if !known {
		return &Result{Outcome: TransportFailure, Err: e}
	}
	switch out {
	case NeedMore:
		switch {
		case er.OTPRequired && er.OTPRetry:
			out = RetryOTP
		case er.OTPRequired:
			out = NeedOTP
		case er.KBARetry:
			out = RetryKBA
		}
	case Denied, SessionInvalid:
		f.AuthSession = "" // dead: a new flow must begin with a fresh code_challenge
		f.ChallengeSent = false
		f.CodeIssued = true // and a fresh verifier behind it
	}
	return &Result{Outcome: out, Need: slices.Clone(er.KBARequired), Err: e}
}

func (c *Client) logResult(ctx context.Context, f *Flow, r *Result) *Result {
	attrs := []slog.Attr{slog.String("outcome", r.Outcome.String()), slog.String("call_ref", f.CallRef)}
	if r.Err != nil {
		attrs = append(attrs, slog.String("error", sanitizeCode(r.Err.ErrorResponse.Error)), slog.Int("status", r.Err.StatusCode))
		if r.Err.Cause != nil {
			attrs = append(attrs, slog.String("cause", r.Err.Cause.Error()))
		}
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "challenge: submit", attrs...)
	return r
}

// postForm POSTs an authenticated form. Connection-refused is retried once by
// do (nothing was sent); nothing else is.
func (c *Client) postForm(ctx context.Context, op, endpoint, issuer string, form url.Values) (*response, error) {
	if err := checkTransport(endpoint); err != nil {
		return nil, &Error{Op: op, Cause: err}
	}
	if err := c.credentialIssuer(issuer, true); err != nil {
		return nil, &Error{Op: op, Cause: err}
	}
	var authz string
	if c.cfg.PrivateKey != nil {
		assertion, err := c.clientAssertion(issuer)
		if err != nil {
			return nil, &Error{Op: op, Cause: err}
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	} else {
		authz = "Basic " + base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(c.cfg.ClientID)+":"+url.QueryEscape(c.cfg.ClientSecret)))
	}
	body := form.Encode()
	return c.do(ctx, op, http.MethodPost, endpoint, func(r *resty.Request) {
		r.SetHeader("Content-Type", "application/x-www-form-urlencoded").
			SetHeader("Accept", "application/json").
			SetBody(body)
		if authz != "" {
			r.SetHeader("Authorization", authz)
		}
	})
}

func asError(op string, err error) *Error {
	if e, ok := err.(*Error); ok {
		return e
	}
	return &Error{Op: op, Cause: err}
}

// StepUp reads a resource server's 401/403 challenge. For insufficient_scope
// it widens f.Scope to the union of the requested and challenged scopes; for
// insufficient_user_authentication it records acr_values and max_age (RFC
// 9470) in f. It returns what the next Submit will send; ok is false for any
// other challenge or after maxStepUps re-challenges of this flow.
func (c *Client) StepUp(f *Flow, wwwAuthenticate string) (scope, acrValues string, maxAge int, ok bool) {
	if f == nil {
		return "", "", 0, false
	}
	scheme, params, err := ParseWWWAuthenticate(wwwAuthenticate)
	if err != nil || scheme != "bearer" || f.StepUps >= maxStepUps {
		return f.Scope, f.ACRValues, f.MaxAge, false
	}
	switch params["error"] {
	case ErrInsufficientScope:
		if params["scope"] == "" {
			return f.Scope, f.ACRValues, f.MaxAge, false
		}
		f.Scope = UnionScopes(f.Scope, params["scope"])
	case ErrInsufficientUserAuthentication:
		if params["acr_values"] == "" && params["max_age"] == "" {
			return f.Scope, f.ACRValues, f.MaxAge, false
		}
		f.Scope = UnionScopes(f.Scope, params["scope"])
		if v := params["acr_values"]; v != "" {
			f.ACRValues = v
		}
		if v := params["max_age"]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return f.Scope, f.ACRValues, f.MaxAge, false
			}
			f.MaxAge, f.MaxAgeSet = n, true
		}
	default:
		return f.Scope, f.ACRValues, f.MaxAge, false
	}
	f.StepUps++
	c.log.Info("challenge: step-up", slog.String("call_ref", f.CallRef), slog.String("scope", f.Scope),
		slog.String("acr_values", f.ACRValues), slog.Int("max_age", f.MaxAge))
	return f.Scope, f.ACRValues, f.MaxAge, true
}

// UnionScopes is a's scopes in their order, then those of b not in a: what
// a client asks for when a challenge names more (MCP 2026-07-28 scope
// handling; the profile's insufficient_scope hint).
func UnionScopes(a, b string) string {
	out := strings.Fields(a)
	for _, s := range strings.Fields(b) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}
