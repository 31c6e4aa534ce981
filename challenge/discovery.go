package challenge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
)

// Discovery is everything a flow needs to know about one MCP server and the
// authorization server that protects it, validated.
type Discovery struct {
	// Resource is the PRM resource, byte for byte: the token audience and the
	// RFC 8707 resource parameter.
	Resource string
	// Scopes is the initial scope set: the 401 challenge's scope, else the
	// PRM scopes_supported, else empty (omit scope).
	Scopes []string
	PRM    ProtectedResourceMetadata
	AS     ASMetadata
}

// Discover probes mcpURL without a token, follows its 401 challenge to the
// protected resource metadata (RFC 9728; falling back to the path-inserted,
// then the root well-known URL) and then to the authorization server
// metadata (RFC 8414, then OpenID discovery variants), validating each step.
// Results are cached until the earliest metadata expiry.
func (c *Client) Discover(ctx context.Context, mcpURL string) (*Discovery, error) {
	key, err := canonicalURL(mcpURL)
	if err != nil {
		return nil, &Error{Op: "discover", Cause: err}
	}
	if err := checkTransport(mcpURL); err != nil {
		return nil, &Error{Op: "discover", Cause: err}
	}
	c.mu.Lock()
	if e, ok := c.discCache[key]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		d := e.v
		d.Scopes = slices.Clone(d.Scopes)
		return &d, nil
	}
	c.mu.Unlock()

	metaURL, challengeScope, err := c.probe(ctx, mcpURL)
	if err != nil {
		return nil, err
	}
	prm, prmExp, err := c.fetchPRM(ctx, mcpURL, metaURL)
	if err != nil {
		return nil, err
	}
	issuer, err := c.pickIssuer(prm)
	if err != nil {
		return nil, err
	}
	as, asExp, err := c.fetchAS(ctx, issuer)
	if err != nil {
		return nil, err
	}
	d := Discovery{Resource: prm.Resource, PRM: prm, AS: as}
	switch {
	case challengeScope != "":
		d.Scopes = strings.Fields(challengeScope)
	case len(prm.ScopesSupported) > 0:
		d.Scopes = slices.Clone(prm.ScopesSupported)
	}
	exp := prmExp
	if asExp.Before(exp) {
		exp = asExp
	}
	c.mu.Lock()
	c.discCache[key] = cached[Discovery]{v: d, expires: exp}
	c.mu.Unlock()
	c.log.LogAttrs(ctx, slog.LevelInfo, "challenge: discovered", slog.String("resource", d.Resource), slog.String("issuer", as.Issuer))
	out := d
	out.Scopes = slices.Clone(d.Scopes)
	return &out, nil
}

// probe calls the MCP endpoint without a token. A 401 with a Bearer challenge
// yields resource_metadata and scope; anything else yields neither (the
// caller then falls back to well-known URLs).
func (c *Client) probe(ctx context.Context, mcpURL string) (metaURL, scope string, err error) {
	resp, err := c.do(ctx, "discover", http.MethodPost, mcpURL, func(r *resty.Request) {
		r.SetHeader("Content-Type", "application/json").
			SetHeader("Accept", "application/json, text/event-stream").
			SetBody(`{"jsonrpc":"2.0","id":0,"method":"ping"}`)
	})
	if err != nil {
		return "", "", err
	}
	if resp.status != http.StatusUnauthorized {
		return "", "", nil
	}
	for _, h := range resp.header.Values("WWW-Authenticate") {
		scheme, params, perr := ParseWWWAuthenticate(h)
		if perr != nil || scheme != "bearer" {
			continue
		}
		return params["resource_metadata"], params["scope"], nil
	}
	return "", "", nil
}

