package authserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/session"
)

// The two bodies a failing KBA submission may get (auth_session masked).
const (
	bodyKBARetry    = `{"error":"insufficient_authorization","auth_session":"SESSION","kba_required":["kba_name","kba_birthdate","kba_ssn_last4"],"kba_retry":true}`
	bodyOTPRequired = `{"error":"insufficient_authorization","auth_session":"SESSION","otp_required":true}`
)

// TestNoOracleThroughRisk is KBA-PROFILE "No oracle through risk": when the
// answers fail, the raw response body depends only on the request's number,
// attestation and scope (and acr_values), never on whom the answers name or
// why they failed. From a number on file for some patient, A-attested, at
// the KBA tier, every failing cause gets the kba_retry body; otherwise every
// failing cause gets the otp_required body, and nothing is texted.
func TestNoOracleThroughRisk(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Policy.NumberFailures = 1 << 20 // this test is about bodies, not number blocks
	})
	ctx := context.Background()
	if err := Seed(ctx, e.st, testPepper, []DemoPatient{
		{"pt-x1", "Ana Twin", "1990-01-01", "7777", "+15555550190", "mobile"},
		{"pt-x2", "Ana Twin", "1990-01-01", "7777", "+15555550191", "mobile"},
	}); err != nil {
		t.Fatal(err)
	}
	maria, james, zoe := demo("pt-0001"), demo("pt-0002"), demo("pt-0006")
	// Lock Zoë from her own number (3 failures in 3 sessions).
	for range 3 {
		_, c := pkce()
		if r := e.post("/challenge", kba(c, zoe.Name, "1999-01-01", zoe.SSNLast4, zoe.Phone, stirA, "")); r.status != 400 {
			t.Fatalf("locking Zoë: %s", r.body)
		}
	}
	causes := []struct{ label, name, dob, ssn string }{
		{"owner, wrong DOB", maria.Name, "1980-03-04", maria.SSNLast4},
		{"owner, wrong SSN-4", maria.Name, maria.Birthdate, "0000"},
		{"owner, all wrong", maria.Name, "2001-01-01", "0000"},
		{"other patient, wrong DOB", james.Name, "1955-11-29", james.SSNLast4},
		{"other patient, wrong SSN-4", james.Name, james.Birthdate, "1234"},
		{"unknown person", "Nobody Known", "1970-05-05", "1234"},
		{"unknown, owner's DOB and SSN-4", "Nobody Known", maria.Birthdate, maria.SSNLast4},
		{"ambiguous", "Ana Twin", "1990-01-01", "7777"},
		{"locked other patient, right answers", zoe.Name, zoe.Birthdate, zoe.SSNLast4},
	}
	type ctxt struct {
		label, phone, stir, scope, acr string
		want                           string
	}
	contexts := []ctxt{
		{"owner's number, A, kba scope", maria.Phone, stirA, "", "", bodyKBARetry},
		{"owner's number, A with suffix, kba scope", maria.Phone, stirA + "-Diverted", "appointments:read", "", bodyKBARetry},
		{"other patient's number, A, kba scope", james.Phone, stirA, "", "", bodyKBARetry},
		{"owner's number, B", maria.Phone, "TN-Validation-Passed-B", "", "", bodyOTPRequired},
		{"owner's number, no attestation", maria.Phone, "", "", "", bodyOTPRequired},
		{"owner's number, A, otp scope", maria.Phone, stirA, "appointments:read medications:read", "", bodyOTPRequired},
		{"owner's number, A, acr_values kba-otp", maria.Phone, stirA, "", challenge.ACRKBAOTP, bodyOTPRequired},
		{"number not on file, A", "+15555550999", stirA, "", "", bodyOTPRequired},
		{"no number, A", "", stirA, "", "", bodyOTPRequired},
	}
	for _, cx := range contexts {
		t.Run(cx.label, func(t *testing.T) {
			for _, cs := range causes {
				before := len(outboxLines(e.outbox))
				_, c := pkce()
				f := kba(c, cs.name, cs.dob, cs.ssn, cx.phone, cx.stir, cx.scope)
				if cx.acr != "" {
					f.Set("acr_values", cx.acr)
				}
				r := e.post("/challenge", f)
				if got := maskSession(r.body, r.err.AuthSession); r.status != 400 || got != cx.want {
					t.Errorf("%s: %d %s\nwant %s", cs.label, r.status, got, cx.want)
				}
				if len(outboxLines(e.outbox)) != before {
					t.Errorf("%s: a code was texted for failed answers", cs.label)
				}
			}
		})
	}
	// The owner with right answers from the owner's number still gets a code:
	// the rule does not make the failing body the only one. (Maria was
	// charged above only for her own causes; clear her lock first.)
	if err := e.srv.ClearLock(ctx, maria.ID); err != nil {
		t.Fatal(err)
	}
	_, c := pkce()
	if r := e.post("/challenge", kba(c, maria.Name, maria.Birthdate, maria.SSNLast4, maria.Phone, stirA, "")); r.status != 200 {
		t.Fatalf("right answers from the number on file: %d %s", r.status, r.body)
	}
}

