package app

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voiceauth/voiceauth/authserver"
)

// OTP channels.
const (
	OTPOutbox          = "outbox"
	OTPTwilioMessaging = "twilio-messaging"
	OTPTwilioVerify    = "twilio-verify"
)

// OTPConfig is how one-time codes reach callers. The zero value is the
// embedded default: the dev outbox file.
type OTPConfig struct {
	Channel             string // outbox | twilio-messaging | twilio-verify
	AccountSID          string // TWILIO_ACCOUNT_SID
	APIKey, APISecret   string // optional API key pair instead of the auth token
	MessagingServiceSID string // twilio-messaging: preferred sender …
	From                string // … or this number
	VerifyServiceSID    string // twilio-verify
	APIBase             string // replaces Twilio's hosts (tests: a local fake); "" = Twilio

	// SMS-pumping guard: sends per destination number and per country
	// prefix in Window (shared by every instance through the store).
	// Zero takes the defaults; negative disables that limit.
	PerNumber, PerPrefix int
	Window               time.Duration
}

// twilioTimeout bounds one Twilio REST call made during a call.
const twilioTimeout = 3 * time.Second

const (
	defaultOTPPerNumber = 5
	defaultOTPPerPrefix = 100
)

// validate reports the configuration problems of the chosen channel.
func (o OTPConfig) validate(production bool) error {
	var missing []string
	switch o.Channel {
	case "", OTPOutbox:
		if production {
			return errors.New("VOICEAUTH_OTP_CHANNEL=outbox only writes codes to a local file; production needs twilio-messaging or twilio-verify")
		}
		return nil
	case OTPTwilioMessaging:
		if o.MessagingServiceSID == "" && o.From == "" {
			missing = append(missing, "--twilio-messaging-service-sid or --sms-from")
		}
	case OTPTwilioVerify:
		if o.VerifyServiceSID == "" {
			missing = append(missing, "--twilio-verify-service-sid")
		}
	default:
		return fmt.Errorf("VOICEAUTH_OTP_CHANNEL must be outbox, twilio-messaging or twilio-verify, not %q", o.Channel)
	}
	if o.AccountSID == "" {
		missing = append(missing, "TWILIO_ACCOUNT_SID")
	}
	if (o.APIKey == "") != (o.APISecret == "") {
		missing = append(missing, "both TWILIO_API_KEY and TWILIO_API_SECRET (or neither)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("--otp-channel %s needs %s", o.Channel, strings.Join(missing, ", "))
	}
	return nil
}

// otpChannel builds the configured channel, behind the SMS-pumping guard
// when it texts through Twilio.
func (s *Stack) otpChannel() (authserver.OTPChannel, error) {
	o := s.cfg.OTP
	if err := o.validate(s.cfg.Production); err != nil {
		return nil, err
	}
	if o.Channel == "" || o.Channel == OTPOutbox {
		return &authserver.OutboxChannel{Path: s.OTPOutboxPath(), Store: s.store, Now: s.cfg.Now}, nil
	}
	token := SplitTokens(s.TwilioAuthToken)
	secret := ""
	if len(token) > 0 {
		secret = token[0]
	}
	if o.APIKey != "" {
		secret = o.APISecret
	}
	if secret == "" {
		return nil, errors.New("--otp-channel " + o.Channel + " needs TWILIO_AUTH_TOKEN or an API key pair")
	}
	// A send that hangs must fail well inside the IVR's give-up time, so the
	// caller hears the usual words (and the audit the failure) instead of
	// the call ending as backend_down.
	hc := &http.Client{Timeout: twilioTimeout}
	var next authserver.OTPChannel
	if o.Channel == OTPTwilioMessaging {
		next = &authserver.TwilioMessaging{BaseURL: o.APIBase, AccountSID: o.AccountSID, APIKeySID: o.APIKey, AuthToken: secret,
			HTTPClient: hc, MessagingServiceSID: o.MessagingServiceSID, From: o.From, Store: s.store, Now: s.cfg.Now}
	} else {
		next = &authserver.TwilioVerify{BaseURL: o.APIBase, AccountSID: o.AccountSID, APIKeySID: o.APIKey, AuthToken: secret,
			HTTPClient: hc, ServiceSID: o.VerifyServiceSID}
	}
	blocked := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voiceauth_otp_sends_blocked_total",
		Help: "One-time-code texts not sent because a per-number or per-country-prefix limit was reached (SMS pumping guard).",
	}, []string{"scope"})
	for _, sc := range []string{"number", "prefix"} {
		blocked.WithLabelValues(sc)
	}
	if err := s.registry.Register(blocked); err != nil {
		return nil, err
	}
	limit := func(v, def int) int {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	return &authserver.SendGuard{Next: next, Store: s.store, Window: o.Window, Now: s.cfg.Now,
		PerNumber: limit(o.PerNumber, defaultOTPPerNumber), PerPrefix: limit(o.PerPrefix, defaultOTPPerPrefix),
		OnBlocked: func(scope string) { blocked.WithLabelValues(scope).Inc() }}, nil
}

// otpChannelName labels OTP sends in metrics.
func (s *Stack) otpChannelName() string {
	if s.cfg.OTP.Channel == "" {
		return OTPOutbox
	}
	return s.cfg.OTP.Channel
}
