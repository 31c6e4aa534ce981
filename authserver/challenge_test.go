package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/challenge"
	"github.com/voiceauth/voiceauth/internal/canary"
	"github.com/voiceauth/voiceauth/session"
)

func TestMetadata(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.ts.Client().Get(e.ts.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md challenge.ASMetadata
	json.NewDecoder(resp.Body).Decode(&md)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	if md.Issuer != e.ts.URL {
		t.Errorf("issuer %q, want %q byte-equal", md.Issuer, e.ts.URL)
	}
	checks := map[string]bool{
		"challenge endpoint": md.AuthorizationChallengeEndpoint == e.ts.URL+"/challenge",
		"token endpoint":     md.TokenEndpoint == e.ts.URL+"/token",
		"S256":               len(md.CodeChallengeMethodsSupported) == 1 && md.CodeChallengeMethodsSupported[0] == "S256",
		"response code":      strings.Join(md.ResponseTypesSupported, " ") == "code",
		"grants":             strings.Join(md.GrantTypesSupported, " ") == "authorization_code refresh_token "+challenge.GrantTypeTokenExchange,
		"auth methods":       strings.Join(md.TokenEndpointAuthMethodsSupported, " ") == "client_secret_basic private_key_jwt",
		"kba fields":         strings.Join(md.KBAFieldsSupported, " ") == "kba_name kba_birthdate kba_ssn_last4",
		"introspection":      md.IntrospectionEndpoint != "" && md.RevocationEndpoint != "" && md.JWKSURI != "",
	}
	for k, ok := range checks {
		if !ok {
			t.Errorf("metadata: %s wrong: %+v", k, md)
		}
	}
}

// TestChallengeRequestErrors covers the "standard problems" row and
// checklist items 6–15.
func TestChallengeRequestErrors(t *testing.T) {
	e := newEnv(t, nil)
	_, c := pkce()
	m := demo("pt-0001")
	good := func() url.Values { return kba(c, m.Name, "", "", "", "", "") }
	with := func(k, v string) url.Values { f := good(); f.Set(k, v); return f }
	without := func(k string) url.Values { f := good(); f.Del(k); return f }
	tests := []struct {
		name       string
		form       url.Values
		auth       func(*http.Request)
		status     int
		code       string
		wwwAuth    bool
		rawBody    string
		rawCT      string
		wantHeader bool
	}{
		{name: "no client auth", form: good(), auth: noAuth, status: 401, code: "invalid_client"},
		{name: "unknown client (basic)", form: without("client_id"), auth: basic("nobody", "x"), status: 401, code: "invalid_client", wwwAuth: true},
		{name: "wrong secret", form: good(), auth: basic(ivrID, "wrong"), status: 401, code: "invalid_client", wwwAuth: true},
		{name: "basic A body client_id B", form: with("client_id", "third-party"), status: 401, code: "invalid_client", wwwAuth: true},
		{name: "not first party", form: with("client_id", "third-party"), auth: basic("third-party", "third-party-secret"), status: 400, code: "unauthorized_client"},
		{name: "missing response_type", form: without("response_type"), status: 400, code: "invalid_request"},
		{name: "response_type token", form: with("response_type", "token"), status: 400, code: "unsupported_response_type"},
		{name: "unknown scope", form: with("scope", "admin:all"), status: 400, code: "invalid_scope"},
		{name: "relative resource", form: with("resource", "/mcp"), status: 400, code: "invalid_target"},
		{name: "resource with fragment", form: with("resource", testResource+"#x"), status: 400, code: "invalid_target"},
		{name: "resource not allowed", form: with("resource", "http://127.0.0.1:9999/mcp"), status: 400, code: "invalid_target"},
		{name: "trailing slash is another resource", form: with("resource", testResource+"/"), status: 400, code: "invalid_target"},
		{name: "missing resource", form: without("resource"), status: 400, code: "invalid_target"},
		{name: "missing code_challenge", form: without("code_challenge"), status: 400, code: "invalid_request"},
		{name: "plain PKCE", form: with("code_challenge_method", "plain"), status: 400, code: "invalid_request"},
		{name: "bad birthdate", form: with("kba_birthdate", "1980-02-30"), status: 400, code: "invalid_request"},
		{name: "bad ssn4", form: with("kba_ssn_last4", "45a7"), status: 400, code: "invalid_request"},
		{name: "name too long", form: with("kba_name", strings.Repeat("a", 201)), status: 400, code: "invalid_request"},
		{name: "bad phone", form: with("caller_phone", "5555550101"), status: 400, code: "invalid_request"},
		{name: "json body", rawBody: `{"response_type":"code"}`, rawCT: "application/json", status: 400, code: "invalid_request"},
		{name: "repeated parameter", rawBody: good().Encode() + "&scope=appointments:read&scope=medications:read", rawCT: "application/x-www-form-urlencoded", status: 400, code: "invalid_request"},
		{name: "unknown auth_session", form: follow(randomToken(32)), status: 400, code: "invalid_session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r reply
			if tt.rawBody != "" {
				req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/challenge", strings.NewReader(tt.rawBody))
				req.Header.Set("Content-Type", tt.rawCT)
				req.SetBasicAuth(ivrID, ivrSecret)
				r = e.do(req)
			} else {
				r = e.post("/challenge", tt.form, tt.auth)
			}
			if r.status != tt.status || r.err.Error != tt.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
			if got := r.header.Get("WWW-Authenticate") != ""; got != tt.wwwAuth {
				t.Errorf("WWW-Authenticate present=%v, want %v", got, tt.wwwAuth)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Error("missing Cache-Control: no-store")
			}
			for _, ch := range r.err.Error {
				if ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' {
					t.Errorf("error code has illegal character %q", ch)
				}
			}
		})
	}
	t.Run("GET is 405", func(t *testing.T) {
		resp, err := e.ts.Client().Get(e.ts.URL + "/challenge")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET /challenge = %d", resp.StatusCode)
		}
	})
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/challenge", "/token", "/introspect", "/revoke"} {
		f := url.Values{"pad": {strings.Repeat("x", 65<<10)}}
		r := e.post(path, f)
		if r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d %s, want 413", path, r.status, r.body)
		}
	}
	// Just under the limit is parsed normally.
	f := url.Values{"grant_type": {"nope"}, "pad": {strings.Repeat("x", 60<<10)}}
	if r := e.post("/token", f); r.status != 400 || r.err.Error != "unsupported_grant_type" {
		t.Errorf("under limit: %d %s", r.status, r.body)
	}
}