// TestReentryNeedsFreshChallenge: every code has its own verifier. A
// re-entry must carry a code_challenge that got no code yet on this
// auth_session; the new code is bound to it, not to an older one.
func TestReentryNeedsFreshChallenge(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0001")
	v1, c1 := pkce()
	r := e.post("/challenge", kba(c1, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, ""))
	var ok challenge.ChallengeSuccess
	if r.status != 200 || r.json(&ok) != nil {
		t.Fatalf("kba: %d %s", r.status, r.body)
	}
	var tr struct {
		AuthSession string `json:"auth_session"`
	}
	e.redeem(ok.AuthorizationCode, v1).json(&tr)
	sess := tr.AuthSession
	if sess == "" {
		t.Fatal("no auth_session for step-up")
	}
	stepUp := func(kv ...string) reply {
		return e.post("/challenge", follow(sess, append([]string{"acr_values", challenge.ACRKBAOTP,
			"scope", "appointments:read medications:read"}, kv...)...))
	}
	// The challenge that already got a code is refused, as is none at all.
	if r := stepUp("code_challenge", c1, "code_challenge_method", "S256"); r.status != 400 || r.err.Error != challenge.ErrInvalidRequest {
		t.Fatalf("re-entry with the spent code_challenge: %d %s", r.status, r.body)
	}
	if r := stepUp(); r.err.Error != challenge.ErrInvalidRequest {
		t.Fatalf("re-entry without code_challenge: %s", r.body)
	}
	v2, c2 := pkce()
	if r := stepUp("code_challenge", c2, "code_challenge_method", "S256"); !r.err.OTPRequired {
		t.Fatalf("step-up: %s", r.body)
	}
	// Swapping in the spent challenge at the OTP step is refused too.
	if r := e.post("/challenge", follow(sess, "code_challenge", c1, "code_challenge_method", "S256")); r.err.Error != challenge.ErrInvalidRequest {
		t.Fatalf("spent challenge at the OTP step: %s", r.body)
	}
	code, err := LatestOutboxCode(e.outbox, m.Phone)
	if err != nil {
		t.Fatal(err)
	}
	r = e.post("/challenge", follow(sess, "otp", code))
	ok = challenge.ChallengeSuccess{}
	if r.status != 200 || r.json(&ok) != nil {
		t.Fatalf("otp: %d %s", r.status, r.body)
	}
	// Bound to c2: the first code's verifier does not redeem it.
	if r := e.redeem(ok.AuthorizationCode, v1); r.err.Error != challenge.ErrInvalidGrant {
		t.Fatalf("redeemed with the first code's verifier: %d %s", r.status, r.body)
	}
	var tok challenge.TokenResponse
	if r := e.redeem(ok.AuthorizationCode, v2); r.status != 200 || r.json(&tok) != nil {
		// The wrong-verifier attempt above did not consume the code.
		t.Fatalf("redeem with v2: %d %s", r.status, r.body)
	}
	if cl := e.claims(tok.AccessToken); cl.ACR != challenge.ACRKBAOTP {
		t.Fatalf("stepped-up acr %q", cl.ACR)
	}
}

