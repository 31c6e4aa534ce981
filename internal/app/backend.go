package app

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

// backend is what the dialog engine talks to: it adapts the challenge client,
// the MCP client and the store to ivr.Auth and ivr.Tools. It holds every
// token (sealed in the store, keyed by CallSid); ivr never sees one.
type backend struct {
	cfg backendConfig

	mu       sync.Mutex
	sessions map[string]*mcpSession // per call, on this instance

	load *loadGauge // backend job durations, for admission (nil: not measured)
}

// mcpSession is one call's MCP session, or the connection being made: the
// first caller connects, the others wait for it (singleflight).
type mcpSession struct {
	ready chan struct{}
	s     *mcpclient.Session
	err   error
}

type backendConfig struct {
	Challenge  *challenge.Client
	Durable    *challenge.Client // same client, long request timeout: Redeem and Revoke (nil: Challenge)
	MCP        *mcpclient.Client
	MCPURL     string
	Store      session.Store
	HTTPClient *http.Client
	Logger     *slog.Logger
	LogKey     []byte
	Now        func() time.Time
	Metrics    *opsMetrics // nil: none
}

var (
	_ ivr.Auth  = (*backend)(nil)
	_ ivr.Tools = (*backend)(nil)
)

func newBackend(cfg backendConfig) *backend {
	return &backend{cfg: cfg, sessions: map[string]*mcpSession{}}
}

// flowState is the adapter's part of the persisted call state.
type flowState struct {
	Flow   *challenge.Flow `json:"flow"`
	StepUp bool            `json:"step_up,omitempty"`
}

func (b *backend) discover(ctx context.Context) (*challenge.Discovery, error) {
	return b.cfg.Challenge.Discover(ctx, b.cfg.MCPURL)
}

// Submit implements ivr.Auth.
func (b *backend) Submit(ctx context.Context, call ivr.CallInfo, raw []byte, a ivr.Answers, stepUp bool) (ivr.AuthStep, []byte, error) {
	if b.load != nil {
		start := time.Now()
		defer func() { b.load.observe(time.Since(start)) }()
	}
	var st flowState
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &st); err != nil {
			return ivr.AuthStep{}, nil, fmt.Errorf("backend: corrupt flow state: %w", err)
		}
	}
	if st.Flow == nil {
		d, err := b.discover(ctx)
		if err != nil {
			return ivr.AuthStep{}, nil, err
		}
		scope := strings.Join(d.Scopes, " ")
		if scope == "" {
			scope = "appointments:read"
		}
		f, err := b.cfg.Challenge.NewFlow(d, scope, call.CallRef)
		if err != nil {
			return ivr.AuthStep{}, nil, err
		}
		st.Flow = f
	}
	ans := challenge.Answers{
		Name: a.Name, Birthdate: a.Birthdate, SSNLast4: a.SSNLast4, OTP: a.OTP, OTPResend: a.OTPResend,
		CallerPhone: call.From, StirVerstat: call.StirVerstat,
	}
	if stepUp && !st.StepUp {
		st.StepUp = true
		st.Flow.Scope = allScopes
	}
	if st.StepUp {
		ans.ACRValues = challenge.ACRKBAOTP
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
		st.StepUp = false
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
		return ivr.AuthStep{}, out, fmt.Errorf("backend: authorization server failed: %v", res.Outcome)
	}
	return step, out, nil
}