// TestKBAResolvesExactlyOne: ASR-tolerant names, leap day, leading zero,
// two John Smiths told apart by SSN-4. Each gets a code and a token for the
// right sub.
func TestKBAResolvesExactlyOne(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct{ id, spoken string }{
		{"pt-0001", "maria garcia"},
		{"pt-0001", "GARCIA, Maria"},
		{"pt-0002", "james obrien"},
		{"pt-0002", "James O’Brien"},
		{"pt-0003", "win van an"},
		{"pt-0003", "van an nguyen"},
		{"pt-0004", "john smith"},
		{"pt-0005", "John  Smith."},
		{"pt-0006", "zoe muller ludenscheidt"},
		{"pt-0006", "Zoë Müller-Lüdenscheidt"},
		{"pt-0007", "robert brown"},
	}
	for _, tt := range tests {
		t.Run(tt.id+"/"+tt.spoken, func(t *testing.T) {
			p := demo(tt.id)
			v, c := pkce()
			r := e.post("/challenge", kba(c, tt.spoken, p.Birthdate, p.SSNLast4, p.Phone, stirA, ""))
			if r.status != 200 {
				t.Fatalf("challenge: %d %s", r.status, r.body)
			}
			var ok challenge.ChallengeSuccess
			r.json(&ok)
			tr := e.redeem(ok.AuthorizationCode, v)
			if tr.status != 200 {
				t.Fatalf("token: %d %s", tr.status, tr.body)
			}
			var tok challenge.TokenResponse
			tr.json(&tok)
			cl := e.claims(tok.AccessToken)
			if cl.Subject != tt.id || cl.ACR != challenge.ACRKBA || cl.Scope != "appointments:read" {
				t.Fatalf("claims %+v", cl)
			}
		})
	}
}

