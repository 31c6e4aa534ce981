// Package broker holds every token of a call and spends them for the
// dialog: it implements ivr.Auth over the challenge client (KBA, one-time
// codes, step-up, re-verification, subject-token registration, end-of-call
// revocation) and ivr.Tools over one cached MCP session per call. Tokens
// live sealed in the store, keyed by CallSid; ivr never sees one.
package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/ivr"
	"github.com/voiceauth/voiceauth/mcpclient"
	"github.com/voiceauth/voiceauth/session"
)

// Broker is what the dialog engine talks to: it adapts the challenge client,
// the MCP client and the store to ivr.Auth and ivr.Tools.
type Broker struct {
	cfg Config

	mu       sync.Mutex
	sessions map[string]*mcpSession // per call, on this instance
}

// mcpSession is one call's MCP session, or the connection being made: the
// first caller connects, the others wait for it (singleflight).
type mcpSession struct {
	ready chan struct{}
	s     *mcpclient.Session
	err   error
}

// Store is what the broker keeps in the session store: the call's tokens,
// its write-ahead revocation and pending step-up records, and the MCP
// servers' identity pins. session.Store satisfies it.
type Store interface {
	PutTokens(ctx context.Context, callID string, t session.TokenSet) error
	GetTokens(ctx context.Context, callID string) (session.TokenSet, error) // session.ErrNotFound
	DeleteTokens(ctx context.Context, callID string) error
	PutRecord(ctx context.Context, r *session.Record) error                   // session.ErrExists
	GetRecord(ctx context.Context, kind, key string) (*session.Record, error) // session.ErrNotFound
	DeleteRecord(ctx context.Context, kind, key string) error
	Pins
}

// Pins is the part of the store that keeps MCP servers' identity pins.
type Pins interface {
	GetPin(ctx context.Context, server string) (*session.Pin, error) // session.ErrNotFound
	PutPin(ctx context.Context, p *session.Pin) error
}

// Config configures a Broker. Challenge, MCP, MCPURL and Store are required.
type Config struct {
	Challenge  *challenge.Client
	Durable    *challenge.Client // same client, long request timeout: Redeem and Revoke (nil: Challenge)
	MCP        *mcpclient.Client
	MCPURL     string
	Store      Store            // a session.RecordLister too lets RetryRevocations find pending revocations
	HTTPClient *http.Client     // host checks and readiness probes (nil: http.DefaultClient)
	Logger     *slog.Logger     // nil: discard
	LogKey     []byte           // key for call pseudonyms in logs
	Now        func() time.Time // token expiry and record lifetimes (nil: time.Now)
	// DefaultScope is asked for when a host's subject token is exchanged,
	// and by the first flow when the MCP server lists no scopes (default
	// "appointments:read").
	DefaultScope string
	Hooks        Hooks
}

// Hooks let the wiring measure the broker without the broker knowing how it
// is measured (metrics, admission). Every hook may be nil.
type Hooks struct {
	// Job gets the duration of every Submit and tool Call (the backends'
	// answer time, which admission sheds load on).
	Job func(time.Duration)
	// ToolCall gets every tool call, its error as ivr sees it, and its time.
	ToolCall func(tool string, err error, d time.Duration)
	// Revocation gets each end-of-call revocation result: revoked, retried, pending.
	Revocation func(result string)
	// ErrKind names an error for logs (nil: no kind is logged).
	ErrKind func(error) string
}

var (
	_ ivr.Auth  = (*Broker)(nil)
	_ ivr.Tools = (*Broker)(nil)
)

// New returns a broker for cfg.
func New(cfg Config) *Broker {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultScope == "" {
		cfg.DefaultScope = "appointments:read"
	}
	return &Broker{cfg: cfg, sessions: map[string]*mcpSession{}}
}

func (b *Broker) errKind(err error) string {
	if b.cfg.Hooks.ErrKind == nil {
		return ""
	}
	return b.cfg.Hooks.ErrKind(err)
}

func (b *Broker) pseudo(callSid string) string {
	return session.Pseudonym(b.cfg.LogKey, "call", callSid)
}

