package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/session"
)

// registryEnv is an AS whose registry lives in its own store.
func registryEnv(t *testing.T) (*env, *Registry) {
	t.Helper()
	var reg *Registry
	e := newEnv(t, func(c *Config) {
		reg = &Registry{Store: c.Store, Now: c.Now, Grace: time.Hour}
		c.Registry = reg
	})
	return e, reg
}

// exchangeForm is an RFC 8693 request for pt-0003 from a trusted issuer.
func exchangeForm(t *testing.T, idp *externalIssuer, now time.Time) url.Values {
	return url.Values{"grant_type": {challenge.GrantTypeTokenExchange},
		"subject_token":      {idp.token(t, now, map[string]any{"patient_id": "pt-0003"})},
		"subject_token_type": {challenge.TokenTypeJWT}, "resource": {testResource}, "scope": {"appointments:read"}}
}

func TestRegistryKindsGateEndpoints(t *testing.T) {
	idp := newExternalIssuer(t)
	var reg *Registry
	e := newEnv(t, func(c *Config) {
		reg = &Registry{Store: c.Store, Now: c.Now}
		c.Registry = reg
		c.TrustedIssuers = []TrustedIssuer{{Issuer: idp.ts.URL, JWKSURL: idp.ts.URL, SubjectClaim: "patient_id"}}
	})
	idp.aud = e.ts.URL // subject tokens must name this AS
	ctx := context.Background()
	secrets := map[string]string{}
	for _, k := range []string{KindVoice, KindHost, KindExchange} {
		s, err := reg.Add(ctx, "reg-"+k, k, AuthSecret, nil)
		if err != nil || len(s) < 32 {
			t.Fatalf("Add %s = %q, %v", k, s, err)
		}
		secrets[k] = s
	}
	m := demo("pt-0001")
	challengeAs := func(kind string) reply {
		_, c := pkce()
		f := kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "")
		f.Set("client_id", "reg-"+kind)
		return e.post("/challenge", f, basic("reg-"+kind, secrets[kind]))
	}
	if r := challengeAs(KindVoice); r.status != 200 {
		t.Fatalf("voice client at the challenge endpoint: %d %s", r.status, r.body)
	}
	for _, k := range []string{KindHost, KindExchange} {
		if r := challengeAs(k); r.status == 200 || r.err.Error != "unauthorized_client" {
			t.Fatalf("%s client at the challenge endpoint: %d %s", k, r.status, r.body)
		}
	}
	exchangeAs := func(kind string) reply {
		return e.post("/token", exchangeForm(t, idp, e.clk.Now()), basic("reg-"+kind, secrets[kind]))
	}
	if r := exchangeAs(KindExchange); r.status != 200 {
		t.Fatalf("exchange client doing RFC 8693: %d %s", r.status, r.body)
	}
	for _, k := range []string{KindVoice, KindHost} {
		if r := exchangeAs(k); r.status != 400 || r.err.Error != "unauthorized_client" {
			t.Fatalf("%s client doing RFC 8693: %d %s", k, r.status, r.body)
		}
	}
	// Every kind authenticates (the host's credential check is introspection).
	for k, s := range secrets {
		if r := e.post("/introspect", url.Values{"token": {"x"}}, basic("reg-"+k, s)); r.status != 200 {
			t.Fatalf("%s client at introspection: %d %s", k, r.status, r.body)
		}
		if r := e.post("/introspect", url.Values{"token": {"x"}}, basic("reg-"+k, s+"x")); r.status != 401 {
			t.Fatalf("%s client with a wrong secret: %d %s", k, r.status, r.body)
		}
		if got, err := e.srv.ClientKind(ctx, "reg-"+k); err != nil || got != k {
			t.Fatalf("ClientKind(reg-%s) = %q, %v", k, got, err)
		}
	}
	if got, err := e.srv.ClientKind(ctx, "nobody"); err != nil || got != "" {
		t.Fatalf("ClientKind(unknown) = %q, %v", got, err)
	}
}