// claims verifies an access token against the JWKS endpoint and returns its claims.
func (e *env) claims(raw string) AccessClaims {
	e.t.Helper()
	resp, err := e.ts.Client().Get(e.ts.URL + "/jwks")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	json.NewDecoder(resp.Body).Decode(&set)
	jwks := e.srv.keys.Load().jwks
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		e.t.Fatal(err)
	}
	if typ := tok.Headers[0].ExtraHeaders["typ"]; typ != "at+jwt" {
		e.t.Fatalf("typ %v", typ)
	}
	var c AccessClaims
	if err := tok.Claims(jwks.Key(tok.Headers[0].KeyID)[0].Key, &c); err != nil {
		e.t.Fatal(err)
	}
	if len(set.Keys) != len(jwks.Keys) || c.Issuer != e.ts.URL || len(c.Audience) != 1 || c.Audience[0] != testResource ||
		c.ClientID == "" || c.ID == "" || c.Expiry.Time().Sub(c.IssuedAt.Time()) > 15*time.Minute {
		e.t.Fatalf("bad claims %+v", c)
	}
	return c
}

func TestPartialAnswersOnePerRequest(t *testing.T) {
	e := newEnv(t, nil)
	p := demo("pt-0002")
	v, c := pkce()
	r := e.post("/challenge", kba(c, "", "", "", p.Phone, stirA, ""))
	if r.status != 400 || r.err.Error != "insufficient_authorization" || len(r.err.AuthSession) < 43 ||
		strings.Join(r.err.KBARequired, ",") != "kba_name,kba_birthdate,kba_ssn_last4" {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	sess := r.err.AuthSession
	r = e.post("/challenge", follow(sess, "kba_name", "James O'Brien"))
	if strings.Join(r.err.KBARequired, ",") != "kba_birthdate,kba_ssn_last4" || r.err.AuthSession != sess {
		t.Fatalf("second: %s", r.body)
	}
	r = e.post("/challenge", follow(sess, "kba_birthdate", p.Birthdate))
	if strings.Join(r.err.KBARequired, ",") != "kba_ssn_last4" {
		t.Fatalf("third: %s", r.body)
	}
	r = e.post("/challenge", follow(sess, "kba_ssn_last4", "0912"))
	if r.status != 200 {
		t.Fatalf("fourth: %d %s", r.status, r.body)
	}
	// Redeeming the code rotates the auth_session: the old value is dead (item 20).
	var ok challenge.ChallengeSuccess
	r.json(&ok)
	var tr struct {
		AuthSession string `json:"auth_session"`
	}
	e.redeem(ok.AuthorizationCode, v).json(&tr)
	if tr.AuthSession == "" || tr.AuthSession == sess {
		t.Fatalf("auth_session not rotated: %q", tr.AuthSession)
	}
	if r := e.post("/challenge", follow(sess)); r.err.Error != "invalid_session" {
		t.Fatalf("superseded auth_session: %s", r.body)
	}
	// auth_session values are unique and long.
	seen := map[string]bool{}
	for range 20 {
		r := e.post("/challenge", kba(c, "", "", "", "", "", ""))
		if seen[r.err.AuthSession] || len(r.err.AuthSession) < 43 {
			t.Fatalf("auth_session %q repeated or short", r.err.AuthSession)
		}
		seen[r.err.AuthSession] = true
	}
}

// TestFailureBodiesIdentical: where the kba_retry row applies (A-attested
// call from the number on file, KBA-tier scope), wrong DOB, wrong SSN-4,
// ambiguous and locked identities answer byte-identically.
func TestFailureBodiesIdentical(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.NumberFailures = 1000 })
	// Two registrations that cannot be told apart even with SSN-4.
	if err := Seed(context.Background(), e.st, testPepper, []DemoPatient{
		{"pt-x1", "Ana Twin", "1990-01-01", "7777", "+15555550190", "mobile"},
		{"pt-x2", "Ana Twin", "1990-01-01", "7777", "+15555550190", "mobile"},
	}); err != nil {
		t.Fatal(err)
	}
	m := demo("pt-0001")
	// Lock Maria: three failures in three sessions.
	for range 3 {
		_, c := pkce()
		e.post("/challenge", kba(c, m.Name, "1999-01-01", m.SSNLast4, m.Phone, stirA, ""))
	}
	var bodies []string
	cases := []struct{ name, dob, ssn, phone string }{
		{"James O'Brien", "1955-11-29", "0912", "+15555550102"}, // wrong DOB
		{"James O'Brien", "1955-11-30", "0913", "+15555550102"}, // wrong SSN-4
		{"Ana Twin", "1990-01-01", "7777", "+15555550190"},      // ambiguous
		{m.Name, m.Birthdate, m.SSNLast4, m.Phone},              // locked (right answers)
	}
	for _, cs := range cases {
		_, c := pkce()
		r := e.post("/challenge", kba(c, cs.name, cs.dob, cs.ssn, cs.phone, stirA, ""))
		if r.status != 400 || !r.err.KBARetry {
			t.Fatalf("%s: %d %s", cs.name, r.status, r.body)
		}
		bodies = append(bodies, maskSession(r.body, r.err.AuthSession))
	}
	for i := range bodies {
		if bodies[i] != bodies[0] {
			t.Errorf("body %d differs:\n%s\n%s", i, bodies[i], bodies[0])
		}
	}
	// Second failure in one session ends it; the session is then dead.
	_, c := pkce()
	p := demo("pt-0002")
	r := e.post("/challenge", kba(c, p.Name, "1955-11-29", p.SSNLast4, p.Phone, stirA, ""))
	sess := r.err.AuthSession
	r = e.post("/challenge", follow(sess, "kba_name", p.Name, "kba_birthdate", "1955-11-28", "kba_ssn_last4", p.SSNLast4))
	if r.status != 400 || string(r.body) != `{"error":"access_denied"}` {
		t.Fatalf("second failure: %d %s", r.status, r.body)
	}
	if r = e.post("/challenge", follow(sess, "kba_name", p.Name)); r.err.Error != "invalid_session" {
		t.Fatalf("dead session: %s", r.body)
	}
}