// flowState is the adapter's part of the persisted call state.
type flowState struct {
	Flow   *challenge.Flow `json:"flow"`
	StepUp bool            `json:"step_up,omitempty"`
	// The step-up's acr_values and max_age, from the MCP server's challenge
	// (a step-up state without ACR predates them: the one-time code).
	ACR    string `json:"acr,omitempty"`
	MaxAge *int   `json:"max_age,omitempty"`
}

func (b *Broker) discover(ctx context.Context) (*challenge.Discovery, error) {
	return b.cfg.Challenge.Discover(ctx, b.cfg.MCPURL)
}

// newFlow starts a flow for the scopes the MCP server lists.
func (b *Broker) newFlow(ctx context.Context, call ivr.CallInfo) (*challenge.Flow, error) {
	d, err := b.discover(ctx)
	if err != nil {
		return nil, err
	}
	scope := strings.Join(d.Scopes, " ")
	if scope == "" {
		scope = b.cfg.DefaultScope
	}
	return b.cfg.Challenge.NewFlow(d, scope, call.CallRef)
}

// Submit implements ivr.Auth.
func (b *Broker) Submit(ctx context.Context, call ivr.CallInfo, raw []byte, a ivr.Answers, stepUp bool) (ivr.AuthStep, []byte, error) {
	if h := b.cfg.Hooks.Job; h != nil {
		start := time.Now()
		defer func() { h(time.Since(start)) }()
	}
	var st flowState
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &st); err != nil {
			return ivr.AuthStep{}, nil, fmt.Errorf("broker: corrupt flow state: %w", err)
		}
	}
	if stepUp && !st.StepUp {
		// What the MCP server asked for when it refused the tool: a wider
		// scope or a stronger proof (a step-up), or, when the AS refused to
		// refresh, the caller again (a re-verification on the AS's session).
		p, err := b.takePending(ctx, call.CallSid)
		if err != nil {
			return ivr.AuthStep{}, raw, err
		}
		if p.AuthSession != "" {
			f, err := b.reverifyFlow(ctx, call, p)
			if err != nil {
				return ivr.AuthStep{}, raw, err
			}
			st = flowState{Flow: f}
		} else {
			if st.Flow == nil {
				if st.Flow, err = b.newFlow(ctx, call); err != nil {
					return ivr.AuthStep{}, raw, err
				}
			}
			st.stepUp(p)
		}
	}
	if st.Flow == nil {
		f, err := b.newFlow(ctx, call)
		if err != nil {
			return ivr.AuthStep{}, nil, err
		}
		st.Flow = f
	}
	ans := challenge.Answers{
		Name: a.Name, Birthdate: a.Birthdate, SSNLast4: a.SSNLast4, OTP: a.OTP, OTPResend: a.OTPResend,
		CallerPhone: call.From, StirVerstat: call.StirVerstat,
	}
	if st.StepUp {
		ans.ACRValues, ans.MaxAge = st.ACR, st.MaxAge
		if st.ACR == "" && st.MaxAge == nil {
			ans.ACRValues = challenge.ACRKBAOTP
		}
	}
	res, err := b.cfg.Challenge.Submit(ctx, st.Flow, ans)
	out, _ := json.Marshal(st)
	if err != nil {
		return ivr.AuthStep{}, out, err
	}
	step := ivr.AuthStep{Need: res.Need}
	switch res.Outcome {
	case challenge.Code:
		// Once the AS has issued a code, redeeming it and keeping the token
		// must not be cut short by the call's deadline: a token the AS issued
		// but we never stored could never be revoked. If the caller was
		// given up on meanwhile, the token is revoked at once.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		tok, err := b.durable().Redeem(dctx, st.Flow, res.Code)
		if err != nil {
			return ivr.AuthStep{}, out, err
		}
		if err := b.saveToken(dctx, call.CallSid, tok); err != nil {
			return ivr.AuthStep{}, out, err
		}
		if ctx.Err() != nil {
			go func() {
				rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				b.revokeCall(rctx, call.CallSid, 3)
			}()
			return ivr.AuthStep{}, out, ctx.Err()
		}
		// A new token means a new MCP session (scopes and acr changed). It is
		// opened now, while the caller hears the menu, so the first tool call
		// does not pay for the connection and the server identity check.
		b.closeSession(call.CallSid)
		go b.preconnect(call.CallSid)
		st.StepUp, st.ACR, st.MaxAge = false, "", nil
		out, _ = json.Marshal(st)
		step.Kind = ivr.AuthAuthenticated
	case challenge.NeedMore:
		step.Kind = ivr.AuthNeedMore
	case challenge.RetryKBA:
		step.Kind = ivr.AuthRetryKBA
	case challenge.NeedOTP:
		step.Kind = ivr.AuthNeedOTP
	case challenge.RetryOTP:
		step.Kind = ivr.AuthRetryOTP
	case challenge.Denied:
		step.Kind = ivr.AuthDenied
	case challenge.SessionInvalid, challenge.RedirectToWeb:
		step.Kind = ivr.AuthTransfer
	default:
		return ivr.AuthStep{}, out, fmt.Errorf("broker: authorization server failed: %v", res.Outcome)
	}
	return step, out, nil
}

