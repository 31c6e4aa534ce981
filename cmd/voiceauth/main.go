// Command voiceauth runs the voice authentication service and its tools.
// It only wires: every behaviour lives in the packages it imports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/scenarios"
)

const usage = `voiceauth — phone callers prove who they are; the agent acts for them through MCP.

Usage:
  voiceauth serve [flags]                 run the service (embedded AS + demo MCP server by default)
  voiceauth call [flags]                  terminal softphone: talk to the service by typing
  voiceauth replay [--json] [--target URL] DIR|FILE   run scenario files
  voiceauth load --calls N --concurrency C --transport relay|webhook
  voiceauth otp-outbox [--data-dir DIR] [PHONE]      latest one-time code texted to PHONE (dev SMS outbox)
  voiceauth keys generate|show|rotate|sign-tools     the MCP server's Ed25519 identity
  voiceauth audit verify|export [--patient ID --from DATE --to DATE]
  voiceauth lockouts list|clear [--patient ID | --number E164]
  voiceauth secrets init|rotate           create or rotate the secrets file
  voiceauth clients add|list|rotate-secret|remove    the AS's client registry (shared through the store)
  voiceauth dev-token --sub PATIENT_ID [--acr ACR]    a subject token from the dev partner issuer (not in production)
  voiceauth patients import [--dry-run] PATH... | count   FHIR R4 Patients from the EHR (Bundle, Bulk Data ndjson)
  voiceauth twilio configure --number +1… [--dry-run]  point a Twilio number's voice URL and status callback here

Run "voiceauth serve -h" for configuration flags; each has an environment variable.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(rest, stdout, stderr)
	case "call":
		return scenarios.CallMain(rest, stdin, stdout, stderr)
	case "replay":
		return scenarios.ReplayMain(rest, stdout, stderr)
	case "load":
		return scenarios.LoadMain(rest, stdout, stderr)
	case "otp-outbox":
		return otpOutbox(rest, stdout, stderr)
	case "keys":
		return keys(rest, stdout, stderr)
	case "audit":
		return audit(rest, stdout, stderr)
	case "lockouts":
		return lockouts(rest, stdout, stderr)
	case "secrets":
		return secrets(rest, stdout, stderr)
	case "clients":
		return clients(rest, stdout, stderr)
	case "dev-token":
		return devToken(rest, stdout, stderr)
	case "patients":
		return patients(rest, stdout, stderr)
	case "twilio":
		return twilioCmd(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "voiceauth: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	v, err := resolve(fs, args, os.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
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
	if st.SecretsCreated {
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