// TestReverificationNeedsChallenge: the auth_session a late refresh opens
// has no code_challenge; answering it without one is refused before any
// answer is checked (a code bound to nothing would be issued otherwise).
func TestReverificationNeedsChallenge(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0001")
	code, v := e.codeFor("")
	var tok challenge.TokenResponse
	e.redeem(code, v).json(&tok)
	e.clk.Add(61 * time.Minute)
	r := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if r.err.Error != challenge.ErrInsufficientAuthorization || r.err.AuthSession == "" {
		t.Fatalf("late refresh: %s", r.body)
	}
	sess := r.err.AuthSession
	all := []string{"kba_name", m.Name, "kba_birthdate", m.Birthdate, "kba_ssn_last4", m.SSNLast4,
		"caller_phone", m.Phone, "stir_verstat", stirA}
	if r := e.post("/challenge", follow(sess, all...)); r.err.Error != challenge.ErrInvalidRequest {
		t.Fatalf("re-verification without code_challenge: %s", r.body)
	}
	// With one, the same answers get a code.
	v2, c2 := pkce()
	r = e.post("/challenge", follow(sess, append(all, "code_challenge", c2, "code_challenge_method", "S256")...))
	var ok challenge.ChallengeSuccess
	if r.status != 200 || r.json(&ok) != nil {
		t.Fatalf("re-verification with code_challenge: %d %s", r.status, r.body)
	}
	if r := e.redeem(ok.AuthorizationCode, v2); r.status != 200 {
		t.Fatalf("redeem: %d %s", r.status, r.body)
	}
}

// TestCallRefRequired: the first challenge request must name the call.
func TestCallRefRequired(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0001")
	_, c := pkce()
	f := kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "")
	f.Del("call_ref")
	r := e.post("/challenge", f)
	if r.status != 400 || r.err.Error != challenge.ErrInvalidRequest || !strings.Contains(r.err.ErrorDescription, "call_ref") {
		t.Fatalf("no call_ref: %d %s", r.status, r.body)
	}
	f.Set("call_ref", "")
	if r := e.post("/challenge", f); r.err.Error != challenge.ErrInvalidRequest {
		t.Fatalf("empty call_ref: %s", r.body)
	}
}

// TestACRValuesInKBAStage: acr_values on the first request is honoured: a
// request for kba-otp gets the OTP even at a KBA-tier scope, and its token
// says kba-otp.
func TestACRValuesInKBAStage(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0001")
	v, c := pkce()
	f := kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "")
	f.Set("acr_values", challenge.ACRKBAOTP)
	r := e.post("/challenge", f)
	if r.status != 400 || !r.err.OTPRequired {
		t.Fatalf("acr_values=kba-otp: %d %s", r.status, r.body)
	}
	code, err := LatestOutboxCode(e.outbox, m.Phone)
	if err != nil {
		t.Fatal(err)
	}
	r = e.post("/challenge", follow(r.err.AuthSession, "otp", code))
	var ok challenge.ChallengeSuccess
	r.json(&ok)
	var tok challenge.TokenResponse
	e.redeem(ok.AuthorizationCode, v).json(&tok)
	if cl := e.claims(tok.AccessToken); cl.ACR != challenge.ACRKBAOTP || !slices.Equal(cl.AMR, []string{"kba", "otp", "sms"}) {
		t.Fatalf("claims %+v", cl)
	}
	// acr_values may also arrive on a follow-up in the KBA stage.
	_, c2 := pkce()
	r = e.post("/challenge", kba(c2, m.Name, "", "", m.Phone, stirA, ""))
	r = e.post("/challenge", follow(r.err.AuthSession, "acr_values", challenge.ACRKBAOTP,
		"kba_birthdate", m.Birthdate, "kba_ssn_last4", m.SSNLast4))
	if !r.err.OTPRequired {
		t.Fatalf("acr_values on a follow-up: %s", r.body)
	}
}