func (b *Broker) saveToken(ctx context.Context, callSid string, t *challenge.Token) error {
	return b.cfg.Store.PutTokens(ctx, callSid, session.TokenSet{
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType,
		Scope: t.Scope, Issuer: t.Issuer, Resource: t.Resource, Expiry: t.Expiry,
	})
}

func toChallengeToken(ts session.TokenSet) *challenge.Token {
	return &challenge.Token{AccessToken: ts.AccessToken, RefreshToken: ts.RefreshToken, TokenType: ts.TokenType,
		Scope: ts.Scope, Issuer: ts.Issuer, Resource: ts.Resource, Expiry: ts.Expiry}
}

// Preauthorized implements ivr.Auth: a host registered a subject token for
// this call and the exchange produced a token that is still valid.
func (b *Broker) Preauthorized(ctx context.Context, callSid string) (bool, error) {
	ts, err := b.cfg.Store.GetTokens(ctx, callSid)
	if errors.Is(err, session.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return ts.AccessToken != "" && b.cfg.Now().Before(ts.Expiry), nil
}

// PreauthOnlyByRegistration implements ivr.RegisteredPreauth: call tokens
// exist before the call only when RegisterSubjectToken saved them.
func (b *Broker) PreauthOnlyByRegistration() bool { return true }

var _ ivr.RegisteredPreauth = (*Broker)(nil)

// RegisterSubjectToken implements ivr.Auth. The host proves who it is with
// its own client credentials at the AS (introspection is client-authenticated
// there), then the voice client exchanges the subject token (RFC 8693) for a
// token whose audience is the MCP server.
func (b *Broker) RegisterSubjectToken(ctx context.Context, callSid, hostID, hostSecret, subjectToken, subjectTokenType string) error {
	d, err := b.discover(ctx)
	if err != nil {
		return err
	}
	if err := b.checkHost(ctx, d, hostID, hostSecret); err != nil {
		return err
	}
	if subjectTokenType == "" {
		subjectTokenType = challenge.TokenTypeJWT
	}
	tok, err := b.cfg.Challenge.Exchange(ctx, d, subjectToken, subjectTokenType, b.cfg.DefaultScope)
	if err != nil {
		var ce *challenge.Error
		if errors.As(err, &ce) {
			b.cfg.Logger.Info("subject token rejected", "call", b.pseudo(callSid), "error", ce.ErrorResponse.Error)
			return ivr.ErrRejected
		}
		return err
	}
	return b.saveToken(ctx, callSid, tok)
}

func (b *Broker) checkHost(ctx context.Context, d *challenge.Discovery, id, secret string) error {
	if id == "" || secret == "" || d.AS.IntrospectionEndpoint == "" {
		return ivr.ErrUnauthorizedHost
	}
	form := url.Values{"token": {"host-credential-check"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.AS.IntrospectionEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := b.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest:
		return ivr.ErrUnauthorizedHost
	}
	return fmt.Errorf("broker: introspection answered %d", resp.StatusCode)
}

// RevokePendingKind marks a call whose tokens still have to be revoked. It
// is written before the revocation is attempted (write-ahead) and deleted
// only after the AS confirmed it, so a revocation that fails under load or
// dies with the process is retried by housekeeping, never dropped.
const RevokePendingKind = "revoke_pending"

// EndCall implements ivr.Auth: revoke the call's tokens at the AS, forget
// them, close the MCP session. The caller's context bounds nothing here: a
// call that ended must have its tokens revoked even if the request that
// noticed the end has gone.
func (b *Broker) EndCall(ctx context.Context, callSid string) error {
	b.closeSession(callSid)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return errors.Join(b.revokeCall(ctx, callSid, 3), b.cfg.Store.DeleteRecord(ctx, pendingKind, callSid))
}

// revokeCall revokes callSid's tokens with up to attempts tries.
func (b *Broker) revokeCall(ctx context.Context, callSid string, attempts int) error {
	ts, err := b.cfg.Store.GetTokens(ctx, callSid)
	if errors.Is(err, session.ErrNotFound) {
		return b.cfg.Store.DeleteRecord(ctx, RevokePendingKind, callSid)
	}
	if err != nil {
		return err
	}
	werr := b.cfg.Store.PutRecord(ctx, &session.Record{Kind: RevokePendingKind, Key: callSid, Data: []byte{1},
		ExpiresAt: b.cfg.Now().Add(24 * time.Hour)})
	if werr != nil && !errors.Is(werr, session.ErrExists) {
		b.cfg.Logger.Warn("revocation write-ahead failed", "call", b.pseudo(callSid),
			"err", werr.Error(), "err_kind", b.errKind(werr))
	}
	var rerr error
	backoff := 100 * time.Millisecond
	for i := 0; i < attempts; i++ {
		if i > 0 {
			b.metric("retried")
			if sleepCtx(ctx, backoff) != nil {
				break
			}
			backoff *= 4
		}
		if rerr = b.durable().Revoke(ctx, toChallengeToken(ts)); rerr == nil {
			break
		}
	}
	if rerr != nil {
		b.metric("pending")
		b.cfg.Logger.Warn("token revocation pending; housekeeping retries it", "call", b.pseudo(callSid),
			"err", rerr.Error(), "err_kind", b.errKind(rerr))
		return rerr
	}
	b.metric("revoked")
	return errors.Join(b.cfg.Store.DeleteTokens(ctx, callSid), b.cfg.Store.DeleteRecord(ctx, RevokePendingKind, callSid))
}

func (b *Broker) durable() *challenge.Client {
	if b.cfg.Durable != nil {
		return b.cfg.Durable
	}
	return b.cfg.Challenge
}

func (b *Broker) metric(result string) {
	if h := b.cfg.Hooks.Revocation; h != nil {
		h(result)
	}
}

// RetryRevocations retries every revocation still pending (housekeeping)
// and reports how many are left.
func (b *Broker) RetryRevocations(ctx context.Context) (left int, err error) {
	rl, ok := b.cfg.Store.(session.RecordLister)
	if !ok {
		return 0, nil
	}
	recs, err := rl.ListRecords(ctx, RevokePendingKind)
	if err != nil {
		return 0, err
	}
	for _, r := range recs {
		if b.revokeCall(ctx, r.Key, 1) != nil {
			left++
		}
	}
	return left, nil
}

// Call implements ivr.Tools.
func (b *Broker) Call(ctx context.Context, callSid, tool string, args map[string]any) (_ json.RawMessage, err error) {
	if h := b.cfg.Hooks.Job; h != nil {
		start := time.Now()
		defer func() { h(time.Since(start)) }()
	}
	if h := b.cfg.Hooks.ToolCall; h != nil {
		start := time.Now()
		defer func() { h(tool, err, time.Since(start)) }()
	}
	sess, err := b.session(ctx, callSid)
	if err != nil {
		return nil, b.mapToolErr(err)
	}
	res, err := sess.CallTool(ctx, tool, args)
	if err != nil {
		return nil, b.mapToolErr(err)
	}
	if res.IsError {
		return nil, ivr.ErrToolDenied
	}
	if res.StructuredContent == nil {
		return nil, fmt.Errorf("broker: tool %s returned no structured content", tool)
	}
	return json.Marshal(res.StructuredContent)
}

func (b *Broker) mapToolErr(err error) error {
	var ae *mcpclient.AuthError
	switch {
	case errors.Is(err, ivr.ErrStepUp):
		return ivr.ErrStepUp
	case errors.Is(err, ivr.ErrReverify):
		return ivr.ErrReverify
	case errors.Is(err, mcpclient.ErrIdentity), errors.Is(err, mcpclient.ErrToolNotVerified):
		return fmt.Errorf("%w: %v", ivr.ErrIdentity, err)
	case errors.Is(err, mcpclient.ErrUnavailable):
		return fmt.Errorf("%w: %v", ivr.ErrBackendDown, err)
	case errors.As(err, &ae):
		return ivr.ErrToolDenied
	}
	return fmt.Errorf("%w: %v", ivr.ErrBackendDown, err)
}

func (b *Broker) session(ctx context.Context, callSid string) (*mcpclient.Session, error) {
	b.mu.Lock()
	ms := b.sessions[callSid]
	if ms == nil {
		ms = &mcpSession{ready: make(chan struct{})}
		b.sessions[callSid] = ms
		b.mu.Unlock()
		ms.s, ms.err = b.cfg.MCP.Connect(ctx, b.cfg.MCPURL, &callTokens{b: b, callSid: callSid})
		close(ms.ready)
		if ms.err != nil {
			b.forget(callSid, ms)
		}
		return ms.s, ms.err
	}
	b.mu.Unlock()
	select {
	case <-ms.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if ms.err != nil {
		// The connection another turn made failed; try once more ourselves.
		b.forget(callSid, ms)
		return b.session(ctx, callSid)
	}
	return ms.s, nil
}

// preconnect opens the call's MCP session in the background after
// authentication; a failure here is retried by the first tool call.
func (b *Broker) preconnect(callSid string) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	if _, err := b.session(ctx, callSid); err != nil {
		b.cfg.Logger.Debug("mcp preconnect failed", "call", b.pseudo(callSid), "err", err)
	}
}

// forget drops ms if it is still the call's entry.
func (b *Broker) forget(callSid string, ms *mcpSession) {
	b.mu.Lock()
	if b.sessions[callSid] == ms {
		delete(b.sessions, callSid)
	}
	b.mu.Unlock()
}

func (b *Broker) closeSession(callSid string) {
	b.mu.Lock()
	ms := b.sessions[callSid]
	delete(b.sessions, callSid)
	b.mu.Unlock()
	closeWhenReady(ms)
}

// Close closes every MCP session this broker holds (shutdown).
func (b *Broker) Close() {
	b.mu.Lock()
	ss := b.sessions
	b.sessions = map[string]*mcpSession{}
	b.mu.Unlock()
	for _, ms := range ss {
		closeWhenReady(ms)
	}
}

// closeWhenReady closes a session, waiting (in the background) for one that
// is still connecting.
func closeWhenReady(ms *mcpSession) {
	if ms == nil {
		return
	}
	select {
	case <-ms.ready:
		if ms.s != nil {
			ms.s.Close()
		}
	default:
		go func() {
			<-ms.ready
			if ms.s != nil {
				ms.s.Close()
			}
		}()
	}
}

// Ready checks, uncached, that the MCP server answers and that its
// authorization server serves its metadata (discovery itself is cached, so
// it alone would report a dead server as ready for minutes).
func (b *Broker) Ready(ctx context.Context) error {
	d, err := b.cfg.Challenge.Discover(ctx, b.cfg.MCPURL)
	if err != nil {
		return errors.New("authorization server or MCP server unreachable")
	}
	if !b.answers(ctx, http.MethodPost, b.cfg.MCPURL) {
		return errors.New("MCP server unreachable")
	}
	if !b.answers(ctx, http.MethodGet, wellKnown(d.AS.Issuer)) {
		return errors.New("authorization server unreachable")
	}
	return nil
}

// answers reports whether url gives any HTTP answer below 500.
func (b *Broker) answers(ctx context.Context, method, u string) bool {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return false
	}
	resp, err := b.cfg.HTTPClient.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode < 500
}

// wellKnown is the RFC 8414 metadata URL of issuer (path-inserted).
func wellKnown(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return issuer
	}
	u.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	return u.String()
}

