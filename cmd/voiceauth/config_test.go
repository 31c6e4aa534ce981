package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "voiceauth.yaml")
	if err := os.WriteFile(file, []byte("addr: 127.0.0.1:9000\nfrontend: relay\ntransfer_number: \"+15555550199\"\nlog_level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VOICEAUTH_FRONTEND": "gather", "VOICEAUTH_DATA_DIR": "/tmp/from-env"}
	getenv := func(k string) string { return env[k] }
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v, err := resolve(fs, []string{"--config", file, "--data-dir", "/tmp/from-flag"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"data-dir":        "/tmp/from-flag", // flag beats env
		"frontend":        "gather",         // env beats file
		"addr":            "127.0.0.1:9000", // file beats default
		"transfer-number": "+15555550199",   // file
		"as-addr":         "127.0.0.1:8081", // default
		"client-id":       "voiceauth-ivr",  // default
	}
	for k, want := range cases {
		if v[k] != want {
			t.Errorf("%s = %q, want %q", k, v[k], want)
		}
	}
	cfg, err := v.appConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GeneratedPatients != 10000 || cfg.HoldAfter.Seconds() != 1.5 || cfg.GiveUpAfter.Seconds() != 6 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	for name, args := range map[string][]string{
		"frontend": {"--frontend", "carrier-pigeon"},
		"env":      {"--env", "staging"},
		"patients": {"--generated-patients", "lots"},
		"duration": {"--hold-after", "soon"},
	} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		v, err := resolve(fs, args, func(string) string { return "" })
		if err != nil {
			t.Fatalf("%s: resolve: %v", name, err)
		}
		if _, err := v.appConfig(); err == nil {
			t.Errorf("%s: %v accepted", name, args)
		}
	}
	file := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(file, []byte("adress: typo\n"), 0o600)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := resolve(fs, []string{"--config", file}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "adress") {
		t.Errorf("unknown YAML key not reported: %v", err)
	}
}

func TestProductionRefusesGeneratedSecrets(t *testing.T) {
	var out, errOut strings.Builder
	t.Setenv("VOICEAUTH_ENV", "production")
	t.Setenv("VOICEAUTH_PUBLIC_URL", "http://insecure.example")
	code := run([]string{"serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--as-addr", "127.0.0.1:0", "--mcp-addr", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	if code == 0 {
		t.Fatal("production serve started without secrets")
	}
	for _, want := range []string{"https", "TWILIO_AUTH_TOKEN", "VOICEAUTH_CLIENT_SECRET"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("error does not mention %s: %s", want, errOut.String())
		}
	}
}

func TestConfigHostClients(t *testing.T) {
	file := filepath.Join(t.TempDir(), "voiceauth.yaml")
	if err := os.WriteFile(file, []byte("host_clients: [portal, kiosk]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"yaml list": {args: []string{"--config", file}, want: "portal,kiosk"},
		"env":       {env: map[string]string{"VOICEAUTH_HOST_CLIENTS": " portal , kiosk,"}, want: "portal,kiosk"},
		"flag":      {args: []string{"--config", file, "--host-clients", "portal"}, want: "portal"},
		"unset":     {want: ""},
	} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		v, err := resolve(fs, c.args, func(k string) string { return c.env[k] })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg, err := v.appConfig()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := strings.Join(cfg.HostClients, ","); got != c.want || (c.want == "" && cfg.HostClients != nil) {
			t.Errorf("%s: host clients %q, want %q", name, got, c.want)
		}
	}
}