// TestOTPRequiredNoOracle: when a code is needed (no A attestation, or a
// scope needing kba-otp, or a number not on file), right, wrong, unknown and
// locked answers all get the same otp_required body; a code is texted only
// for right answers, and only to the number on file.
func TestOTPRequiredNoOracle(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0001")
	type call struct {
		label, name, dob, ssn, phone, stir, scope string
		texted                                    bool
	}
	calls := []call{
		{"right, no attestation", m.Name, m.Birthdate, m.SSNLast4, m.Phone, "", "", true},
		{"wrong, no attestation", m.Name, "1980-03-04", m.SSNLast4, m.Phone, "", "", false},
		{"unknown, no attestation", "Nobody Known", m.Birthdate, m.SSNLast4, m.Phone, "", "", false},
		{"right, other number", m.Name, m.Birthdate, m.SSNLast4, "+15555550999", stirA, "", true},
		{"unknown, other number", "Nobody Known", m.Birthdate, m.SSNLast4, "+15555550998", stirA, "", false},
		{"right, otp scope", m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "medications:read", true},
		{"wrong, otp scope", m.Name, m.Birthdate, "0000", m.Phone, stirA, "medications:read", false},
		{"right, B attestation", m.Name, m.Birthdate, m.SSNLast4, m.Phone, "TN-Validation-Passed-B", "", true},
	}
	var first string
	for _, cl := range calls {
		e.clk.Add(4 * time.Minute) // stay under 3 sends / 10 min
		before := outboxLines(e.outbox)
		_, c := pkce()
		r := e.post("/challenge", kba(c, cl.name, cl.dob, cl.ssn, cl.phone, cl.stir, cl.scope))
		body := maskSession(r.body, r.err.AuthSession)
		if first == "" {
			first = body
		}
		if r.status != 400 || body != first {
			t.Errorf("%s: %d %s, want %s", cl.label, r.status, body, first)
		}
		after := outboxLines(e.outbox)
		if texted := len(after) > len(before); texted != cl.texted {
			t.Errorf("%s: texted=%v, want %v", cl.label, texted, cl.texted)
		}
		if cl.texted && !strings.Contains(after[len(after)-1], `"to":"`+m.Phone+`"`) {
			t.Errorf("%s: code sent elsewhere: %s", cl.label, after[len(after)-1])
		}
		// Every code fails identically for the phantom step.
		if !cl.texted {
			for i := range 4 {
				r := e.post("/challenge", follow(r.err.AuthSession, "otp", "123456"))
				if !r.err.OTPRetry || !r.err.OTPRequired {
					t.Fatalf("%s: check %d: %s", cl.label, i, r.body)
				}
			}
			if r := e.post("/challenge", follow(r.err.AuthSession, "otp", "123456")); string(r.body) != `{"error":"access_denied"}` {
				t.Fatalf("%s: fifth check: %s", cl.label, r.body)
			}
		}
	}
	if first != `{"error":"insufficient_authorization","auth_session":"SESSION","otp_required":true}` {
		t.Errorf("otp_required body = %s", first)
	}
}