// callTokens is the mcpclient.TokenSource of one call.
type callTokens struct {
	b       *Broker
	callSid string
}

// Token is the call's access token, presented only while the MCP server's
// metadata still names the AS that issued it for this resource (MCP
// 2026-07-28 keys tokens by issuer): a token obtained before the PRM moved
// to another AS is never sent. When discovery itself fails the token is
// sent, as before: it names its audience, and the server checks it.
func (t *callTokens) Token(ctx context.Context) (string, error) {
	ts, err := t.b.cfg.Store.GetTokens(ctx, t.callSid)
	if err != nil {
		return "", fmt.Errorf("broker: no token for this call: %w", err)
	}
	if d, err := t.b.discover(ctx); err == nil && !d.Issued(toChallengeToken(ts)) {
		return "", errForeignToken
	}
	return ts.AccessToken, nil
}

// errForeignToken: the stored token belongs to another AS or resource than
// the MCP server's metadata names now.
var errForeignToken = errors.New("broker: the call's token was issued by another authorization server or for another resource")

// Renew refreshes an expired token. Anything that needs the caller becomes
// an ivr error the dialog acts on: a wider scope or a stronger proof is
// ErrStepUp (the challenge is kept for the step-up's Submit); a refresh the
// AS answers with insufficient_authorization and an auth_session is
// ErrReverify (the caller answers again on that session).
func (t *callTokens) Renew(ctx context.Context, ch *mcpclient.AuthChallenge) (string, error) {
	switch ch.Error {
	case challenge.ErrInsufficientUserAuthentication, challenge.ErrInsufficientScope:
		p := pending{Scope: ch.Scope, ACR: ch.ACRValues}
		if ch.MaxAge >= 0 {
			p.MaxAge = &ch.MaxAge
		}
		if err := t.b.putPending(ctx, t.callSid, p); err != nil {
			return "", err
		}
		return "", ivr.ErrStepUp
	}
	ts, err := t.b.cfg.Store.GetTokens(ctx, t.callSid)
	if err != nil || ts.RefreshToken == "" {
		return "", fmt.Errorf("broker: token rejected (%s) and no refresh token", ch.Error)
	}
	nt, err := t.b.cfg.Challenge.Refresh(ctx, toChallengeToken(ts))
	var ce *challenge.Error
	if errors.As(err, &ce) && ce.ErrorResponse.Error == challenge.ErrInsufficientAuthorization && ce.ErrorResponse.AuthSession != "" {
		if err := t.b.putPending(ctx, t.callSid, pending{AuthSession: ce.ErrorResponse.AuthSession, Scope: ts.Scope}); err != nil {
			return "", err
		}
		return "", ivr.ErrReverify
	}
	if err != nil {
		return "", err
	}
	if err := t.b.saveToken(ctx, t.callSid, nt); err != nil {
		return "", err
	}
	return nt.AccessToken, nil
}

// PinStore adapts the store's pins to mcpclient's trust-on-first-use
// store; now stamps UpdatedAt (nil: time.Now).
func PinStore(st Pins, now func() time.Time) mcpclient.PinStore {
	if now == nil {
		now = time.Now
	}
	return pinStore{st: st, now: now}
}

type pinStore struct {
	st  Pins
	now func() time.Time
}

func (p pinStore) GetPin(ctx context.Context, server string) (*mcpclient.Pin, error) {
	sp, err := p.st.GetPin(ctx, server)
	if errors.Is(err, session.ErrNotFound) {
		return nil, mcpclient.ErrNoPin
	}
	if err != nil {
		return nil, err
	}
	return &mcpclient.Pin{Server: sp.Server, KeyID: sp.KeyID, Thumbprint: sp.Thumbprint, Key: sp.Key, PinnedAt: sp.PinnedAt}, nil
}

func (p pinStore) PutPin(ctx context.Context, pin *mcpclient.Pin) error {
	return p.st.PutPin(ctx, &session.Pin{Server: pin.Server, KeyID: pin.KeyID, Thumbprint: pin.Thumbprint,
		Key: pin.Key, PinnedAt: pin.PinnedAt, UpdatedAt: p.now()})
}
