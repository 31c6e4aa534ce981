package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/voiceauth/voiceauth/internal/app"
)

// setting is one configuration knob: its flag, its environment variable and
// its YAML key. Precedence: flag > environment > config file > default.
type setting struct {
	flag, env, yaml, def, help string
	secret                     bool
}

var settings = []setting{
	{flag: "data-dir", env: "VOICEAUTH_DATA_DIR", yaml: "data_dir", def: "./data", help: "data directory (SQLite file, secrets, OTP outbox)"},
	{flag: "addr", env: "VOICEAUTH_ADDR", yaml: "addr", def: "127.0.0.1:8080", help: "voice service listen address"},
	{flag: "as-addr", env: "VOICEAUTH_AS_ADDR", yaml: "as_addr", def: "127.0.0.1:8081", help: "embedded authorization server listen address"},
	{flag: "mcp-addr", env: "VOICEAUTH_MCP_ADDR", yaml: "mcp_addr", def: "127.0.0.1:8082", help: "embedded MCP server listen address"},
	{flag: "admin-addr", env: "VOICEAUTH_ADMIN_ADDR", yaml: "admin_addr", help: "separate listener for /metrics and /readyz (default: on the voice listener)"},
	{flag: "public-url", env: "VOICEAUTH_PUBLIC_URL", yaml: "public_url", help: "base URL Twilio signs against (default http://<addr>)"},
	{flag: "frontend", env: "VOICEAUTH_FRONTEND", yaml: "frontend", def: "gather", help: "gather (webhook <Gather> loop) or relay (ConversationRelay websocket)"},
	{flag: "store", env: "VOICEAUTH_STORE", yaml: "store", help: "SQLite path or postgres://… DSN (default <data-dir>/voiceauth.db)"},
	{flag: "secrets-file", env: "VOICEAUTH_SECRETS_FILE", yaml: "secrets_file", help: "secrets file (default <data-dir>/secrets.json)"},
	{flag: "twilio-auth-token", env: "TWILIO_AUTH_TOKEN", yaml: "twilio_auth_token", secret: true, help: "Twilio auth token(s), comma-separated during rotation (default: generated into the secrets file)"},
	{flag: "client-id", env: "VOICEAUTH_CLIENT_ID", yaml: "client_id", def: "voiceauth-ivr", help: "the voice client's id at the AS"},
	{flag: "client-secret", env: "VOICEAUTH_CLIENT_SECRET", yaml: "client_secret", secret: true, help: "the voice client's secret at the AS (default: generated)"},
	{flag: "transfer-number", env: "VOICEAUTH_TRANSFER_NUMBER", yaml: "transfer_number", def: "+15555550100", help: "where callers are transferred to a human"},
	{flag: "log-level", env: "VOICEAUTH_LOG_LEVEL", yaml: "log_level", def: "info", help: "debug|info|warn|error"},
	{flag: "env", env: "VOICEAUTH_ENV", yaml: "env", def: "development", help: "production refuses generated secrets and http public URLs"},
	{flag: "mcp-url", env: "VOICEAUTH_MCP_URL", yaml: "mcp_url", help: "external MCP server (neither embedded server starts)"},
	{flag: "as-issuer", env: "VOICEAUTH_AS_ISSUER", yaml: "as_issuer", help: "issuer the MCP server's PRM must name"},
	{flag: "trusted-issuers", env: "VOICEAUTH_TRUSTED_ISSUERS", yaml: "trusted_issuers", help: "YAML file of RFC 8693 subject-token issuers"},
	{flag: "host-clients", env: "VOICEAUTH_HOST_CLIENTS", yaml: "host_clients", help: "client ids allowed to register subject tokens, comma-separated (default: the embedded demo host; never the voice client)"},
	{flag: "generated-patients", env: "VOICEAUTH_GENERATED_PATIENTS", yaml: "generated_patients", def: "10000", help: "synthetic patients seeded besides the demo ones"},
	{flag: "hold-after", env: "VOICEAUTH_HOLD_AFTER", yaml: "hold_after", def: "1.5s", help: "backend time before the caller hears a hold phrase"},
	{flag: "max-calls", env: "VOICEAUTH_MAX_CALLS", yaml: "max_calls", def: "400", help: "calls in progress on this instance above which new calls hear \"all lines are busy\" and are transferred before any question (-1 = no cap)"},
	{flag: "give-up-after", env: "VOICEAUTH_GIVE_UP_AFTER", yaml: "give_up_after", def: "6s", help: "backend time before the call is transferred"},
}

// values is the resolved configuration as strings, keyed by flag name.
type values map[string]string

