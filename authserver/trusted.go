package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	yaml "go.yaml.in/yaml/v3"
)

// TrustedIssuer is an external issuer whose tokens the AS accepts as RFC
// 8693 subject tokens.
type TrustedIssuer struct {
	Issuer       string `yaml:"issuer"`
	JWKSURL      string `yaml:"jwks_url"`
	JWKSFile     string `yaml:"jwks_file"`
	SubjectClaim string `yaml:"subject_claim"` // claim naming the patient id; default "sub"
	MaxACR       string `yaml:"max_acr"`       // highest acr it may vouch for; default the policy cap (kba)
	// Audience is the value the subject token's aud must contain; default
	// this AS's issuer identifier. A token without aud is always refused.
	Audience string `yaml:"audience"`
	// Types are the accepted JOSE "typ" header values (compared without
	// case and without an "application/" prefix, RFC 7515 §4.1.9); default
	// JWT and at+jwt. A token without typ is refused.
	Types []string `yaml:"types"`
}

// subjectMaxLife bounds how far in the future a subject token's exp may be.
const subjectMaxLife = 24 * time.Hour

// defaultSubjectTypes are the typ values accepted when an issuer lists none.
var defaultSubjectTypes = []string{"JWT", "at+jwt"}

// normType is a typ value in comparable form.
func normType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	return strings.TrimPrefix(t, "application/")
}