// fetchPRM fetches and validates the PRM. resource must equal the MCP URL
// (canonical compare) whichever URL it came from.
func (c *Client) fetchPRM(ctx context.Context, mcpURL, metaURL string) (ProtectedResourceMetadata, time.Time, error) {
	var candidates []string
	if metaURL != "" {
		candidates = []string{metaURL}
	} else {
		candidates = wellKnownCandidates(mcpURL, "oauth-protected-resource", false)
	}
	var lastErr error = ErrNotDiscovered
	for _, u := range candidates {
		if err := checkTransport(u); err != nil {
			return ProtectedResourceMetadata{}, time.Time{}, &Error{Op: "discover", Cause: err}
		}
		c.mu.Lock()
		e, ok := c.prmCache[u]
		c.mu.Unlock()
		var prm ProtectedResourceMetadata
		exp := e.expires
		if ok && c.now().Before(e.expires) {
			prm = e.v
		} else {
			resp, err := c.getMetadata(ctx, "discover", u)
			if err != nil {
				return prm, time.Time{}, err
			}
			if resp.status != http.StatusOK {
				lastErr = &Error{Op: "discover", StatusCode: resp.status, Cause: ErrUnexpectedStatus}
				continue
			}
			if err := decodeJSON(resp.body, &prm); err != nil {
				return prm, time.Time{}, &Error{Op: "discover", StatusCode: resp.status, Cause: err}
			}
			exp = c.expiry(resp.header)
		}
		if !sameResource(prm.Resource, mcpURL) {
			return ProtectedResourceMetadata{}, time.Time{}, &Error{Op: "discover", Cause: ErrResourceMismatch}
		}
		if len(prm.AuthorizationServers) == 0 {
			return ProtectedResourceMetadata{}, time.Time{}, &Error{Op: "discover", Cause: fmt.Errorf("%w: no authorization_servers", ErrNotDiscovered)}
		}
		c.mu.Lock()
		c.prmCache[u] = cached[ProtectedResourceMetadata]{v: prm, expires: exp}
		c.mu.Unlock()
		return prm, exp, nil
	}
	if _, ok := lastErr.(*Error); ok {
		return ProtectedResourceMetadata{}, time.Time{}, lastErr
	}
	return ProtectedResourceMetadata{}, time.Time{}, &Error{Op: "discover", Cause: lastErr}
}

func (c *Client) pickIssuer(prm ProtectedResourceMetadata) (string, error) {
	if c.cfg.Issuer == "" {
		return prm.AuthorizationServers[0], nil
	}
	if slices.Contains(prm.AuthorizationServers, c.cfg.Issuer) {
		return c.cfg.Issuer, nil
	}
	return "", &Error{Op: "discover", Cause: ErrUntrustedIssuer}
}

// pinnedAS returns the last validated metadata of issuer, whatever its
// age, fetching it when there is none or when accept rejects it. Every
// request that carries answers, codes or tokens resolves its endpoint here,
// so it only ever goes to an endpoint its own issuer published; the
// freshness of Discover still honours Cache-Control.
func (c *Client) pinnedAS(ctx context.Context, issuer string, accept func(ASMetadata) bool) (ASMetadata, error) {
	if err := c.credentialIssuer(issuer, false); err != nil {
		return ASMetadata{}, &Error{Op: "discover", Cause: err}
	}
	c.mu.Lock()
	e, ok := c.asCache[issuer]
	c.mu.Unlock()
	if ok && (accept == nil || accept(e.v)) {
		return e.v, nil
	}
	as, _, err := c.loadAS(ctx, issuer)
	if err != nil {
		return ASMetadata{}, err
	}
	return as, nil
}

func (c *Client) fetchAS(ctx context.Context, issuer string) (ASMetadata, time.Time, error) {
	c.mu.Lock()
	if e, ok := c.asCache[issuer]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.v, e.expires, nil
	}
	c.mu.Unlock()
	return c.loadAS(ctx, issuer)
}

// loadAS fetches and validates issuer's metadata from the network.
func (c *Client) loadAS(ctx context.Context, issuer string) (ASMetadata, time.Time, error) {
	if err := checkTransport(issuer); err != nil {
		return ASMetadata{}, time.Time{}, &Error{Op: "discover", Cause: err}
	}
	u, err := url.Parse(issuer)
	if err != nil || u.RawQuery != "" || u.Fragment != "" {
		return ASMetadata{}, time.Time{}, &Error{Op: "discover", Cause: fmt.Errorf("%w: issuer is not a valid URL", ErrNotDiscovered)}
	}
	candidates := wellKnownCandidates(issuer, "oauth-authorization-server", false)
	oidc := wellKnownCandidates(issuer, "openid-configuration", true)
	candidates = append(candidates[:1], oidc...)
	var lastErr error = &Error{Op: "discover", Cause: ErrNotDiscovered}
	for _, cand := range candidates {
		resp, err := c.getMetadata(ctx, "discover", cand)
		if err != nil {
			return ASMetadata{}, time.Time{}, err
		}
		if resp.status != http.StatusOK {
			lastErr = &Error{Op: "discover", StatusCode: resp.status, Cause: ErrUnexpectedStatus}
			continue
		}
		var as ASMetadata
		if err := decodeJSON(resp.body, &as); err != nil {
			return ASMetadata{}, time.Time{}, &Error{Op: "discover", StatusCode: resp.status, Cause: err}
		}
		if err := validateAS(&as, issuer); err != nil {
			return ASMetadata{}, time.Time{}, &Error{Op: "discover", Cause: err}
		}
		exp := c.expiry(resp.header)
		c.mu.Lock()
		c.asCache[issuer] = cached[ASMetadata]{v: as, expires: exp}
		c.mu.Unlock()
		return as, exp, nil
	}
	return ASMetadata{}, time.Time{}, lastErr
}

