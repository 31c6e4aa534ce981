package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
)

// TestOTPSettings: the integration settings resolve like every other one
// (flag > env > YAML > default) and bad values are refused.
func TestOTPSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "voiceauth.yaml")
	os.WriteFile(file, []byte("otp_channel: twilio-messaging\ntwilio_messaging_service_sid: MG1\notp_limit_per_prefix: 40\n"), 0o600)
	env := map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "VOICEAUTH_OTP_LIMIT_PER_PREFIX": "30"}
	resolveWith := func(args ...string) (app.Config, error) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		v, err := resolve(fs, append([]string{"--config", file}, args...), func(k string) string { return env[k] })
		if err != nil {
			return app.Config{}, err
		}
		return v.appConfig()
	}
	cfg, err := resolveWith("--otp-limit-per-number", "0")
	if err != nil {
		t.Fatal(err)
	}
	want := app.OTPConfig{Channel: "twilio-messaging", AccountSID: "AC1", MessagingServiceSID: "MG1", PerNumber: -1, PerPrefix: 30, Window: time.Hour}
	if cfg.OTP != want {
		t.Fatalf("OTP = %+v\nwant %+v", cfg.OTP, want)
	}
	for _, bad := range [][]string{
		{"--otp-channel", "pigeon"},
		{"--otp-limit-per-number", "-1"},
		{"--otp-limit-per-prefix", "many"},
		{"--otp-limit-window", "0s"},
	} {
		if _, err := resolveWith(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
