package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
	verify "github.com/twilio/twilio-go/rest/verify/v2"

	"github.com/voiceauth/voiceauth/session"
)

// TwilioREST is what every Twilio REST call needs: the account, the
// credentials (the auth token, or an API key pair) and, in tests, a base
// URL that replaces the scheme and host of every request (Twilio's product
// hosts api.twilio.com, verify.twilio.com are kept otherwise).
type TwilioREST struct {
	AccountSID string
	APIKeySID  string // optional: authenticate as this API key; AuthToken is then its secret
	AuthToken  string
	BaseURL    string // "" = Twilio; e.g. http://127.0.0.1:PORT for a local fake
	HTTPClient *http.Client
}

// RESTClient returns a twilio-go client whose requests carry ctx (twilio-go
// itself has no context parameter) and go to BaseURL when set. The last
// answer's Retry-After, if any, is kept in *retryAfter.
func (t TwilioREST) RESTClient(ctx context.Context, retryAfter *time.Duration) *twclient.Client {
	base := http.DefaultTransport
	timeout := 10 * time.Second
	if t.HTTPClient != nil {
		if t.HTTPClient.Transport != nil {
			base = t.HTTPClient.Transport
		}
		if t.HTTPClient.Timeout > 0 {
			timeout = t.HTTPClient.Timeout
		}
	}
	var target *url.URL
	if t.BaseURL != "" {
		target, _ = url.Parse(strings.TrimSuffix(t.BaseURL, "/"))
	}
	user := t.AccountSID
	if t.APIKeySID != "" {
		user = t.APIKeySID
	}
	c := &twclient.Client{
		Credentials: twclient.NewCredentials(user, t.AuthToken),
		HTTPClient: &http.Client{
			Transport: &twilioTransport{ctx: ctx, base: base, target: target, retryAfter: retryAfter},
			Timeout:   timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	c.SetAccountSid(t.AccountSID)
	return c
}

type twilioTransport struct {
	ctx        context.Context
	base       http.RoundTripper
	target     *url.URL
	retryAfter *time.Duration
}

func (tt *twilioTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(tt.ctx)
	if tt.target != nil {
		r.URL.Scheme, r.URL.Host = tt.target.Scheme, tt.target.Host
		r.URL.Path = strings.TrimSuffix(tt.target.Path, "/") + r.URL.Path
		r.Host = tt.target.Host
	}
	resp, err := tt.base.RoundTrip(r)
	if err == nil && tt.retryAfter != nil {
		*tt.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	}
	return resp, err
}

func parseRetryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}

// TwilioError is a failed Twilio REST call: Twilio's error code (e.g. 21211
// invalid number, 21614 not a mobile number, 20429 too many requests), the
// HTTP status and its more_info link. It never carries what we sent.
type TwilioError struct {
	Status     int
	Code       int
	MoreInfo   string
	RetryAfter time.Duration // from a 429's Retry-After header
	Transport  bool          // the request did not get an answer at all
}

func (e *TwilioError) Error() string {
	if e.Transport {
		return "authserver: twilio: no answer"
	}
	return fmt.Sprintf("authserver: twilio: HTTP %d (code %d)", e.Status, e.Code)
}

// TwilioErrorCode is Twilio's error code in err, or 0.
func TwilioErrorCode(err error) int {
	var te *TwilioError
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// twilioErr turns a twilio-go error into a *TwilioError, dropping the
// message Twilio wrote (it may quote the number we sent).
func twilioErr(err error, retryAfter time.Duration) error {
	var re *twclient.TwilioRestError
	if errors.As(err, &re) {
		return &TwilioError{Status: re.Status, Code: re.Code, MoreInfo: re.MoreInfo, RetryAfter: retryAfter}
	}
	var v1 *twclient.RestErrorV1
	if errors.As(err, &v1) {
		return &TwilioError{Status: v1.HttpStatusCode, Code: v1.Code, RetryAfter: retryAfter}
	}
	return &TwilioError{Transport: true}
}

// TwilioMessaging texts an AS-generated code through Programmable Messaging
// (Api v2010 Messages), from a Messaging Service or a sender number.
type TwilioMessaging struct {
	BaseURL             string // "" = Twilio (see TwilioREST)
	AccountSID          string
	APIKeySID           string // optional API key; AuthToken is then its secret
	AuthToken           string
	HTTPClient          *http.Client
	MessagingServiceSID string // preferred over From when set
	From                string
	Store               Store // where the hashed codes live
	TTL                 time.Duration
	Now                 func() time.Time
}

// Send implements OTPChannel.
func (t *TwilioMessaging) Send(ctx context.Context, to string) (string, error) {
	if t.MessagingServiceSID == "" && t.From == "" {
		return "", errors.New("authserver: twilio messaging: no messaging service or sender number")
	}
	b := codeBook{Store: t.Store, TTL: t.TTL, Now: t.Now}
	ref, code, err := b.newCode(ctx)
	if err != nil {
		return "", err
	}
	p := (&api.CreateMessageParams{}).SetTo(to).
		SetBody("Your verification code is " + code + ". It expires in " + fmt.Sprint(int(b.ttl().Minutes())) + " minutes.")
	if t.MessagingServiceSID != "" {
		p.SetMessagingServiceSid(t.MessagingServiceSID)
	} else {
		p.SetFrom(t.From)
	}
	var ra time.Duration
	if _, err := api.NewApiServiceWithClient(t.rest().RESTClient(ctx, &ra)).CreateMessage(p); err != nil {
		return "", twilioErr(err, ra)
	}
	return ref, nil
}

// Check implements OTPChannel.
func (t *TwilioMessaging) Check(ctx context.Context, ref, code string) (bool, error) {
	return codeBook{Store: t.Store, TTL: t.TTL, Now: t.Now}.check(ctx, ref, code)
}

// TwilioVerify lets Twilio Verify v2 generate and check the code.
type TwilioVerify struct {
	BaseURL    string // "" = Twilio (see TwilioREST)
	AccountSID string
	APIKeySID  string // optional API key; AuthToken is then its secret
	AuthToken  string
	HTTPClient *http.Client
	ServiceSID string
}

func (t *TwilioMessaging) rest() TwilioREST {
	return TwilioREST{AccountSID: t.AccountSID, APIKeySID: t.APIKeySID, AuthToken: t.AuthToken, BaseURL: t.BaseURL, HTTPClient: t.HTTPClient}
}

func (t *TwilioVerify) rest() TwilioREST {
	return TwilioREST{AccountSID: t.AccountSID, APIKeySID: t.APIKeySID, AuthToken: t.AuthToken, BaseURL: t.BaseURL, HTTPClient: t.HTTPClient}
}

// Send implements OTPChannel; the reference is the Verification SID.
func (t *TwilioVerify) Send(ctx context.Context, to string) (string, error) {
	var ra time.Duration
	v, err := verify.NewApiServiceWithClient(t.rest().RESTClient(ctx, &ra)).
		CreateVerification(t.ServiceSID, (&verify.CreateVerificationParams{}).SetTo(to).SetChannel("sms"))
	if err != nil {
		return "", twilioErr(err, ra)
	}
	if v.Sid == nil || *v.Sid == "" {
		return "", errors.New("authserver: twilio verify: no sid in the answer")
	}
	return *v.Sid, nil
}

// Check implements OTPChannel. Twilio answers 404 (code 20404) for a
// verification that expired, was approved already or ran out of attempts:
// that is a wrong code, not an outage.
func (t *TwilioVerify) Check(ctx context.Context, ref, code string) (bool, error) {
	var ra time.Duration
	v, err := verify.NewApiServiceWithClient(t.rest().RESTClient(ctx, &ra)).
		CreateVerificationCheck(t.ServiceSID, (&verify.CreateVerificationCheckParams{}).SetVerificationSid(ref).SetCode(code))
	if err != nil {
		err = twilioErr(err, ra)
		var te *TwilioError
		if errors.As(err, &te) && te.Status == http.StatusNotFound {
			return false, nil
		}
		return false, err
	}
	return v.Status != nil && *v.Status == "approved" && v.Valid != nil && *v.Valid, nil
}

// ErrSendLimited is returned by SendGuard when a limit stops a send.
var ErrSendLimited = errors.New("authserver: OTP send limit reached")

// sendLimited says which limit stopped a send; it matches ErrSendLimited.
type sendLimited struct{ scope string }

func (e *sendLimited) Error() string        { return ErrSendLimited.Error() + " (" + e.scope + ")" }
func (e *sendLimited) Is(target error) bool { return target == ErrSendLimited }

// SendGuard is the SMS-pumping guard in front of a channel: at most
// PerNumber sends to one number and PerPrefix sends to one country prefix
// (the calling code; in the NANP +1 and the area code, since +1 spans many
// countries) per Window, counted in the store so every instance shares the
// limits. A blocked send never reaches the channel; the caller hears the
// same words as after a real send.
type SendGuard struct {
	Next      OTPChannel
	Store     Store
	PerNumber int           // 0 = no per-number limit
	PerPrefix int           // 0 = no per-prefix limit
	Window    time.Duration // default 1 h
	OnBlocked func(scope string)
	Now       func() time.Time
}

// Send implements OTPChannel.
func (g *SendGuard) Send(ctx context.Context, to string) (string, error) {
	now := time.Now()
	if g.Now != nil {
		now = g.Now()
	}
	win := g.Window
	if win <= 0 {
		win = time.Hour
	}
	var evs []session.EventWindow
	var scopes []string
	if g.PerNumber > 0 {
		evs = append(evs, session.EventWindow{Key: "otp_to:" + hashKey(to), Since: now.Add(-win)})
		scopes = append(scopes, "number")
	}
	if g.PerPrefix > 0 {
		evs = append(evs, session.EventWindow{Key: "otp_prefix:" + CountryPrefix(to), Since: now.Add(-win)})
		scopes = append(scopes, "prefix")
	}
	if len(evs) > 0 {
		// Counting the attempt itself (even when blocked) keeps a pump that
		// hammers one prefix blocked instead of letting it through every window.
		counts, err := g.Store.AddEvents(ctx, now, evs)
		if err != nil {
			return "", err
		}
		for i, n := range counts {
			limit := g.PerNumber
			if scopes[i] == "prefix" {
				limit = g.PerPrefix
			}
			if n > limit {
				if g.OnBlocked != nil {
					g.OnBlocked(scopes[i])
				}
				return "", &sendLimited{scope: scopes[i]}
			}
		}
	}
	return g.Next.Send(ctx, to)
}

// Check implements OTPChannel.
func (g *SendGuard) Check(ctx context.Context, ref, code string) (bool, error) {
	return g.Next.Check(ctx, ref, code)
}

// twoDigitCodes are the ITU country calling codes of two digits; 1 and 7
// are the one-digit ones, every other code has three.
var twoDigitCodes = map[string]bool{}

func init() {
	for _, c := range strings.Fields("20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98") {
		twoDigitCodes[c] = true
	}
}

// CountryPrefix is the prefix an E.164 number's sends are counted under:
// "+1NPA" in the NANP, otherwise "+" and the country calling code.
// Anything that is not E.164 digits counts under "other".
func CountryPrefix(e164 string) string {
	d, ok := strings.CutPrefix(e164, "+")
	if !ok || len(d) < 4 || len(d) > 15 {
		return "other"
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return "other"
		}
	}
	switch {
	case d[0] == '1':
		return "+" + d[:4]
	case d[0] == '7':
		return "+7"
	case twoDigitCodes[d[:2]]:
		return "+" + d[:2]
	}
	return "+" + d[:3]
}

// otpSendFailure is the audit detail of a failed send: Twilio's error code
// and status, or which guard stopped it. Never the number or the code.
func otpSendFailure(err error) map[string]string {
	var te *TwilioError
	var sl *sendLimited
	switch {
	case errors.As(err, &sl):
		return map[string]string{"reason": "send_limited", "scope": sl.scope}
	case errors.As(err, &te) && te.Transport:
		return map[string]string{"reason": "provider_unreachable"}
	case errors.As(err, &te):
		d := map[string]string{"reason": "provider_error", "twilio_code": strconv.Itoa(te.Code), "http_status": strconv.Itoa(te.Status)}
		if te.RetryAfter > 0 {
			d["retry_after_s"] = strconv.Itoa(int(te.RetryAfter / time.Second))
		}
		return d
	}
	return map[string]string{"reason": "channel_error"}
}

// otpChannelDown tells, from otpSendFailure's detail, a channel that cannot
// send at all from Twilio refusing or failing one send.
func otpChannelDown(d map[string]string) bool {
	// Twilio's answers (a refusal for this number, a rate limit, even a 5xx)
	// keep the caller's words identical to a sent code: no oracle, and the
	// IVR offers a person either way. A channel that cannot be reached at all,
	// or cannot record the code (an unwritable outbox), must not claim it
	// texted anyone.
	return d["reason"] == "channel_error" || d["reason"] == "provider_unreachable"
}

// TwilioErrorOf turns an error from a twilio-go call made through
// TwilioREST.RESTClient into a *TwilioError (retryAfter as kept by it).
func TwilioErrorOf(err error, retryAfter time.Duration) error {
	if err == nil {
		return nil
	}
	return twilioErr(err, retryAfter)
}