func outboxLines(path string) []string {
	b, _ := os.ReadFile(path)
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestOTPFlowAndLimits(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0001")
	v, c := pkce()
	r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "appointments:read medications:read prescriptions:refill"))
	sess := r.err.AuthSession
	if !r.err.OTPRequired {
		t.Fatalf("want otp_required: %s", r.body)
	}
	code1, err := LatestOutboxCode(e.outbox, m.Phone)
	if err != nil || len(code1) != 6 {
		t.Fatalf("outbox: %q %v", code1, err)
	}
	// Resend: a new code; the old one no longer works.
	r = e.post("/challenge", follow(sess, "otp_resend", "true"))
	if !r.err.OTPRequired || r.err.OTPRetry {
		t.Fatalf("resend: %s", r.body)
	}
	code2, _ := LatestOutboxCode(e.outbox, m.Phone)
	wrong := "000000"
	if wrong == code2 {
		wrong = "000001"
	}
	if code1 != code2 {
		r = e.post("/challenge", follow(sess, "otp", code1))
		if !r.err.OTPRetry {
			t.Fatalf("old code accepted: %s", r.body)
		}
	}
	r = e.post("/challenge", follow(sess, "otp", wrong))
	if !r.err.OTPRetry {
		t.Fatalf("wrong code: %s", r.body)
	}
	r = e.post("/challenge", follow(sess, "otp", code2))
	if r.status != 200 {
		t.Fatalf("right code: %d %s", r.status, r.body)
	}
	var ok challenge.ChallengeSuccess
	r.json(&ok)
	tr := e.redeem(ok.AuthorizationCode, v)
	var tok challenge.TokenResponse
	tr.json(&tok)
	cl := e.claims(tok.AccessToken)
	if cl.ACR != challenge.ACRKBAOTP || cl.Scope != "appointments:read medications:read prescriptions:refill" ||
		strings.Join(cl.AMR, ",") != "kba,otp,sms" {
		t.Fatalf("claims %+v", cl)
	}
	// The code is single use: the session is done, a replay of the code is not a valid OTP any more.
	if ok, _ := e.srv.cfg.OTP.Check(context.Background(), "nope", code2); ok {
		t.Fatal("unknown ref accepted")
	}
	// Send limit: 3 sends per identity per 10 min (two used above).
	for i := range 3 {
		_, c := pkce()
		before := len(outboxLines(e.outbox))
		e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, "", ""))
		sent := len(outboxLines(e.outbox)) > before
		if sent != (i == 0) {
			t.Fatalf("send %d: sent=%v", i+3, sent)
		}
	}
	e.clk.Add(10*time.Minute + time.Second)
	before := len(outboxLines(e.outbox))
	e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, "", ""))
	if len(outboxLines(e.outbox)) == before {
		t.Fatal("send limit did not reset after 10 min")
	}
}

func TestOTPExpires(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0006")
	_, c := pkce()
	r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, "", ""))
	sess := r.err.AuthSession
	code, _ := LatestOutboxCode(e.outbox, m.Phone)
	e.clk.Add(9 * time.Minute)
	e.post("/challenge", follow(sess)) // keeps the session alive (idle 10 min)
	e.clk.Add(2 * time.Minute)
	if r := e.post("/challenge", follow(sess, "otp", code)); !r.err.OTPRetry {
		t.Fatalf("expired code: %s", r.body)
	}
}