// LoadTrustedIssuers reads a YAML file: `trusted_issuers: [{issuer, jwks_url | jwks_file, subject_claim, max_acr}]`
// (a bare list is accepted too).
func LoadTrustedIssuers(yamlPath string) ([]TrustedIssuer, error) {
	b, err := os.ReadFile(yamlPath)
	if err != nil {
		return nil, err
	}
	var doc struct {
		TrustedIssuers []TrustedIssuer `yaml:"trusted_issuers"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil || doc.TrustedIssuers == nil {
		var list []TrustedIssuer
		if err2 := yaml.Unmarshal(b, &list); err2 != nil {
			return nil, fmt.Errorf("authserver: %s: not a trusted_issuers document", yamlPath)
		}
		doc.TrustedIssuers = list
	}
	for _, t := range doc.TrustedIssuers {
		if t.Issuer == "" || (t.JWKSURL == "") == (t.JWKSFile == "") {
			return nil, fmt.Errorf("authserver: %s: each issuer needs issuer and exactly one of jwks_url, jwks_file", yamlPath)
		}
		if t.MaxACR != "" && acrRank(t.MaxACR) == 0 {
			return nil, fmt.Errorf("authserver: %s: unknown max_acr %q", yamlPath, t.MaxACR)
		}
		for _, ty := range t.Types {
			if normType(ty) == "" {
				return nil, fmt.Errorf("authserver: %s: empty entry in types", yamlPath)
			}
		}
	}
	return doc.TrustedIssuers, nil
}

// trustedSet verifies subject tokens, caching each issuer's JWKS.
type trustedSet struct {
	self     string // this AS's issuer: the default audience
	byIssuer map[string]TrustedIssuer
	hc       *http.Client
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]cachedJWKS
}

type cachedJWKS struct {
	set     jose.JSONWebKeySet
	fetched time.Time
}

const jwksCacheTTL = 5 * time.Minute

func newTrustedSet(self string, ts []TrustedIssuer, hc *http.Client, now func() time.Time) *trustedSet {
	t := &trustedSet{self: self, byIssuer: map[string]TrustedIssuer{}, hc: hc, now: now, cache: map[string]cachedJWKS{}}
	for _, x := range ts {
		t.byIssuer[x.Issuer] = x
	}
	return t
}

type verifiedSubject struct {
	issuer, subject, acr, maxACR string
	jti                          string
	authTime, exp                time.Time
}

var subjectAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}

func (t *trustedSet) verify(ctx context.Context, raw string) (*verifiedSubject, error) {
	if len(raw) > 16384 {
		return nil, errors.New("subject token too large")
	}
	tok, err := jwt.ParseSigned(raw, subjectAlgs)
	if err != nil {
		return nil, errors.New("subject token is not a signed JWT")
	}
	var pre jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&pre); err != nil {
		return nil, errors.New("subject token claims unreadable")
	}
	ti, ok := t.byIssuer[pre.Issuer]
	if !ok {
		return nil, errors.New("issuer not trusted")
	}
	if !typeAccepted(ti, tok.Headers) {
		return nil, errors.New("subject token typ not accepted")
	}
	set, err := t.keys(ctx, ti, false)
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var all map[string]any
	verify := func(set jose.JSONWebKeySet) bool {
		for _, h := range tok.Headers {
			keys := set.Keys
			if h.KeyID != "" {
				keys = set.Key(h.KeyID)
			}
			for _, k := range keys {
				if tok.Claims(k.Public().Key, &std, &all) == nil {
					return true
				}
			}
		}
		return false
	}
	if !verify(set) {
		// Maybe the issuer rotated: refetch once.
		if set, err = t.keys(ctx, ti, true); err != nil || !verify(set) {
			return nil, errors.New("subject token signature invalid")
		}
	}
	// The audience is required and must name this AS (or the configured
	// value): a token minted for another service is not ours to exchange.
	aud := ti.Audience
	if aud == "" {
		aud = t.self
	}
	exp := jwt.Expected{Issuer: ti.Issuer, AnyAudience: jwt.Audience{aud}, Time: t.now()}
	if std.Expiry == nil {
		return nil, errors.New("subject token has no exp")
	}
	if len(std.Audience) == 0 {
		return nil, errors.New("subject token has no aud")
	}
	// Its jti is kept until its exp: a token that claims to live for years
	// would be remembered for years. Real upstream tokens live minutes.
	if std.Expiry.Time().After(t.now().Add(subjectMaxLife)) {
		return nil, errors.New("subject token lives too long")
	}
	if std.ID == "" {
		return nil, errors.New("subject token has no jti")
	}
	if err := std.ValidateWithLeeway(exp, 30*time.Second); err != nil {
		return nil, errors.New("subject token expired or not for us")
	}
	claim := ti.SubjectClaim
	if claim == "" {
		claim = "sub"
	}
	sub, _ := all[claim].(string)
	if sub == "" {
		return nil, errors.New("subject claim missing")
	}
	v := &verifiedSubject{issuer: ti.Issuer, subject: sub, maxACR: ti.MaxACR, jti: std.ID, exp: std.Expiry.Time()}
	v.acr, _ = all["acr"].(string)
	if at, ok := all["auth_time"].(float64); ok {
		v.authTime = time.Unix(int64(at), 0)
	}
	return v, nil
}

// typeAccepted checks the JOSE typ header against the issuer's list.
func typeAccepted(ti TrustedIssuer, hs []jose.Header) bool {
	types := ti.Types
	if len(types) == 0 {
		types = defaultSubjectTypes
	}
	if len(hs) != 1 {
		return false
	}
	typ, _ := hs[0].ExtraHeaders[jose.HeaderType].(string)
	if normType(typ) == "" {
		return false
	}
	for _, want := range types {
		if normType(typ) == normType(want) {
			return true
		}
	}
	return false
}

func (t *trustedSet) keys(ctx context.Context, ti TrustedIssuer, refresh bool) (jose.JSONWebKeySet, error) {
	t.mu.Lock()
	c, ok := t.cache[ti.Issuer]
	t.mu.Unlock()
	if ok && !refresh && t.now().Sub(c.fetched) < jwksCacheTTL {
		return c.set, nil
	}
	var body []byte
	if ti.JWKSFile != "" {
		b, err := os.ReadFile(ti.JWKSFile)
		if err != nil {
			return c.set, fmt.Errorf("jwks file: %w", err)
		}
		body = b
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ti.JWKSURL, nil)
		if err != nil {
			return c.set, err
		}
		resp, err := t.hc.Do(req)
		if err != nil {
			return c.set, fmt.Errorf("jwks fetch: %w", redactURLError(err))
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return c.set, fmt.Errorf("jwks fetch: HTTP %d", resp.StatusCode)
		}
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return c.set, err
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return c.set, errors.New("jwks malformed")
	}
	t.mu.Lock()
	t.cache[ti.Issuer] = cachedJWKS{set: set, fetched: t.now()}
	t.mu.Unlock()
	return set, nil
}