// TestPrivateKeyJWTAudienceExact: RFC 7523bis — the assertion's aud is this
// AS's issuer identifier as a JSON string and nothing else.
func TestPrivateKeyJWTAudienceExact(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0001")
	sign := func(aud any) string {
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: e.pkKey}, nil)
		now := e.clk.Now()
		s, err := jwt.Signed(sig).Claims(map[string]any{"iss": "pkjwt-client", "sub": "pkjwt-client", "aud": aud,
			"jti": randomToken(8), "exp": now.Add(time.Minute).Unix()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	attempt := func(assertion string) reply {
		_, c := pkce()
		f := kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "")
		f.Set("client_id", "pkjwt-client")
		f.Set("client_assertion_type", assertionTypeJWTBearer)
		f.Set("client_assertion", assertion)
		return e.post("/challenge", f, noAuth)
	}
	iss := e.ts.URL
	for _, tt := range []struct {
		name string
		aud  any
		ok   bool
	}{
		{"issuer string", iss, true},
		{"issuer with trailing slash", iss + "/", false},
		{"challenge endpoint", iss + "/challenge", false},
		{"token endpoint", iss + "/token", false},
		{"one-element array", []string{iss}, false},
		{"issuer among others", []string{iss, "https://elsewhere.example"}, false},
		{"case variant", strings.ToUpper(iss), false},
		{"missing", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := attempt(sign(tt.aud))
			if (r.status == 200) != tt.ok {
				t.Fatalf("aud %v: %d %s", tt.aud, r.status, r.body)
			}
			if !tt.ok && r.err.Error != challenge.ErrInvalidClient {
				t.Fatalf("aud %v: %s", tt.aud, r.body)
			}
		})
	}
}

// TestAssertionAlgsMatchMetadata: the metadata lists exactly the
// private_key_jwt algorithms the AS accepts — each listed one works, and a
// key of an unlisted algorithm does not.
func TestAssertionAlgsMatchMetadata(t *testing.T) {
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[jose.SignatureAlgorithm]any{
		jose.ES256: ec256, jose.ES384: ec384, jose.ES512: ec521, jose.RS256: rsaKey, jose.PS256: rsaKey,
		jose.RS512: rsaKey, jose.EdDSA: edKey,
	}
	var set jose.JSONWebKeySet
	for alg, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: publicOf(k), KeyID: string(alg), Algorithm: string(alg)})
	}
	e := newEnv(t, func(c *Config) {
		c.Clients = append(c.Clients, Client{ID: "multi", JWKS: &set, FirstParty: true})
	})
	resp, err := e.ts.Client().Get(e.ts.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var md challenge.ASMetadata
	err = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	listed := md.TokenEndpointAuthSigningAlgs
	if len(listed) == 0 {
		t.Fatal("no token_endpoint_auth_signing_alg_values_supported")
	}
	m := demo("pt-0001")
	for alg, k := range keys {
		t.Run(string(alg), func(t *testing.T) {
			sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: k, KeyID: string(alg)}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			now := e.clk.Now()
			a, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "multi", Subject: "multi", Audience: jwt.Audience{e.ts.URL},
				ID: randomToken(8), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
			_, c := pkce()
			f := kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "")
			f.Set("client_id", "multi")
			f.Set("client_assertion_type", assertionTypeJWTBearer)
			f.Set("client_assertion", a)
			r := e.post("/challenge", f, noAuth)
			accepted := r.err.Error != challenge.ErrInvalidClient
			if accepted != slices.Contains(listed, string(alg)) {
				t.Fatalf("%s: accepted=%v but metadata lists %v (%s)", alg, accepted, listed, r.body)
			}
		})
	}
}