func TestRegistryRotateAndRemove(t *testing.T) {
	e, reg := registryEnv(t)
	ctx := context.Background()
	ok := func(secret string) bool {
		return e.post("/introspect", url.Values{"token": {"x"}}, basic("h1", secret)).status == 200
	}
	s1, err := reg.Add(ctx, "h1", KindHost, "", nil)
	if err != nil || !ok(s1) {
		t.Fatalf("add: %v", err)
	}
	s2, until, err := reg.RotateSecret(ctx, "h1")
	if err != nil || s2 == s1 || !until.Equal(e.clk.Now().Add(time.Hour)) {
		t.Fatalf("rotate = %v, %v", until, err)
	}
	if !ok(s1) || !ok(s2) {
		t.Fatal("during the grace period both secrets must work")
	}
	list, err := reg.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "h1" || list[0].Kind != KindHost || list[0].Auth != AuthSecret || !list[0].PrevSecretUntil.Equal(until) {
		t.Fatalf("List = %+v, %v", list, err)
	}
	e.clk.Add(time.Hour)
	if ok(s1) || !ok(s2) {
		t.Fatal("after the grace period only the new secret may work")
	}
	// A second rotation retires the secret before it at once.
	s3, _, err := reg.RotateSecret(ctx, "h1")
	if err != nil || !ok(s3) || !ok(s2) || ok(s1) {
		t.Fatalf("second rotation: %v", err)
	}
	s4, _, err := reg.RotateSecret(ctx, "h1")
	if err != nil || !ok(s4) || !ok(s3) || ok(s2) {
		t.Fatalf("third rotation: %v", err)
	}
	// A second instance on the same store sees removal at once.
	other, err := New(Config{Issuer: "http://127.0.0.1:1", Store: e.st, Pepper: testPepper, SigningKeys: e.srv.cfg.SigningKeys,
		Registry: &Registry{Store: e.st, Now: e.clk.Now}, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := other.ClientKind(ctx, "h1"); k != KindHost {
		t.Fatalf("other instance ClientKind = %q", k)
	}
	if err := reg.Remove(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if ok(s4) || ok(s3) {
		t.Fatal("a removed client still authenticates")
	}
	if k, _ := other.ClientKind(ctx, "h1"); k != "" {
		t.Fatalf("other instance still knows the removed client as %q", k)
	}
	if err := reg.Remove(ctx, "h1"); !errors.Is(err, ErrClientNotFound) {
		t.Fatalf("second Remove = %v", err)
	}
	if _, _, err := reg.RotateSecret(ctx, "h1"); !errors.Is(err, ErrClientNotFound) {
		t.Fatalf("Rotate removed = %v", err)
	}
	// Every change is audited, without the secret.
	evs, err := e.st.ListAudit(ctx, sessionFilter())
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.Type, "client.") {
			types = append(types, ev.Type)
		}
		b, _ := json.Marshal(ev)
		for _, s := range []string{s1, s2, s3, s4} {
			if strings.Contains(string(b), s) {
				t.Fatalf("audit event carries a secret: %s", b)
			}
		}
	}
	if strings.Join(types, ",") != "client.added,client.secret_rotated,client.secret_rotated,client.secret_rotated,client.removed" {
		t.Fatalf("audit types = %v", types)
	}
}

func TestRegistryRejectsBadRegistrations(t *testing.T) {
	e, reg := registryEnv(t)
	ctx := context.Background()
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	priv := jose.JSONWebKey{Key: pk, KeyID: "k1", Algorithm: "ES256"}
	privSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv}})
	pubSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv.Public()}})
	tests := []struct {
		name, id, kind, auth string
		jwks                 []byte
	}{
		{"empty id", "", KindHost, AuthSecret, nil},
		{"id with space", "a b", KindHost, AuthSecret, nil},
		{"id with colon (breaks Basic auth)", "a:b", KindHost, AuthSecret, nil},
		{"id too long", strings.Repeat("a", 65), KindHost, AuthSecret, nil},
		{"unknown kind", "c1", "admin", AuthSecret, nil},
		{"unknown auth", "c1", KindHost, "none", nil},
		{"jwt without jwks", "c1", KindHost, AuthPrivateKeyJWT, nil},
		{"jwks not json", "c1", KindHost, AuthPrivateKeyJWT, []byte("{nope")},
		{"empty jwks", "c1", KindHost, AuthPrivateKeyJWT, []byte(`{"keys":[]}`)},
		{"private key in jwks", "c1", KindHost, AuthPrivateKeyJWT, privSet},
		{"jwks with secret auth", "c1", KindHost, AuthSecret, pubSet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := reg.Add(ctx, tt.id, tt.kind, tt.auth, tt.jwks); !errors.Is(err, ErrClientInvalid) || s != "" {
				t.Fatalf("Add = %q, %v; want ErrClientInvalid", s, err)
			}
		})
	}
	if list, _ := reg.List(ctx); len(list) != 0 {
		t.Fatalf("bad registrations stored: %+v", list)
	}
	if _, err := reg.Add(ctx, "c1", KindHost, AuthSecret, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Add(ctx, "c1", KindVoice, AuthSecret, nil); !errors.Is(err, ErrClientExists) {
		t.Fatalf("duplicate Add = %v", err)
	}
	if k, _ := reg.Kind(ctx, "c1"); k != KindHost {
		t.Fatalf("duplicate Add changed the kind to %q", k)
	}
	// A registry entry cannot shadow a configured client.
	s, err := reg.Add(ctx, ivrID, KindVoice, AuthSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.post("/introspect", url.Values{"token": {"x"}}, basic(ivrID, s)); r.status != 401 {
		t.Fatalf("registry secret for a configured client id: %d", r.status)
	}
	if r := e.post("/introspect", url.Values{"token": {"x"}}); r.status != 200 {
		t.Fatalf("configured client: %d", r.status)
	}
	// private_key_jwt: rotation is refused, assertions verify.
	if _, err := reg.Add(ctx, "pk1", KindVoice, AuthPrivateKeyJWT, pubSet); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.RotateSecret(ctx, "pk1"); !errors.Is(err, ErrClientInvalid) {
		t.Fatalf("rotate a key client = %v", err)
	}
	sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, nil)
	now := e.clk.Now()
	assertion, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "pk1", Subject: "pk1", Audience: jwt.Audience{e.ts.URL},
		ID: randomToken(8), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	f := url.Values{"token": {"x"}, "client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {assertion}}
	if r := e.post("/introspect", f, noAuth); r.status != 200 {
		t.Fatalf("registered private_key_jwt client: %d %s", r.status, r.body)
	}
	if r := e.post("/introspect", url.Values{"token": {"x"}}, func(r *http.Request) { r.SetBasicAuth("pk1", "") }); r.status != 401 {
		t.Fatalf("key client with an empty secret: %d", r.status)
	}
}

func sessionFilter() session.AuditFilter { return session.AuditFilter{} }

func FuzzParsePublicJWKS(f *testing.F) {
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k := jose.JSONWebKey{Key: pk, KeyID: "k1", Algorithm: "ES256"}
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public()}})
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}})
	f.Add(pub)
	f.Add(priv)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := parsePublicJWKS(b)
		if err != nil {
			if !errors.Is(err, ErrClientInvalid) {
				t.Fatalf("error outside the registry's vocabulary: %v", err)
			}
			return
		}
		for _, k := range set.Keys {
			if !k.IsPublic() {
				t.Fatal("accepted a private key")
			}
		}
	})
}