func (b *backend) saveToken(ctx context.Context, callSid string, t *challenge.Token) error {
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
func (b *backend) Preauthorized(ctx context.Context, callSid string) (bool, error) {
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
func (b *backend) PreauthOnlyByRegistration() bool { return true }

var _ ivr.RegisteredPreauth = (*backend)(nil)

// RegisterSubjectToken implements ivr.Auth. The host proves who it is with
// its own client credentials at the AS (introspection is client-authenticated
// there), then the voice client exchanges the subject token (RFC 8693) for a
// token whose audience is the MCP server.
func (b *backend) RegisterSubjectToken(ctx context.Context, callSid, hostID, hostSecret, subjectToken, subjectTokenType string) error {
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
	tok, err := b.cfg.Challenge.Exchange(ctx, d, subjectToken, subjectTokenType, "appointments:read")
	if err != nil {
		var ce *challenge.Error
		if errors.As(err, &ce) {
			b.cfg.Logger.Info("subject token rejected", "call", session.Pseudonym(b.cfg.LogKey, "call", callSid), "error", ce.ErrorResponse.Error)
			return ivr.ErrRejected
		}
		return err
	}
	return b.saveToken(ctx, callSid, tok)
}

func (b *backend) checkHost(ctx context.Context, d *challenge.Discovery, id, secret string) error {
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
	return fmt.Errorf("backend: introspection answered %d", resp.StatusCode)
}

// revokePendingKind marks a call whose tokens still have to be revoked. It
// is written before the revocation is attempted (write-ahead) and deleted
// only after the AS confirmed it, so a revocation that fails under load or
// dies with the process is retried by housekeeping, never dropped.
const revokePendingKind = "revoke_pending"

// EndCall implements ivr.Auth: revoke the call's tokens at the AS, forget
// them, close the MCP session. The caller's context bounds nothing here: a
// call that ended must have its tokens revoked even if the request that
// noticed the end has gone.
func (b *backend) EndCall(ctx context.Context, callSid string) error {
	b.closeSession(callSid)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return b.revokeCall(ctx, callSid, 3)
}

// revokeCall revokes callSid's tokens with up to attempts tries.
func (b *backend) revokeCall(ctx context.Context, callSid string, attempts int) error {
	ts, err := b.cfg.Store.GetTokens(ctx, callSid)
	if errors.Is(err, session.ErrNotFound) {
		return b.cfg.Store.DeleteRecord(ctx, revokePendingKind, callSid)
	}
	if err != nil {
		return err
	}
	werr := b.cfg.Store.PutRecord(ctx, &session.Record{Kind: revokePendingKind, Key: callSid, Data: []byte{1},
		ExpiresAt: b.cfg.Now().Add(24 * time.Hour)})
	if werr != nil && !errors.Is(werr, session.ErrExists) {
		b.cfg.Logger.Warn("revocation write-ahead failed", "call", session.Pseudonym(b.cfg.LogKey, "call", callSid),
			"err", werr.Error(), "err_kind", ErrKind(werr))
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
		b.cfg.Logger.Warn("token revocation pending; housekeeping retries it", "call", session.Pseudonym(b.cfg.LogKey, "call", callSid),
			"err", rerr.Error(), "err_kind", ErrKind(rerr))
		return rerr
	}
	b.metric("revoked")
	return errors.Join(b.cfg.Store.DeleteTokens(ctx, callSid), b.cfg.Store.DeleteRecord(ctx, revokePendingKind, callSid))
}

func (b *backend) durable() *challenge.Client {
	if b.cfg.Durable != nil {
		return b.cfg.Durable
	}
	return b.cfg.Challenge
}

func (b *backend) metric(result string) {
	if b.cfg.Metrics != nil {
		b.cfg.Metrics.revocations.WithLabelValues(result).Inc()
	}
}

// retryRevocations retries every revocation still pending (housekeeping).
func (b *backend) retryRevocations(ctx context.Context) (left int, err error) {
	rl, ok := b.cfg.Store.(session.RecordLister)
	if !ok {
		return 0, nil
	}
	recs, err := rl.ListRecords(ctx, revokePendingKind)
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
func (b *backend) Call(ctx context.Context, callSid, tool string, args map[string]any) (_ json.RawMessage, err error) {
	if b.load != nil {
		start := time.Now()
		defer func() { b.load.observe(time.Since(start)) }()
	}
	if m := b.cfg.Metrics; m != nil {
		start := time.Now()
		defer func() {
			m.toolSeconds.WithLabelValues(toolLabel(tool)).Observe(time.Since(start).Seconds())
			m.toolCalls.WithLabelValues(toolLabel(tool), toolOutcome(err)).Inc()
		}()
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
		return nil, fmt.Errorf("backend: tool %s returned no structured content", tool)
	}
	return json.Marshal(res.StructuredContent)
}

// toolLabel keeps the tool label to names a server could list (bounded).
func toolLabel(tool string) string {
	if len(tool) > 48 || strings.ContainsAny(tool, " \"<>{}") {
		return "other"
	}
	return tool
}

func toolOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ivr.ErrStepUp):
		return "step_up"
	case errors.Is(err, ivr.ErrToolDenied):
		return "denied"
	case errors.Is(err, ivr.ErrIdentity):
		return "identity_refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "unavailable"
}

func (b *backend) mapToolErr(err error) error {
	var ae *mcpclient.AuthError
	switch {
	case errors.Is(err, ivr.ErrStepUp):
		return ivr.ErrStepUp
	case errors.Is(err, mcpclient.ErrIdentity), errors.Is(err, mcpclient.ErrToolNotVerified):
		return fmt.Errorf("%w: %v", ivr.ErrIdentity, err)
	case errors.Is(err, mcpclient.ErrUnavailable):
		return fmt.Errorf("%w: %v", ivr.ErrBackendDown, err)
	case errors.As(err, &ae):
		return ivr.ErrToolDenied
	}
	return fmt.Errorf("%w: %v", ivr.ErrBackendDown, err)
}

func (b *backend) session(ctx context.Context, callSid string) (*mcpclient.Session, error) {
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
func (b *backend) preconnect(callSid string) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	if _, err := b.session(ctx, callSid); err != nil {
		b.cfg.Logger.Debug("mcp preconnect failed", "call", session.Pseudonym(b.cfg.LogKey, "call", callSid), "err", err)
	}
}

// forget drops ms if it is still the call's entry.
func (b *backend) forget(callSid string, ms *mcpSession) {
	b.mu.Lock()
	if b.sessions[callSid] == ms {
		delete(b.sessions, callSid)
	}
	b.mu.Unlock()
}

func (b *backend) closeSession(callSid string) {
	b.mu.Lock()
	ms := b.sessions[callSid]
	delete(b.sessions, callSid)
	b.mu.Unlock()
	closeWhenReady(ms)
}

func (b *backend) closeAll() {
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
func (b *backend) Ready(ctx context.Context) error {
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
func (b *backend) answers(ctx context.Context, method, u string) bool {
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
	b       *backend
	callSid string
}

func (t *callTokens) Token(ctx context.Context) (string, error) {
	ts, err := t.b.cfg.Store.GetTokens(ctx, t.callSid)
	if err != nil {
		return "", fmt.Errorf("backend: no token for this call: %w", err)
	}
	return ts.AccessToken, nil
}

// Renew refreshes an expired token; anything that needs the caller (a wider
// scope or a higher acr both mean a one-time code here) becomes ErrStepUp.
func (t *callTokens) Renew(ctx context.Context, ch *mcpclient.AuthChallenge) (string, error) {
	switch ch.Error {
	case challenge.ErrInsufficientUserAuthentication, challenge.ErrInsufficientScope:
		return "", ivr.ErrStepUp
	}
	ts, err := t.b.cfg.Store.GetTokens(ctx, t.callSid)
	if err != nil || ts.RefreshToken == "" {
		return "", fmt.Errorf("backend: token rejected (%s) and no refresh token", ch.Error)
	}
	nt, err := t.b.cfg.Challenge.Refresh(ctx, toChallengeToken(ts))
	if err != nil {
		return "", err
	}
	if err := t.b.saveToken(ctx, t.callSid, nt); err != nil {
		return "", err
	}
	return nt.AccessToken, nil
}

// pinStore adapts session pins to mcpclient's trust-on-first-use store.
type pinStore struct{ st session.Store }

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
		Key: pin.Key, PinnedAt: pin.PinnedAt, UpdatedAt: time.Now()})
}
