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
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/internal/canary"
)

func discoverFake(t *testing.T, c *Client) (*fakeAS, *fakeMCP, *Discovery) {
	t.Helper()
	as := newFakeAS(t)
	mcp := newFakeMCP(t, as.Issuer)
	d, err := c.Discover(context.Background(), mcp.URL)
	if err != nil {
		t.Fatal(err)
	}
	return as, mcp, d
}

// TestSubmitOutcomes walks one call through every outcome the profile has,
// against an AS that rotates auth_session on every response and kills the
// superseded value.
func TestSubmitOutcomes(t *testing.T) {
	c := newTestClient(t, nil)
	as, _, d := discoverFake(t, c)
	f, err := c.NewFlow(d, "appointments:read medications:read", "cr-1")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Verifier); n < 43 || n > 128 {
		t.Fatalf("verifier length %d", n)
	}
	ctx := context.Background()
	steps := []struct {
		name string
		a    Answers
		want Outcome
		need []string
	}{
		{"name only", Answers{Name: goodName, CallerPhone: "+15555550101", StirVerstat: "TN-Validation-Passed-A"}, NeedMore, []string{FieldBirthdate, FieldSSNLast4}},
		{"dob", Answers{Birthdate: goodDOB}, NeedMore, []string{FieldSSNLast4}},
		{"wrong ssn", Answers{SSNLast4: "0000"}, RetryKBA, []string{FieldName, FieldBirthdate, FieldSSNLast4}},
		{"all again", Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN}, NeedOTP, nil},
		{"wrong otp", Answers{OTP: "000000"}, RetryOTP, nil},
		{"resend", Answers{OTPResend: true}, NeedOTP, nil},
		{"right otp", Answers{OTP: goodOTP}, Code, nil},
	}
	var sessions []string
	for _, st := range steps {
		before := f.AuthSession
		res, err := c.Submit(ctx, f, st.a)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if res.Outcome != st.want || !slices.Equal(res.Need, st.need) {
			t.Fatalf("%s: outcome %v need %v, want %v %v", st.name, res.Outcome, res.Need, st.want, st.need)
		}
		if res.Outcome != Code && (f.AuthSession == "" || f.AuthSession == before) {
			t.Fatalf("%s: auth_session not replaced by the latest value", st.name)
		}
		sessions = append(sessions, f.AuthSession)
		if res.Outcome == Code {
			tok, err := c.Redeem(ctx, f, res.Code)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Resource != d.Resource || tok.Issuer != as.Issuer || tok.AccessToken == "" || tok.Expiry.IsZero() {
				t.Fatalf("token %v", tok)
			}
		}
	}
	// Wire checks: first request carries response_type, PKCE and resource;
	// later ones carry the auth_session the previous response gave.
	var forms []url.Values
	for _, r := range as.requests() {
		if r.Path == "/challenge" {
			v, _ := url.ParseQuery(r.Body)
			forms = append(forms, v)
		}
	}
	for i, f0 := range forms {
		if f0.Get("response_type") != "code" || f0.Get("resource") != d.Resource || f0.Get("client_id") != testClientID || f0.Get(FieldCallRef) != "cr-1" {
			t.Fatalf("request %d missing required params: %v", i, f0)
		}
		if i == 0 && (f0.Get("code_challenge") == "" || f0.Get("code_challenge_method") != "S256" || f0.Get(FieldAuthSession) != "") {
			t.Fatalf("first request: %v", f0)
		}
		if i > 0 && (f0.Get(FieldAuthSession) != sessions[i-1] || f0.Get("code_challenge") != "") {
			t.Fatalf("request %d auth_session %q, want %q", i, f0.Get(FieldAuthSession), sessions[i-1])
		}
	}
	if got := forms[0].Get(FieldStirVerstat); got != "TN-Validation-Passed-A" {
		t.Fatalf("stir_verstat %q", got)
	}
	if forms[5].Get(FieldOTPResend) != "true" {
		t.Fatalf("otp_resend not sent: %v", forms[5])
	}
}

func TestSubmitTerminalOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(f *Flow)
		answers []Answers
		want    Outcome
		code    string
	}{
		{"denied after two KBA failures", nil, []Answers{{Name: "X", Birthdate: "2000-01-01", SSNLast4: "1111"}, {Name: "X", Birthdate: "2000-01-01", SSNLast4: "1111"}}, Denied, ErrAccessDenied},
		{"stale auth_session", func(f *Flow) { f.AuthSession = "superseded-value" }, []Answers{{Name: goodName}}, SessionInvalid, ErrInvalidSession},
		{"redirect_to_web", nil, []Answers{{Name: "WEB"}}, RedirectToWeb, ErrRedirectToWeb},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, nil)
			_, _, d := discoverFake(t, c)
			f, _ := c.NewFlow(d, "", "cr")
			if tt.prepare != nil {
				tt.prepare(f)
			}
			var res *Result
			for _, a := range tt.answers {
				var err error
				if res, err = c.Submit(context.Background(), f, a); err != nil {
					t.Fatal(err)
				}
			}
			if res.Outcome != tt.want || res.Err == nil || res.Err.ErrorResponse.Error != tt.code {
				t.Fatalf("got %v %v", res.Outcome, res.Err)
			}
			if (tt.want == Denied || tt.want == SessionInvalid) && f.AuthSession != "" {
				t.Fatal("dead auth_session kept")
			}
		})
	}
}

// TestSubmitSwitchesOnErrorNotStatus: the same body under 400, 401, 403 and
// even 200-less statuses yields the same outcome.
func TestSubmitSwitchesOnErrorNotStatus(t *testing.T) {
	for _, status := range []int{400, 401, 403, 429} {
		c := newTestClient(t, nil)
		as, _, d := discoverFake(t, c)
		as.ChallengeHook = func(w http.ResponseWriter, _ *http.Request, _ url.Values) bool {
			writeJSON(w, status, ErrorResponse{Error: ErrInsufficientAuthorization, AuthSession: "s2", OTPRequired: true})
			return true
		}
		f, _ := c.NewFlow(d, "", "")
		res, err := c.Submit(context.Background(), f, Answers{Name: goodName})
		if err != nil || res.Outcome != NeedOTP || f.AuthSession != "s2" {
			t.Fatalf("status %d: %v %v %q", status, res.Outcome, err, f.AuthSession)
		}
	}
}