// validateAS fails closed on everything the profile requires.
func validateAS(as *ASMetadata, issuer string) error {
	if as.Issuer != issuer {
		return ErrIssuerMismatch
	}
	if !slices.Contains(as.CodeChallengeMethodsSupported, "S256") {
		return ErrNoS256
	}
	if as.AuthorizationChallengeEndpoint == "" {
		return ErrNoChallengeEP
	}
	if as.TokenEndpoint == "" {
		return fmt.Errorf("%w: no token_endpoint", ErrMalformedResponse)
	}
	for _, ep := range []string{as.AuthorizationChallengeEndpoint, as.TokenEndpoint, as.RevocationEndpoint} {
		if ep == "" {
			continue
		}
		if err := checkTransport(ep); err != nil {
			return err
		}
	}
	return nil
}

// wellKnownCandidates builds RFC 8615 URLs for base: path-inserted first,
// then (for a base with a path) the root one, or with appendToo the
// path-appended form used by OpenID discovery.
func wellKnownCandidates(base, suffix string, appendToo bool) []string {
	u, err := url.Parse(base)
	if err != nil {
		return nil
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	root := u.Scheme + "://" + u.Host + "/.well-known/" + suffix
	if path == "" {
		return []string{root}
	}
	if appendToo {
		return []string{root + path, u.Scheme + "://" + u.Host + path + "/.well-known/" + suffix}
	}
	return []string{root + path, root}
}

// expiry derives a cache expiry from Cache-Control: no-store / no-cache /
// max-age=0 mean "use once"; max-age is capped; absent means the default.
func (c *Client) expiry(h http.Header) time.Time {
	now := c.now()
	ttl := c.cfg.DefaultMetadataTTL
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache":
				return now
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(d, "max-age="), `"`))
				if err != nil || n < 0 {
					return now
				}
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	if ttl > c.cfg.MaxMetadataTTL {
		ttl = c.cfg.MaxMetadataTTL
	}
	return now.Add(ttl)
}

// decodeJSON decodes one JSON object. Errors name only the kind of problem,
// never a fragment of the body.
func decodeJSON(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrMalformedResponse)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("%w: invalid JSON at offset %d", ErrMalformedResponse, se.Offset)
		case errors.As(err, &te):
			return fmt.Errorf("%w: wrong type for field %q", ErrMalformedResponse, te.Field)
		default:
			return fmt.Errorf("%w: truncated or invalid JSON", ErrMalformedResponse)
		}
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after JSON object", ErrMalformedResponse)
	}
	return nil
}

// canonicalURL is the comparison form of an http(s) URL: lower-case scheme
// and host, default port dropped, empty path as "/". Fragments are refused.
func canonicalURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: invalid URL", ErrResourceMismatch)
	}
	scheme := strings.ToLower(u.Scheme) // url.Parse already lower-cases; be explicit
	if (scheme != "https" && scheme != "http") || u.Host == "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: not an absolute http(s) URL without fragment", ErrResourceMismatch)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	hp := host
	if strings.Contains(host, ":") {
		hp = "[" + host + "]"
	}
	if port != "" {
		hp += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	out := scheme + "://" + hp + path
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

func sameResource(a, b string) bool {
	ca, err1 := canonicalURL(a)
	cb, err2 := canonicalURL(b)
	return err1 == nil && err2 == nil && ca == cb
}

// checkTransport allows https anywhere and http only on loopback (the
// embedded default).
func checkTransport(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: invalid URL", ErrInsecureURL)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if strings.EqualFold(h, "localhost") {
			return nil
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return ErrInsecureURL
}