func publicOf(k any) any {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return &k.PublicKey
	case *rsa.PrivateKey:
		return &k.PublicKey
	case ed25519.PrivateKey:
		return k.Public()
	}
	panic("key type")
}

// TestDummyHashHoldsNoPepper: the stand-in hash compared for unknown names
// has a real hash's length (equal comparison work) and no pepper bytes.
func TestDummyHashHoldsNoPepper(t *testing.T) {
	e := newEnv(t, nil)
	d := e.srv.dummyKey
	realHash := fieldHash(e.srv.pepper, "pt-0001", fieldDOB, "1980-03-03")
	if len(d) != len(realHash) || len(d) != sha256.Size {
		t.Fatalf("dummy hash is %d bytes, a real one %d", len(d), len(realHash))
	}
	for n := 4; n <= len(testPepper); n++ {
		for i := 0; i+n <= len(testPepper); i++ {
			if bytes.Contains(d, testPepper[i:i+n]) {
				t.Fatalf("dummy hash holds %d pepper bytes", n)
			}
		}
	}
	// And it is not any patient's real hash form for some value.
	if bytes.Equal(d, realHash) {
		t.Fatal("dummy equals a real hash")
	}
}

// TestOTPTTLApplied: Policy.OTPTTL limits a code's life even when the
// channel would accept it for longer (the outbox keeps codes 10 min).
func TestOTPTTLApplied(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.OTPTTL = 2 * time.Minute })
	m := demo("pt-0001")
	start := func() (string, string) {
		_, c := pkce()
		r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "medications:read"))
		if !r.err.OTPRequired {
			t.Fatalf("kba: %s", r.body)
		}
		code, err := LatestOutboxCode(e.outbox, m.Phone)
		if err != nil {
			t.Fatal(err)
		}
		return r.err.AuthSession, code
	}
	sess, code := start()
	e.clk.Add(2*time.Minute + time.Second)
	if r := e.post("/challenge", follow(sess, "otp", code)); !r.err.OTPRetry {
		t.Fatalf("a code older than OTPTTL was accepted: %d %s", r.status, r.body)
	}
	// Within the TTL the right code works (control).
	sess, code = start()
	e.clk.Add(time.Minute)
	if r := e.post("/challenge", follow(sess, "otp", code)); r.status != 200 {
		t.Fatalf("a live code was refused: %d %s", r.status, r.body)
	}
}

