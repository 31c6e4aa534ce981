package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
)

// The production integrations' settings (real SMS). They join the common
// table, so they have a flag, an environment variable and a YAML key like
// every other setting.
var integrationSettings = []setting{
	{flag: "otp-channel", env: "VOICEAUTH_OTP_CHANNEL", yaml: "otp_channel", def: "outbox", help: "how one-time codes are texted: outbox (dev file; refused in production), twilio-messaging or twilio-verify"},
	{flag: "twilio-account-sid", env: "TWILIO_ACCOUNT_SID", yaml: "twilio_account_sid", help: "Twilio account SID (AC…) for texting codes and `twilio configure`"},
	{flag: "twilio-api-key", env: "TWILIO_API_KEY", yaml: "twilio_api_key", help: "optional Twilio API key SID (SK…) used instead of the auth token"},
	{flag: "twilio-api-secret", env: "TWILIO_API_SECRET", yaml: "twilio_api_secret", secret: true, help: "the API key's secret"},
	{flag: "twilio-messaging-service-sid", env: "TWILIO_MESSAGING_SERVICE_SID", yaml: "twilio_messaging_service_sid", help: "twilio-messaging: Messaging Service (MG…) the codes are sent from"},
	{flag: "sms-from", env: "VOICEAUTH_SMS_FROM", yaml: "sms_from", help: "twilio-messaging: sender number (E.164) when there is no Messaging Service"},
	{flag: "twilio-verify-service-sid", env: "TWILIO_VERIFY_SERVICE_SID", yaml: "twilio_verify_service_sid", help: "twilio-verify: Verify service (VA…)"},
	{flag: "twilio-api-base", env: "VOICEAUTH_TWILIO_API_BASE", yaml: "twilio_api_base", help: "replaces Twilio's API hosts (a local fake in tests); empty = Twilio"},
	{flag: "otp-limit-per-number", env: "VOICEAUTH_OTP_LIMIT_PER_NUMBER", yaml: "otp_limit_per_number", def: "5", help: "SMS-pumping guard: codes texted to one number per --otp-limit-window (0 = no limit)"},
	{flag: "otp-limit-per-prefix", env: "VOICEAUTH_OTP_LIMIT_PER_PREFIX", yaml: "otp_limit_per_prefix", def: "100", help: "SMS-pumping guard: codes texted to one country prefix (+1 and area code in the NANP) per window (0 = no limit)"},
	{flag: "otp-limit-window", env: "VOICEAUTH_OTP_LIMIT_WINDOW", yaml: "otp_limit_window", def: "1h", help: "the guard's window"},
}

func init() { settings = append(settings, integrationSettings...) }

// otpConfig reads the OTP channel settings.
func (v values) otpConfig() (app.OTPConfig, error) {
	o := app.OTPConfig{
		Channel: v["otp-channel"], AccountSID: v["twilio-account-sid"], APIKey: v["twilio-api-key"], APISecret: v["twilio-api-secret"],
		MessagingServiceSID: v["twilio-messaging-service-sid"], From: v["sms-from"], VerifyServiceSID: v["twilio-verify-service-sid"],
		APIBase: v["twilio-api-base"],
	}
	limit := func(name string) (int, error) {
		n, err := strconv.Atoi(v[name])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s must be a whole number ≥ 0, not %q", name, v[name])
		}
		if n == 0 {
			return -1, nil // the flag's 0 means "no limit"; OTPConfig's zero means "default"
		}
		return n, nil
	}
	var err error
	if o.PerNumber, err = limit("otp-limit-per-number"); err != nil {
		return o, err
	}
	if o.PerPrefix, err = limit("otp-limit-per-prefix"); err != nil {
		return o, err
	}
	if o.Window, err = time.ParseDuration(v["otp-limit-window"]); err != nil || o.Window <= 0 {
		return o, fmt.Errorf("otp-limit-window must be a positive duration, not %q", v["otp-limit-window"])
	}
	switch o.Channel {
	case app.OTPOutbox, app.OTPTwilioMessaging, app.OTPTwilioVerify:
	default:
		return o, fmt.Errorf("otp-channel must be outbox, twilio-messaging or twilio-verify, not %q", o.Channel)
	}
	return o, nil
}