// TestStepUp: a KBA-tier session re-enters with acr_values and a wider
// scope; the AS asks for the OTP (no KBA again). Robert Brown has a landline:
// no code can be sent, every code fails, the session ends in access_denied.
func TestStepUp(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		id       string
		canReach bool
	}{{"pt-0001", true}, {"pt-0007", false}} {
		t.Run(tt.id, func(t *testing.T) {
			p := demo(tt.id)
			v, c := pkce()
			r := e.post("/challenge", kba(c, p.Name, p.Birthdate, p.SSNLast4, p.Phone, stirA, ""))
			if r.status != 200 {
				t.Fatalf("kba: %d %s", r.status, r.body)
			}
			// The token response carries the (rotated) auth_session for step-up.
			var ok challenge.ChallengeSuccess
			r.json(&ok)
			var tr struct {
				AuthSession string `json:"auth_session"`
			}
			e.redeem(ok.AuthorizationCode, v).json(&tr)
			sess := tr.AuthSession
			if len(sess) < 43 {
				t.Fatalf("no auth_session in token response")
			}
			before := len(outboxLines(e.outbox))
			v2, c2 := pkce()
			r = e.post("/challenge", follow(sess, "acr_values", challenge.ACRKBAOTP, "scope", "appointments:read medications:read",
				"code_challenge", c2, "code_challenge_method", "S256"))
			if !r.err.OTPRequired || r.err.AuthSession != sess {
				t.Fatalf("step-up: %s", r.body)
			}
			sent := len(outboxLines(e.outbox)) > before
			if sent != tt.canReach {
				t.Fatalf("sent=%v", sent)
			}
			if !tt.canReach {
				for range 4 {
					if r := e.post("/challenge", follow(sess, "otp", "123456")); !r.err.OTPRetry {
						t.Fatalf("landline check: %s", r.body)
					}
				}
				if r := e.post("/challenge", follow(sess, "otp", "123456")); r.err.Error != "access_denied" {
					t.Fatalf("landline end: %s", r.body)
				}
				return
			}
			code, _ := LatestOutboxCode(e.outbox, p.Phone)
			r = e.post("/challenge", follow(sess, "otp", code))
			ok = challenge.ChallengeSuccess{}
			r.json(&ok)
			tr2 := e.redeem(ok.AuthorizationCode, v2)
			var tok challenge.TokenResponse
			tr2.json(&tok)
			if cl := e.claims(tok.AccessToken); cl.ACR != challenge.ACRKBAOTP || cl.Scope != "appointments:read medications:read" {
				t.Fatalf("claims %+v", cl)
			}
		})
	}
}

// TestLockoutEscalation: 3 failures / 15 min lock the identity for 15 min,
// then 1 h, then 24 h; while locked, right answers look like a mismatch.
func TestLockoutEscalation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.NumberFailures = 1000 })
	m := demo("pt-0001")
	attempt := func(dob string) reply {
		_, c := pkce()
		return e.post("/challenge", kba(c, m.Name, dob, m.SSNLast4, m.Phone, stirA, ""))
	}
	fail3 := func() {
		for range 3 {
			if r := attempt("1999-09-09"); !r.err.KBARetry {
				t.Fatalf("failure: %s", r.body)
			}
		}
	}
	locked := func() bool {
		r := attempt(m.Birthdate)
		if r.status == 200 {
			return false
		}
		if !r.err.KBARetry {
			t.Fatalf("locked body: %s", r.body)
		}
		return true
	}
	for _, lock := range []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour} {
		fail3()
		e.clk.Add(lock - time.Minute)
		if !locked() {
			t.Fatalf("not locked %v into a %v lock", lock-time.Minute, lock)
		}
		e.clk.Add(time.Minute + time.Second)
		if locked() {
			t.Fatalf("still locked after %v", lock)
		}
	}
	// The audit trail says it, without PHI.
	evs, err := e.st.ListAudit(context.Background(), session.AuditFilter{Type: "kba.locked"})
	if err != nil || len(evs) != 3 {
		t.Fatalf("audit kba.locked: %d %v", len(evs), err)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Subject, "pt-0001") || !strings.HasPrefix(ev.Subject, "patient:") {
			t.Errorf("subject not pseudonymous: %q", ev.Subject)
		}
	}
	// Operator clears a lock.
	fail3()
	if !locked() {
		t.Fatal("expected lock")
	}
	if err := e.srv.ClearLock(context.Background(), "pt-0001"); err != nil {
		t.Fatal(err)
	}
	if locked() {
		t.Fatal("lock not cleared")
	}
	// An operator's clear is itself on the record.
	if evs, err := e.st.ListAudit(context.Background(), session.AuditFilter{Type: "lock.cleared"}); err != nil || len(evs) != 1 || evs[0].Actor != "operator" {
		t.Fatalf("audit lock.cleared: %+v %v", evs, err)
	}
}