// resolve parses args with the settings (plus --config) and applies the
// precedence rules. getenv is os.Getenv outside tests.
func resolve(fs *flag.FlagSet, args []string, getenv func(string) string) (values, error) {
	flagVals := map[string]*string{}
	for _, s := range settings {
		flagVals[s.flag] = fs.String(s.flag, "", s.help+defaultNote(s))
	}
	configFile := fs.String("config", getenv("VOICEAUTH_CONFIG"), "YAML config file (keys: "+yamlKeys()+")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	file := map[string]any{}
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return nil, fmt.Errorf("config file %s: %w", *configFile, err)
		}
		known := map[string]bool{}
		for _, s := range settings {
			known[s.yaml] = true
		}
		for k := range file {
			if !known[k] {
				return nil, fmt.Errorf("config file %s: unknown key %q", *configFile, k)
			}
		}
	}
	v := values{}
	for _, s := range settings {
		switch {
		case set[s.flag]:
			v[s.flag] = *flagVals[s.flag]
		case getenv(s.env) != "":
			v[s.flag] = getenv(s.env)
		case file[s.yaml] != nil:
			v[s.flag] = yamlString(file[s.yaml])
		default:
			v[s.flag] = s.def
		}
	}
	return v, nil
}

// yamlString is a YAML value as its flag would spell it: a list is
// comma-separated.
func yamlString(v any) string {
	if l, ok := v.([]any); ok {
		parts := make([]string, len(l))
		for i, e := range l {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// splitList reads a comma-separated list; empty means unset (nil).
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func defaultNote(s setting) string {
	n := " (env " + s.env
	if s.def != "" {
		n += ", default " + s.def
	}
	return n + ")"
}

func yamlKeys() string {
	var ks []string
	for _, s := range settings {
		ks = append(ks, s.yaml)
	}
	return strings.Join(ks, ", ")
}

// opConfig resolves an operator command's configuration exactly as serve
// does (flags > environment > --config file > defaults, one code path), so
// `lockouts`, `audit`, `secrets` and `keys` open the store and the secrets
// file the running service uses. The command's own flags must be defined on
// fs before the call.
func opConfig(fs *flag.FlagSet, args []string) (app.Config, error) {
	v, err := resolve(fs, args, os.Getenv)
	if err != nil {
		return app.Config{}, err
	}
	cfg, err := v.appConfig()
	if err != nil {
		return app.Config{}, err
	}
	return app.Defaults(cfg), nil
}

// appConfig turns resolved values into the stack's configuration.
func (v values) appConfig() (app.Config, error) {
	cfg := app.Config{
		DataDir: v["data-dir"], Addr: v["addr"], ASAddr: v["as-addr"], MCPAddr: v["mcp-addr"],
		AdminAddr: v["admin-addr"], PublicURL: v["public-url"], Frontend: v["frontend"], Store: v["store"],
		SecretsFile: v["secrets-file"], TwilioAuthToken: v["twilio-auth-token"], ClientID: v["client-id"],
		ClientSecret: v["client-secret"], TransferNumber: v["transfer-number"], MCPURL: v["mcp-url"],
		ASIssuer: v["as-issuer"], TrustedIssuersFile: v["trusted-issuers"], HostClients: splitList(v["host-clients"]),
		LogLevel: app.ParseLevel(v["log-level"]),
	}
	switch strings.ToLower(v["env"]) {
	case "production", "prod":
		cfg.Production = true
	case "development", "dev", "":
	default:
		return cfg, fmt.Errorf("VOICEAUTH_ENV must be production or development, not %q", v["env"])
	}
	switch cfg.Frontend {
	case "gather", "relay":
	default:
		return cfg, fmt.Errorf("VOICEAUTH_FRONTEND must be gather or relay, not %q", cfg.Frontend)
	}
	if err := app.CheckIssuerPin(cfg.MCPURL, cfg.ASIssuer); err != nil {
		return cfg, err
	}
	n, err := strconv.Atoi(v["generated-patients"])
	if err != nil || n < 0 {
		return cfg, fmt.Errorf("generated-patients must be a whole number, not %q", v["generated-patients"])
	}
	cfg.GeneratedPatients = n
	if cfg.MaxCalls, err = strconv.Atoi(v["max-calls"]); err != nil || cfg.MaxCalls == 0 || cfg.MaxCalls < -1 {
		return cfg, fmt.Errorf("max-calls must be a positive whole number or -1 (no cap), not %q", v["max-calls"])
	}
	if cfg.HoldAfter, err = time.ParseDuration(v["hold-after"]); err != nil {
		return cfg, fmt.Errorf("hold-after: %w", err)
	}
	if cfg.GiveUpAfter, err = time.ParseDuration(v["give-up-after"]); err != nil {
		return cfg, fmt.Errorf("give-up-after: %w", err)
	}
	if cfg.OTP, err = v.otpConfig(); err != nil {
		return cfg, err
	}
	return cfg, nil
}