// TestFailureChargesOnlyResolvedIdentity: a failed KBA is charged to the
// patients whose name and DOB, or name and SSN-4, matched (and to the
// number) — never to every sound-alike the name alone finds. Knowing a name
// must not let anyone lock a family out.
func TestFailureChargesOnlyResolvedIdentity(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.NumberFailures = 1 << 20 })
	ctx := context.Background()
	// A sound-alike of Maria with another DOB and SSN-4.
	if err := Seed(ctx, e.st, testPepper, []DemoPatient{{"pt-x3", "Marya Garsia", "1985-06-06", "6060", "+15555550193", "mobile"}}); err != nil {
		t.Fatal(err)
	}
	js1, js2, maria := demo("pt-0004"), demo("pt-0005"), demo("pt-0001")
	fail := func(name, dob, ssn string) {
		t.Helper()
		_, c := pkce()
		if r := e.post("/challenge", kba(c, name, dob, ssn, "+15555550177", stirA, "")); r.status != 400 {
			t.Fatalf("failure expected: %s", r.body)
		}
	}
	canLogIn := func(p DemoPatient) bool {
		t.Helper()
		_, c := pkce()
		r := e.post("/challenge", kba(c, p.Name, p.Birthdate, p.SSNLast4, p.Phone, stirA, ""))
		return r.status == 200
	}
	// The name alone, many times: nobody is charged.
	for range 5 {
		fail("John Smith", "1999-09-09", "9999")
		fail("Maria Garcia", "1999-09-09", "9999")
	}
	if !canLogIn(js1) || !canLogIn(js2) || !canLogIn(maria) {
		t.Fatal("failures with a name alone locked a patient")
	}
	// Name + Maria's SSN-4 (wrong DOB): Maria is charged, her sound-alike is not.
	for range 3 {
		fail("Maria Garcia", "1999-09-09", maria.SSNLast4)
	}
	if canLogIn(maria) {
		t.Fatal("name + SSN-4 failures did not count against Maria")
	}
	if !canLogIn(DemoPatient{"pt-x3", "Marya Garsia", "1985-06-06", "6060", "+15555550193", "mobile"}) {
		t.Fatal("Maria's failures locked her sound-alike")
	}
	// Name + the DOB both John Smiths share (wrong SSN-4): both resolved by
	// name + DOB, so both are charged (what the caller proved knowing is
	// true of both).
	for range 3 {
		fail("John Smith", js1.Birthdate, "9999")
	}
	if canLogIn(js1) || canLogIn(js2) {
		t.Fatal("name + shared DOB failures did not count against the John Smiths")
	}
	// Name + one John Smith's SSN-4 (wrong DOB): only that one.
	e.srv.ClearLock(ctx, js1.ID)
	e.srv.ClearLock(ctx, js2.ID)
	for range 3 {
		fail("John Smith", "1999-09-09", js2.SSNLast4)
	}
	if !canLogIn(js1) || canLogIn(js2) {
		t.Fatal("name + SSN-4 must charge only the patient it resolved to")
	}
}