func TestIdentityCap24h(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.NumberFailures = 1000; c.Policy.IdentityFailures = 100 })
	m := demo("pt-0002")
	for range 10 {
		_, c := pkce()
		e.post("/challenge", kba(c, m.Name, "1999-09-09", m.SSNLast4, m.Phone, stirA, ""))
		e.clk.Add(time.Hour)
	}
	_, c := pkce()
	if r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "")); r.status == 200 {
		t.Fatal("10 failures in 24 h did not lock")
	}
}

// TestNumberSpray: 5 failures from one caller_phone in an hour block that
// number for an hour, whatever names it tries.
func TestNumberSpray(t *testing.T) {
	e := newEnv(t, nil)
	spray := "+15555550177"
	for i, p := range DemoPatients()[:5] {
		_, c := pkce()
		r := e.post("/challenge", kba(c, p.Name, "2000-01-01", "9999", spray, stirA, ""))
		if r.err.Error != "insufficient_authorization" {
			t.Fatalf("attempt %d: %s", i, r.body)
		}
	}
	m := demo("pt-0001")
	_, c := pkce()
	r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, spray, stirA, ""))
	if string(r.body) != `{"error":"access_denied"}` {
		t.Fatalf("blocked number: %s", r.body)
	}
	// Other numbers are unaffected.
	if r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, "")); r.status != 200 {
		t.Fatalf("other number: %s", r.body)
	}
	e.clk.Add(time.Hour + time.Second)
	if r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, spray, stirA, "")); r.err.Error == "access_denied" {
		t.Fatalf("block outlived 1 h: %s", r.body)
	}
}

func TestSessionBindingAndLifetime(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0001")
	start := func() string {
		_, c := pkce()
		return e.post("/challenge", kba(c, m.Name, "", "", m.Phone, stirA, "")).err.AuthSession
	}
	t.Run("other client", func(t *testing.T) {
		s := start()
		f := follow(s, "kba_birthdate", m.Birthdate)
		f.Del("client_id")
		c := e.pkAssertion(e.ts.URL, randomToken(8), time.Minute)
		f.Set("client_assertion_type", assertionTypeJWTBearer)
		f.Set("client_assertion", c)
		if r := e.post("/challenge", f, noAuth); r.err.Error != "invalid_session" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("other call", func(t *testing.T) {
		s := start()
		f := follow(s, "kba_birthdate", m.Birthdate)
		f.Set("call_ref", "another-call")
		if r := e.post("/challenge", f); r.err.Error != "invalid_session" {
			t.Fatalf("%s", r.body)
		}
	})
	t.Run("idle 10 min", func(t *testing.T) {
		s := start()
		e.clk.Add(10 * time.Minute)
		if r := e.post("/challenge", follow(s, "kba_birthdate", m.Birthdate)); r.err.Error != "invalid_session" {
			t.Fatalf("%s", r.body)
		}
	})
	t.Run("absolute 30 min", func(t *testing.T) {
		s := start()
		for range 3 {
			e.clk.Add(9*time.Minute + 50*time.Second)
			if r := e.post("/challenge", follow(s)); r.err.Error != "insufficient_authorization" {
				t.Fatalf("%s", r.body)
			}
		}
		e.clk.Add(time.Minute)
		if r := e.post("/challenge", follow(s)); r.err.Error != "invalid_session" {
			t.Fatalf("%s", r.body)
		}
	})
	t.Run("10 requests per minute", func(t *testing.T) {
		s := start() // request 1
		for i := 2; i <= 10; i++ {
			if r := e.post("/challenge", follow(s)); r.err.Error != "insufficient_authorization" {
				t.Fatalf("request %d: %s", i, r.body)
			}
		}
		if r := e.post("/challenge", follow(s)); r.err.Error != "access_denied" {
			t.Fatalf("request 11: %s", r.body)
		}
		if r := e.post("/challenge", follow(s)); r.err.Error != "invalid_session" {
			t.Fatalf("after: %s", r.body)
		}
	})
}

// TestReentryMaxAge: re-entry at the proven level reissues a code; with a
// max_age older than the proof it asks for the one-time code.
func TestReentryMaxAge(t *testing.T) {
	e := newEnv(t, nil)
	m := demo("pt-0002")
	v, c := pkce()
	r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, ""))
	var ok challenge.ChallengeSuccess
	r.json(&ok)
	var tr struct {
		AuthSession string `json:"auth_session"`
	}
	e.redeem(ok.AuthorizationCode, v).json(&tr)
	_, c2 := pkce()
	if r := e.post("/challenge", follow(tr.AuthSession, "code_challenge", c2, "code_challenge_method", "S256")); r.status != 200 {
		t.Fatalf("reissue: %d %s", r.status, r.body)
	}
	if r := e.post("/challenge", follow(tr.AuthSession)); r.err.Error != "invalid_request" {
		t.Fatalf("re-entry without code_challenge: %s", r.body)
	}
	e.clk.Add(2 * time.Minute)
	_, c3 := pkce()
	r = e.post("/challenge", follow(tr.AuthSession, "code_challenge", c3, "code_challenge_method", "S256", "max_age", "60"))
	if !r.err.OTPRequired {
		t.Fatalf("stale proof: %s", r.body)
	}
}