func TestSubmitHostileResponses(t *testing.T) {
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter)
		cause   error
		code    string
	}{
		{"500 html", func(w http.ResponseWriter) { w.WriteHeader(500); _, _ = w.Write([]byte("<html>oops</html>")) }, ErrUnexpectedStatus, ""},
		{"500 with OAuth error", func(w http.ResponseWriter) { writeJSON(w, 500, ErrorResponse{Error: "server_error"}) }, nil, "server_error"},
		{"truncated", func(w http.ResponseWriter) { w.WriteHeader(400); _, _ = w.Write([]byte(`{"error":"insufficient_auth`)) }, ErrMalformedResponse, ""},
		{"oversized", func(w http.ResponseWriter) {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"error":"x","pad":"` + strings.Repeat("A", 200<<10) + `"}`))
		}, ErrResponseTooLarge, ""},
		{"200 without code", func(w http.ResponseWriter) { writeJSON(w, 200, map[string]string{"code": "wrong-name"}) }, ErrMalformedResponse, ""},
		{"unexpected oauth error", func(w http.ResponseWriter) { writeJSON(w, 401, ErrorResponse{Error: ErrInvalidClient}) }, nil, ErrInvalidClient},
		{"error not a string", func(w http.ResponseWriter) { w.WriteHeader(400); _, _ = w.Write([]byte(`{"error":17}`)) }, ErrMalformedResponse, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, nil)
			as, _, d := discoverFake(t, c)
			as.ChallengeHook = func(w http.ResponseWriter, _ *http.Request, _ url.Values) bool { tt.handler(w); return true }
			f, _ := c.NewFlow(d, "", "")
			res, err := c.Submit(context.Background(), f, Answers{Name: goodName})
			if res.Outcome != TransportFailure || err == nil || res.Err == nil {
				t.Fatalf("got %v, %v", res.Outcome, err)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Fatalf("err %v, want cause %v", err, tt.cause)
			}
			if res.Err.ErrorResponse.Error != tt.code {
				t.Fatalf("wire code %q, want %q", res.Err.ErrorResponse.Error, tt.code)
			}
		})
	}
}

// TestSubmitStallIsBoundedByContext: an AS that never answers costs the
// caller its deadline, not more; the request is not retried.
func TestSubmitStallIsBoundedByContext(t *testing.T) {
	for _, tt := range []struct {
		name       string
		ctxTimeout time.Duration
		reqTimeout time.Duration
	}{
		{"caller budget", 50 * time.Millisecond, 10 * time.Second},
		{"per-request timeout", 10 * time.Second, 50 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, func(cfg *Config) { cfg.RequestTimeout = tt.reqTimeout })
			as, _, d := discoverFake(t, c)
			var hits atomic.Int32
			as.ChallengeHook = func(w http.ResponseWriter, r *http.Request, _ url.Values) bool {
				hits.Add(1)
				<-r.Context().Done() // a 10 s stall, ended by the client giving up
				return true
			}
			f, _ := c.NewFlow(d, "", "")
			ctx, cancel := context.WithTimeout(context.Background(), tt.ctxTimeout)
			defer cancel()
			res, err := c.Submit(ctx, f, Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN})
			if res.Outcome != TransportFailure || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v %v", res.Outcome, err)
			}
			if hits.Load() != 1 {
				t.Fatalf("challenge POST sent %d times", hits.Load())
			}
		})
	}
}

// TestSubmitNeverRePostsAnswers: a connection dropped after the request
// reached the server is a TransportFailure, not a retry.
func TestSubmitNeverRePostsAnswers(t *testing.T) {
	c := newTestClient(t, nil)
	as, _, d := discoverFake(t, c)
	var hits atomic.Int32
	as.ChallengeHook = func(w http.ResponseWriter, r *http.Request, _ url.Values) bool {
		hits.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return true
	}
	f, _ := c.NewFlow(d, "", "")
	res, err := c.Submit(context.Background(), f, Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN})
	if res.Outcome != TransportFailure || err == nil {
		t.Fatalf("got %v %v", res.Outcome, err)
	}
	if hits.Load() != 1 {
		t.Fatalf("answers POSTed %d times", hits.Load())
	}
}

// TestConnectionRefusedIsRetriedOnce: refused means nothing was sent, so a
// single retry is safe even for answers.
func TestConnectionRefusedIsRetriedOnce(t *testing.T) {
	var dials atomic.Int32
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	base := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 4 { // discovery used dials 1–3; the first POST dial is refused
			return nil, &net.OpError{Op: "dial", Net: network, Err: &osSyscallErr{syscall.ECONNREFUSED}}
		}
		return base(ctx, network, addr)
	}
	c := newTestClient(t, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
	as, _, d := discoverFake(t, c)
	f, _ := c.NewFlow(d, "", "")
	res, err := c.Submit(context.Background(), f, Answers{Name: goodName})
	if err != nil || res.Outcome != NeedMore {
		t.Fatalf("got %v %v", res.Outcome, err)
	}
	n := 0
	for _, r := range as.requests() {
		if r.Path == "/challenge" {
			n++
		}
	}
	if dials.Load() != 5 || n != 1 {
		t.Fatalf("dials %d, challenge requests %d", dials.Load(), n)
	}
}

type osSyscallErr struct{ errno syscall.Errno }

func (e *osSyscallErr) Error() string { return "connect: " + e.errno.Error() }
func (e *osSyscallErr) Unwrap() error { return e.errno }

// TestNoSecretsInErrorsOrLogs drives a flow whose AS echoes the answers in
// error_description and checks that no answer, code, auth_session or token
// reaches an error string or the log.
func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	var logs bytes.Buffer
	c := newTestClient(t, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	as, _, d := discoverFake(t, c)
	f, _ := c.NewFlow(d, "appointments:read medications:read", "cr")
	ctx := context.Background()
	var errs []string
	secrets := []string{"Zebediah Quux", "7319", goodName, goodDOB, goodSSN, goodOTP, "000000"}
	for _, a := range []Answers{
		{Name: "Zebediah Quux", Birthdate: goodDOB, SSNLast4: "7319"},
		{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN},
		{OTP: "000000"},
		{OTP: goodOTP},
	} {
		res, err := c.Submit(ctx, f, a)
		if err != nil {
			t.Fatal(err)
		}
		if res.Err != nil {
			errs = append(errs, res.Err.Error())
		}
		secrets = append(secrets, f.AuthSession)
		if res.Outcome == Code {
			secrets = append(secrets, res.Code)
			tok, err := c.Redeem(ctx, f, res.Code)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, tok.AccessToken, tok.RefreshToken)
			slog.New(slog.NewJSONHandler(&logs, nil)).Info("caller logs a token", "token", tok, "flow", f, "answers", a)
			errs = append(errs, tok.String(), fmt.Sprintf("%v %+v %#v %v %+v %#v %v %+v %#v", tok, *tok, tok, f, *f, f, a, a, &a))
			// A failing redemption (code reuse) must not echo the code either.
			_, err = c.Redeem(ctx, f, res.Code)
			if err == nil {
				t.Fatal("code redeemed twice")
			}
			errs = append(errs, err.Error())
			if err := c.Revoke(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = as
	all := logs.String() + strings.Join(errs, "\n")
	for _, s := range secrets {
		if s != "" && canary.Leaks(all, s) {
			t.Errorf("secret %q leaked into errors/logs", s)
		}
	}
	if !strings.Contains(logs.String(), `"outcome":"Code"`) {
		t.Fatalf("logs lack outcomes: %s", logs.String())
	}
}

func TestStepUp(t *testing.T) {
	tests := []struct {
		name      string
		start     string
		headers   []string
		wantScope string
		wantACR   string
		wantAge   int
		wantOK    []bool
	}{
		{"insufficient_scope union", "appointments:read",
			[]string{`Bearer error="insufficient_scope", scope="medications:read appointments:read", resource_metadata="x"`},
			"appointments:read medications:read", "", 0, []bool{true}},
		{"acr step-up", "appointments:read medications:read",
			[]string{`Bearer error="insufficient_user_authentication", acr_values="urn:voiceauth:acr:kba-otp", max_age="300"`},
			"appointments:read medications:read", ACRKBAOTP, 300, []bool{true}},
		{"at most two", "a",
			[]string{`Bearer error="insufficient_scope", scope="b"`, `Bearer error="insufficient_scope", scope="c"`, `Bearer error="insufficient_scope", scope="d"`},
			"a b c", "", 0, []bool{true, true, false}},
		{"invalid_token is not step-up", "a", []string{`Bearer error="invalid_token"`}, "a", "", 0, []bool{false}},
		{"not bearer", "a", []string{`Basic realm="x"`}, "a", "", 0, []bool{false}},
		{"garbage", "a", []string{`Bearer error="`}, "a", "", 0, []bool{false}},
		{"bad max_age", "a", []string{`Bearer error="insufficient_user_authentication", max_age="soon"`}, "a", "", 0, []bool{false}},
	}
	c := newTestClient(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Flow{Scope: tt.start}
			var scope, acr string
			var age int
			for i, h := range tt.headers {
				var ok bool
				scope, acr, age, ok = c.StepUp(f, h)
				if ok != tt.wantOK[i] {
					t.Fatalf("header %d: ok = %v", i, ok)
				}
			}
			if scope != tt.wantScope || acr != tt.wantACR || age != tt.wantAge || f.Scope != tt.wantScope {
				t.Fatalf("got %q %q %d (flow %q)", scope, acr, age, f.Scope)
			}
		})
	}
}

