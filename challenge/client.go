// Package challenge is the browserless OAuth client of voiceauth: it
// discovers an MCP server's authorization server (RFC 9728, RFC 8414), drives
// the authorization challenge endpoint of draft-ietf-oauth-first-party-apps-03
// with the voice KBA profile, and redeems, refreshes, exchanges (RFC 8693) and
// revokes tokens.
//
// It knows nothing of telephony: the IVR hands it answers and acts on typed
// outcomes. Answers, codes, auth_session values and tokens never appear in its
// logs or error strings.
package challenge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-resty/resty/v2"
)

// Config configures a Client. The zero value of every field except ClientID
// is usable.
type Config struct {
	// ClientID and ClientSecret authenticate with client_secret_basic.
	ClientID, ClientSecret string
	// PrivateKey, if set, switches client authentication to private_key_jwt
	// (RFC 7523) at every endpoint; ClientSecret is then ignored.
	PrivateKey *jose.JSONWebKey
	// Issuer, if set, pins the authorization server: a PRM that does not list
	// exactly this issuer is refused (credentials are keyed by issuer).
	Issuer string

	HTTPClient *http.Client // nil: http.DefaultTransport; redirects are never followed
	Logger     *slog.Logger // nil: discard
	Now        func() time.Time

	RequestTimeout   time.Duration // per HTTP request; default 3 s
	MaxResponseBytes int64         // per response body; default 64 KiB

	// DefaultMetadataTTL applies to metadata served without Cache-Control
	// max-age; default 10 min. MaxMetadataTTL caps any max-age; default 1 h.
	DefaultMetadataTTL, MaxMetadataTTL time.Duration
}

// Client is safe for concurrent use.
type Client struct {
	cfg   Config
	rc    *resty.Client
	log   *slog.Logger
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	mu        sync.Mutex
	asCache   map[string]cached[ASMetadata]
	prmCache  map[string]cached[ProtectedResourceMetadata]
	discCache map[string]cached[Discovery]
	// boundIssuer: the issuer an unpinned Client's credentials went to
	// first; no other issuer gets them (iss.go).
	boundIssuer string
}

type cached[T any] struct {
	v       T
	expires time.Time
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 3 * time.Second
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 10
	}
	if cfg.DefaultMetadataTTL <= 0 {
		cfg.DefaultMetadataTTL = 10 * time.Minute
	}
	if cfg.MaxMetadataTTL <= 0 {
		cfg.MaxMetadataTTL = time.Hour
	}
	// A private copy: resty mutates the client it is given, and a redirect
	// would carry a POST body (answers, codes, tokens) to another host.
	hc := &http.Client{Transport: http.DefaultTransport}
	if cfg.HTTPClient != nil {
		hc.Transport = cfg.HTTPClient.Transport
		hc.Timeout = cfg.HTTPClient.Timeout
		if hc.Transport == nil {
			hc.Transport = http.DefaultTransport
		}
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	rc := resty.NewWithClient(hc).
		SetLogger(quietLogger{}).
		SetRetryCount(0).
		SetResponseBodyLimit(int(cfg.MaxResponseBytes)).
		SetHeader("User-Agent", "voiceauth-challenge/1")
	c := &Client{
		cfg:       cfg,
		rc:        rc,
		log:       cfg.Logger,
		now:       cfg.Now,
		sleep:     sleepCtx,
		asCache:   map[string]cached[ASMetadata]{},
		prmCache:  map[string]cached[ProtectedResourceMetadata]{},
		discCache: map[string]cached[Discovery]{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// quietLogger keeps resty from writing to stderr; we log ourselves.
type quietLogger struct{}

func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}

// response is what one HTTP exchange produced.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do performs one request with the per-request timeout. It retries only when
// the connection was refused, i.e. before any byte of the request was sent;
// that is safe even for a POST carrying answers.
func (c *Client) do(ctx context.Context, op, method, u string, prep func(*resty.Request)) (*response, error) {
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		resp, err := c.once(ctx, method, u, prep)
		if err == nil {
			c.log.LogAttrs(ctx, slog.LevelDebug, "challenge: http", slog.String("op", op),
				slog.String("method", method), slog.String("url", u), slog.Int("status", resp.status))
			return resp, nil
		}
		lastErr = err
		if !errors.Is(err, syscall.ECONNREFUSED) || ctx.Err() != nil {
			break
		}
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "challenge: http failed", slog.String("op", op),
		slog.String("method", method), slog.String("url", u), slog.String("err", lastErr.Error()))
	return nil, &Error{Op: op, Cause: lastErr}
}

func (c *Client) once(ctx context.Context, method, u string, prep func(*resty.Request)) (*response, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req := c.rc.R().SetContext(rctx)
	if prep != nil {
		prep(req)
	}
	resp, err := req.Execute(method, u)
	if err != nil {
		if errors.Is(err, resty.ErrResponseBodyTooLarge) {
			return nil, ErrResponseTooLarge
		}
		return nil, err
	}
	return &response{status: resp.StatusCode(), header: resp.Header(), body: resp.Body()}, nil
}

// getMetadata GETs a metadata document, retrying at most twice on 503 with a
// Retry-After of ≤ 5 s that fits in the caller's deadline. GETs carry no
// secrets and are idempotent; no POST is ever retried this way.
func (c *Client) getMetadata(ctx context.Context, op, u string) (*response, error) {
	const maxRetryAfter = 5 * time.Second
	for attempt := 0; ; attempt++ {
		resp, err := c.do(ctx, op, http.MethodGet, u, func(r *resty.Request) {
			r.SetHeader("Accept", "application/json")
		})
		if err != nil {
			return nil, err
		}
		if resp.status != http.StatusServiceUnavailable || attempt >= 2 {
			return resp, nil
		}
		wait, ok := retryAfter(resp.header.Get("Retry-After"), c.now())
		if !ok || wait > maxRetryAfter {
			return resp, nil
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) < wait {
			return resp, nil
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, &Error{Op: op, Cause: err}
		}
	}
}

func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