func TestRedirectToWeb(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.WebOnlyScopes = []string{"account:manage"} })
	_, c := pkce()
	r := e.post("/challenge", kba(c, "Maria Garcia", "", "", "", "", "account:manage"))
	if r.status != 400 || string(r.body) != `{"error":"redirect_to_web"}` {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestAuditHasNoPHI(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	e := newEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.OTP = &TwilioVerify{BaseURL: "http://127.0.0.1:1", AccountSID: "AC1", ServiceSID: "VA1", AuthToken: "tok"} // fails: logged
	})
	m := demo("pt-0001")
	_, c := pkce()
	e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, stirA, ""))
	_, c = pkce()
	e.post("/challenge", kba(c, m.Name, "1999-01-01", m.SSNLast4, m.Phone, "", "medications:read"))
	evs, err := e.st.ListAudit(context.Background(), session.AuditFilter{})
	if err != nil || len(evs) < 2 {
		t.Fatalf("audit: %d %v", len(evs), err)
	}
	raw, _ := json.Marshal(evs)
	code, _ := LatestOutboxCode(e.outbox, "")
	for _, secret := range []string{"Maria", "Garcia", m.Birthdate, "1999-01-01", m.SSNLast4, m.Phone, "pt-0001"} {
		if canary.Leaks(string(raw), secret) {
			t.Errorf("audit contains %q", secret)
		}
	}
	if code != "" && bytes.Contains(raw, []byte(`"`+code+`"`)) {
		t.Error("audit contains the OTP")
	}
	// A bad client assertion and an OTP-send failure are logged — without PHI or secrets.
	_, c = pkce()
	// A failed send is never answered "code sent"; and while the channel is
	// failing a phantom (wrong answers) gets the same answer, so the reply
	// still says nothing about whether the KBA matched.
	if r := e.post("/challenge", kba(c, m.Name, m.Birthdate, m.SSNLast4, m.Phone, "", "")); r.err.OTPRequired || r.err.Error != "temporarily_unavailable" {
		t.Fatalf("send failure must not look like otp_required: %s", r.body)
	}
	_, c = pkce()
	if r := e.post("/challenge", kba(c, m.Name, "1999-01-01", m.SSNLast4, m.Phone, "", "")); r.err.OTPRequired || r.err.Error != "temporarily_unavailable" {
		t.Fatalf("a phantom during the outage must answer as a real caller does: %s", r.body)
	}
	f := kba("x", m.Name, m.Birthdate, m.SSNLast4, m.Phone, "", "")
	f.Set("client_assertion_type", assertionTypeJWTBearer)
	f.Set("client_assertion", "a.b.c")
	e.post("/challenge", f, noAuth)
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "OTP send failed") {
		t.Fatalf("expected a logged send failure, got %q", out)
	}
	for _, secret := range []string{"Maria", "Garcia", m.Birthdate, m.SSNLast4, m.Phone, "pt-0001", ivrSecret, "tok"} {
		if canary.Leaks(out, secret) {
			t.Errorf("log contains %q: %s", secret, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