// TestStepUpReentry: after a KBA-only code the resource server asks for
// kba-otp; the flow re-enters with the live auth_session and acr_values.
func TestStepUpReentry(t *testing.T) {
	c := newTestClient(t, nil)
	as, _, d := discoverFake(t, c)
	ctx := context.Background()
	f, _ := c.NewFlow(d, "", "cr")
	res, err := c.Submit(ctx, f, Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN})
	if err != nil || res.Outcome != Code {
		t.Fatalf("%v %v", res.Outcome, err)
	}
	if _, err := c.Redeem(ctx, f, res.Code); err != nil {
		t.Fatal(err)
	}
	if f.AuthSession == "" {
		t.Fatal("token response's auth_session not kept")
	}
	oldVerifier := f.Verifier
	if _, _, _, ok := c.StepUp(f, `Bearer error="insufficient_user_authentication", acr_values="`+ACRKBAOTP+`"`); !ok {
		t.Fatal("step-up refused")
	}
	res, err = c.Submit(ctx, f, Answers{})
	if err != nil || res.Outcome != NeedOTP {
		t.Fatalf("%v %v", res.Outcome, err)
	}
	if f.Verifier == oldVerifier {
		t.Fatal("re-entry reused the spent PKCE verifier")
	}
	res, err = c.Submit(ctx, f, Answers{OTP: goodOTP})
	if err != nil || res.Outcome != Code {
		t.Fatalf("%v %v", res.Outcome, err)
	}
	last := as.requests()
	var v url.Values
	for _, r := range last {
		if r.Path == "/challenge" {
			v, _ = url.ParseQuery(r.Body)
		}
	}
	if v.Get("acr_values") != ACRKBAOTP {
		t.Fatalf("acr_values not carried: %v", v)
	}
	tok, err := c.Redeem(ctx, f, res.Code)
	if err != nil || tok.Scope != "appointments:read" {
		t.Fatalf("%v %v", tok, err)
	}
}

