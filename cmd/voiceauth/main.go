// Command voiceauth runs the voice authentication service and its tools.
// It only wires: every behaviour lives in the packages it imports.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/cli"
	"github.com/voiceauth/voiceauth/scenarios"
)

// command is one `voiceauth` subcommand: its usage line (after "voiceauth ")
// and what it does, for the top-level help.
type command struct {
	use, summary string
	run          func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"serve":      {"serve [flags]", "run the service (embedded AS + demo MCP server by default)", ignoreStdin(serve)},
	"call":       {"call [flags]", "terminal softphone: talk to the service by typing", scenarios.CallMain},
	"replay":     {"replay [--json] [--target URL] DIR|FILE", "run scenario files", ignoreStdin(scenarios.ReplayMain)},
	"load":       {"load --calls N --concurrency C --transport relay|webhook", "drive synthetic callers and report latency and memory", ignoreStdin(scenarios.LoadMain)},
	"otp-outbox": {"otp-outbox [--data-dir DIR] PHONE", "latest one-time code texted to PHONE (dev SMS outbox)", ignoreStdin(otpOutbox)},
	"keys":       {"keys generate|show|rotate|sign-tools", "the MCP server's Ed25519 identity", ignoreStdin(keys)},
	"audit":      {"audit verify|anchor|export", "check, anchor or export the audit trail", ignoreStdin(audit)},
	"pins":       {"pins list|clear", "MCP server identity keys pinned on first use", ignoreStdin(pins)},
	"lockouts":   {"lockouts list|clear", "see and lift KBA lockouts", ignoreStdin(lockouts)},
	"secrets":    {"secrets init|rotate", "create the secrets file (or add missing keys) or rotate one key", ignoreStdin(secrets)},
	"clients":    {"clients add|list|rotate-secret|remove", "the AS's client registry (shared through the store)", ignoreStdin(clients)},
	"dev-token":  {"dev-token --sub PATIENT_ID [--acr ACR]", "a subject token from the dev partner issuer (not in production)", ignoreStdin(devToken)},
	"patients":   {"patients import [--dry-run] PATH... | count", "FHIR R4 Patients from the EHR (Bundle, Bulk Data ndjson)", ignoreStdin(patients)},
	"twilio":     {"twilio configure --number +1… [--dry-run]", "point a Twilio number's voice URL and status callback here", ignoreStdin(twilioCmd)},
	"bench":      {"bench webhook [flags]", "signed webhooks: voiceauth against a bare twilio-go handler, with the ratio", ignoreStdin(scenarios.BenchMain)},
}

func ignoreStdin(f func(args []string, stdout, stderr io.Writer) int) func([]string, io.Reader, io.Writer, io.Writer) int {
	return func(args []string, _ io.Reader, stdout, stderr io.Writer) int { return f(args, stdout, stderr) }
}

func usage() string {
	var b strings.Builder
	b.WriteString("voiceauth — phone callers prove who they are; the agent acts for them through MCP.\n\nUsage:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  voiceauth %-58s %s\n", commands[n].use, commands[n].summary)
	}
	b.WriteString("\nRun \"voiceauth <command> -h\" for a command's flags; serve's each have an environment variable.\n")
	return b.String()
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage())
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "voiceauth: unknown command %q\n\n%s", args[0], usage())
		return 2
	}
	return c.run(args[1:], stdin, stdout, stderr)
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("serve [flags]", "Run the service: the voice front end, and unless --mcp-url is set the reference AS and the demo MCP server.\nEvery flag also has an environment variable and a --config YAML key (flag > env > file > default).")
	cli.Capture(fs)
	v, err := resolve(fs, args, os.Getenv)
	if err != nil {
		if code, ok := cli.Handle(fs, err, stdout, stderr); !ok && code == 0 {
			return 0
		}
		fmt.Fprintln(stderr, "voiceauth serve:", err)
		return 2
	}
	cfg, err := v.appConfig()
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth serve:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// VOICEAUTH_CPUPROFILE=file profiles the whole run (docs/PERFORMANCE.md).
	if path := os.Getenv("VOICEAUTH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth serve: cpu profile:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "voiceauth serve: cpu profile:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	st, err := app.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth serve:", err)
		return 1
	}
	printBanner(stdout, st, app.Defaults(cfg))
	// SIGHUP reloads the secrets file now (it is also watched for changes).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			st.ReloadSecrets()
		}
	}()
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down: letting calls in progress finish their current turn…")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Close(sctx); err != nil {
		fmt.Fprintln(stderr, "voiceauth serve: shutdown:", err)
		return 1
	}
	return 0
}

func printBanner(w io.Writer, st *app.Stack, cfg app.Config) {
	fmt.Fprintf(w, "voiceauth is up (%s front end)\n", cfg.Frontend)
	fmt.Fprintf(w, "  voice service   %s   (Twilio signs against %s)\n", st.VoiceURL, st.PublicURL)
	if st.ASURL != "" {
		fmt.Fprintf(w, "  reference AS    %s\n", st.ASURL)
	}
	fmt.Fprintf(w, "  MCP server      %s\n", st.MCPURL)
	fmt.Fprintf(w, "  health          %s/healthz  %s/readyz  %s/metrics\n", st.VoiceURL, st.AdminURL, st.AdminURL)
	if cfg.Production {
		return
	}
	if st.SecretsCreated && !isTerminalWriter(w) {
		// Container and service logs are kept and shipped: secrets never go there.
		fmt.Fprintf(w, "\nDev secrets were generated into %s (not printed: output is not a terminal; read the file).\n", cfg.SecretsFile)
	} else if st.SecretsCreated {
		fmt.Fprintf(w, "\nDev secrets were generated into %s (shown once):\n", cfg.SecretsFile)
		fmt.Fprintf(w, "  TWILIO_AUTH_TOKEN        %s\n", st.TwilioAuthToken)
		fmt.Fprintf(w, "  VOICEAUTH_CLIENT_ID      %s\n", st.ClientID)
		fmt.Fprintf(w, "  VOICEAUTH_CLIENT_SECRET  %s\n", st.ClientSecret)
		fmt.Fprintf(w, "  host app client          %s / %s\n", st.HostClientID, st.HostClientSecret)
	} else {
		fmt.Fprintf(w, "\nDev secrets (Twilio auth token, client secrets) are in %s\n", cfg.SecretsFile)
	}
	fmt.Fprintf(w, "Try a call without a phone:  go run ./cmd/voiceauth call --target %s --auth-token <TWILIO_AUTH_TOKEN>\n", st.VoiceURL)
	fmt.Fprintln(w, "  (or plain `go run ./cmd/voiceauth call` for a private embedded stack)")
}

// isTerminalWriter reports whether w is a terminal (not a pipe, file or log).
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