// TestDirectoryKeysKeyed: the directory holds no plaintext normalized name
// and no plaintext number; Seed migrates rows an older AS wrote in
// plaintext, after which the patient still verifies by voice.
func TestDirectoryKeysKeyed(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	// Every stored key of a seeded patient is keyed.
	m := demo("pt-0001")
	p, err := e.st.GetPatient(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range p.NameKeys {
		if !strings.HasPrefix(k, dirKeyPrefix) || strings.Contains(k, "garcia") {
			t.Fatalf("plaintext directory key %q", k)
		}
	}
	if got, _ := e.st.FindPatients(ctx, NameKeys(m.Name)); len(got) != 0 {
		t.Fatalf("plaintext name keys find %v", got)
	}
	// A row as the pre-migration AS wrote it.
	legacy := session.Patient{ID: "pt-legacy", Name: "Lena Legacy", NameKeys: NameKeys("Lena Legacy"),
		DOBHash:  fieldHash(session.NewMAC(testPepper), "pt-legacy", fieldDOB, "1960-02-02"),
		SSN4Hash: fieldHash(session.NewMAC(testPepper), "pt-legacy", fieldSSN4, "4242"),
		Phone:    "+15555550188", LineType: "mobile"}
	if err := e.st.UpsertPatients(ctx, []session.Patient{legacy}); err != nil {
		t.Fatal(err)
	}
	if err := Seed(ctx, e.st, testPepper, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.st.FindPatients(ctx, NameKeys("Lena Legacy")); len(got) != 0 {
		t.Fatal("the migration left plaintext name keys")
	}
	lp, err := e.st.GetPatient(ctx, "pt-legacy")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range lp.NameKeys {
		if !strings.HasPrefix(k, dirKeyPrefix) {
			t.Fatalf("migrated key %q", k)
		}
	}
	// Matching still works through the keyed form, ASR spelling included.
	_, c := pkce()
	if r := e.post("/challenge", kba(c, "LENA  legasy", "1960-02-02", "4242", "+15555550188", stirA, "")); r.status != 200 {
		t.Fatalf("migrated patient does not verify: %d %s", r.status, r.body)
	}
}

// TestExchangeHardening is the RFC 8693 part of issue 14.
func TestExchangeHardening(t *testing.T) {
	idp := newExternalIssuer(t)
	strict := newExternalIssuer(t)
	e := newEnv(t, func(c *Config) {
		c.TrustedIssuers = []TrustedIssuer{
			{Issuer: idp.ts.URL, JWKSURL: idp.ts.URL, SubjectClaim: "patient_id", MaxACR: challenge.ACRKBAOTP},
			{Issuer: strict.ts.URL, JWKSURL: strict.ts.URL, SubjectClaim: "patient_id", MaxACR: challenge.ACRKBAOTP,
				Types: []string{"secevent+jwt"}},
		}
	})
	idp.aud, strict.aud = e.ts.URL, e.ts.URL
	host := basic("host-app", "host-secret")
	exchange := func(tok string) reply {
		return e.post("/token", url.Values{"grant_type": {challenge.GrantTypeTokenExchange}, "subject_token": {tok},
			"subject_token_type": {challenge.TokenTypeJWT}, "resource": {testResource},
			"scope": {"appointments:read medications:read"}}, host)
	}
	now := e.clk.Now()
	tokenOf := func(x *externalIssuer, claims map[string]any) string {
		c := map[string]any{"patient_id": "pt-0003"}
		for k, v := range claims {
			c[k] = v
		}
		return x.token(t, now, c)
	}
	t.Run("acr", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			acr     any
			wantACR string
		}{
			{"none", nil, challenge.ACRKBA},
			{"unknown", "urn:example:gold", challenge.ACRKBA},
			{"not a string", 3, challenge.ACRKBA},
			{"kba", challenge.ACRKBA, challenge.ACRKBA},
			{"kba-otp within the cap", challenge.ACRKBAOTP, challenge.ACRKBAOTP},
		} {
			r := exchange(tokenOf(idp, map[string]any{"acr": tt.acr}))
			var tok challenge.TokenResponse
			if r.status != 200 || r.json(&tok) != nil {
				t.Fatalf("%s: %d %s", tt.name, r.status, r.body)
			}
			cl := e.claims(tok.AccessToken)
			wantScope := "appointments:read"
			if tt.wantACR == challenge.ACRKBAOTP {
				wantScope = "appointments:read medications:read"
			}
			if cl.ACR != tt.wantACR || cl.Scope != wantScope {
				t.Fatalf("%s: acr %q scope %q, want %q %q", tt.name, cl.ACR, cl.Scope, tt.wantACR, wantScope)
			}
		}
	})
	refused := func(t *testing.T, name, tok string) {
		t.Helper()
		if r := exchange(tok); r.status != 400 || r.err.Error != challenge.ErrInvalidRequest {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	t.Run("aud", func(t *testing.T) {
		refused(t, "no aud", tokenOf(idp, map[string]any{"aud": nil}))
		refused(t, "another audience", tokenOf(idp, map[string]any{"aud": "https://billing.example"}))
		refused(t, "the resource, not this AS", tokenOf(idp, map[string]any{"aud": testResource}))
		refused(t, "issuer with trailing slash", tokenOf(idp, map[string]any{"aud": e.ts.URL + "/"}))
		if r := exchange(tokenOf(idp, map[string]any{"aud": []string{"https://billing.example", e.ts.URL}})); r.status != 200 {
			t.Fatalf("aud list naming this AS: %d %s", r.status, r.body)
		}
	})
	t.Run("jti", func(t *testing.T) {
		tok := tokenOf(idp, nil)
		if r := exchange(tok); r.status != 200 {
			t.Fatalf("first use: %d %s", r.status, r.body)
		}
		refused(t, "replayed jti", tok)
		// The same jti in a new token from the same issuer is a replay too.
		refused(t, "same jti, new token", tokenOf(idp, map[string]any{"jti": mustClaim(t, tok, "jti"), "iat": now.Unix() + 1}))
		refused(t, "no jti", tokenOf(idp, map[string]any{"jti": nil}))
		refused(t, "exp years ahead (its jti would be kept for years)", tokenOf(idp, map[string]any{"exp": now.Add(48 * time.Hour).Unix()}))
		if r := exchange(tokenOf(idp, map[string]any{"exp": now.Add(23 * time.Hour).Unix()})); r.status != 200 {
			t.Fatalf("exp within a day: %d %s", r.status, r.body)
		}
		// Another issuer's identical jti is not a replay.
		if r := exchange(strictToken(t, strict, now, mustClaim(t, tok, "jti"))); r.status != 200 {
			t.Fatalf("other issuer's same jti: %d %s", r.status, r.body)
		}
	})
	t.Run("typ", func(t *testing.T) {
		for _, typ := range []string{"JWT", "at+jwt", "application/at+jwt", "jwt"} {
			idp.typ = typ
			if r := exchange(tokenOf(idp, nil)); r.status != 200 {
				t.Fatalf("typ %q: %d %s", typ, r.status, r.body)
			}
		}
		for _, typ := range []string{"-", "dpop+jwt", "secevent+jwt", "JOSE"} {
			idp.typ = typ
			refused(t, "typ "+typ, tokenOf(idp, nil))
		}
		idp.typ = ""
		// An issuer configured for another typ accepts that one only.
		strict.typ = "JWT"
		refused(t, "strict issuer, typ JWT", tokenOf(strict, nil))
	})
}

func strictToken(t *testing.T, x *externalIssuer, now time.Time, jti string) string {
	x.typ = "secevent+jwt"
	defer func() { x.typ = "" }()
	return x.token(t, now, map[string]any{"patient_id": "pt-0003", "jti": jti})
}

func mustClaim(t *testing.T, raw, name string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := tok.UnsafeClaimsWithoutVerification(&m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[name].(string)
	return s
}

// TestNumberIdentitiesAlert: the accepted residual of "no oracle through
// risk" is watched — one number resolving three distinct identities
// (right or partly right answers) within 24 h raises an audit alert; two do
// not, nor do any number of unresolved names.
func TestNumberIdentitiesAlert(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.NumberFailures = 1 << 20 })
	ctx := context.Background()
	from := "+15555550166"
	try := func(p DemoPatient, dob, ssn string) {
		t.Helper()
		_, c := pkce()
		e.post("/challenge", kba(c, p.Name, dob, ssn, from, stirA, ""))
	}
	alerts := func() int {
		t.Helper()
		evs, err := e.st.ListAudit(ctx, session.AuditFilter{Type: "kba.number_identities"})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if strings.Contains(ev.Number, from) || !strings.HasPrefix(ev.Number, "number:") {
				t.Fatalf("alert names the number in the clear: %q", ev.Number)
			}
		}
		return len(evs)
	}
	for range 5 {
		try(DemoPatient{Name: "Nobody Known"}, "1970-01-01", "0000")
	}
	maria, james, an := demo("pt-0001"), demo("pt-0002"), demo("pt-0003")
	try(maria, maria.Birthdate, "0000")      // name + DOB
	try(maria, maria.Birthdate, "0000")      // the same identity again
	try(james, "1900-01-01", james.SSNLast4) // name + SSN-4
	if n := alerts(); n != 0 {
		t.Fatalf("%d alerts after two identities", n)
	}
	try(an, an.Birthdate, an.SSNLast4) // right answers from another's number
	if n := alerts(); n != 1 {
		t.Fatalf("%d alerts after three identities, want 1", n)
	}
	// Outside the window the count starts again.
	e.clk.Add(25 * time.Hour)
	try(maria, maria.Birthdate, "0000")
	if n := alerts(); n != 1 {
		t.Fatalf("%d alerts after the window, want still 1", n)
	}
}