func TestFlowJSONRoundTrip(t *testing.T) {
	c := newTestClient(t, nil)
	_, _, d := discoverFake(t, c)
	f, _ := c.NewFlow(d, "", "cr-9")
	ctx := context.Background()
	if _, err := c.Submit(ctx, f, Answers{Name: goodName}); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	// Another instance with a cold cache continues the flow.
	c2 := newTestClient(t, nil)
	var g Flow
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	res, err := c2.Submit(ctx, &g, Answers{Birthdate: goodDOB, SSNLast4: goodSSN})
	if err != nil || res.Outcome != Code {
		t.Fatalf("%v %v", res.Outcome, err)
	}
	if _, err := c2.Redeem(ctx, &g, res.Code); err != nil {
		t.Fatal(err)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Code: "Code", NeedMore: "NeedMore", RetryKBA: "RetryKBA", NeedOTP: "NeedOTP",
		RetryOTP: "RetryOTP", Denied: "Denied", SessionInvalid: "SessionInvalid", RedirectToWeb: "RedirectToWeb",
		TransportFailure: "TransportFailure", Outcome(42): "Outcome(42)"} {
		if o.String() != want {
			t.Errorf("%d: %q", int(o), o.String())
		}
	}
}

// TestFlowPinsMetadata: with no-store AS metadata, a flow's turns do not
// refetch it (the endpoints validated at discovery are pinned), but a flow
// whose endpoint the issuer no longer publishes is refused after one refetch.
func TestFlowPinsMetadata(t *testing.T) {
	c := newTestClient(t, nil)
	as := newFakeAS(t)
	var metaHits atomic.Int32
	as.MetaHook = func(w http.ResponseWriter, r *http.Request) bool {
		metaHits.Add(1)
		w.Header().Set("Cache-Control", "no-store")
		return false
	}
	mcp := newFakeMCP(t, as.Issuer)
	d, err := c.Discover(context.Background(), mcp.URL)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := c.NewFlow(d, "", "")
	_, err = c.Submit(context.Background(), f, Answers{Name: goodName})
	if err == nil {
		_, err = c.Submit(context.Background(), f, Answers{Birthdate: goodDOB, SSNLast4: goodSSN})
	}
	if err != nil || metaHits.Load() != 1 {
		t.Fatalf("err %v, metadata fetched %d times", err, metaHits.Load())
	}
	as.mu.Lock()
	as.Meta.AuthorizationChallengeEndpoint = as.Issuer + "/challenge2"
	as.mu.Unlock()
	g, _ := c.NewFlow(d, "", "")                                         // d still names /challenge
	if _, err := c.Discover(context.Background(), mcp.URL); err != nil { // no-store: refetched, pin moves
		t.Fatal(err)
	}
	res, err := c.Submit(context.Background(), g, Answers{Name: goodName})
	if !errors.Is(err, ErrBadFlow) || res.Outcome != TransportFailure || metaHits.Load() != 3 {
		t.Fatalf("moved endpoint: %v %v, metadata hits %d", res.Outcome, err, metaHits.Load())
	}
}
