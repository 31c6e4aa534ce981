package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/voiceauth/voiceauth/internal/cli"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/internal/app"
)

const clientsUsage = `usage:
  voiceauth clients add ID --kind voice|host|exchange [--auth secret|private_key_jwt --jwks FILE]
  voiceauth clients list
  voiceauth clients rotate-secret ID [--grace 24h]
  voiceauth clients remove ID
(each also takes --data-dir, --store, --secrets-file)`

// splitID lets the client id come before or after the flags.
func splitID(args []string) (id string, rest []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// clients manages the AS's client registry in the store, which every
// instance sharing the store consults on each client authentication.
var clientsCmd = cli.Group{Name: "clients", Summary: "The AS's client registry, kept in the store and consulted by every instance sharing it.",
	Actions: []cli.Action{
		{Name: "add", Args: "ID --kind voice|host|exchange [--auth secret|private_key_jwt --jwks FILE] [flags]", Summary: "register a client; prints a generated secret once, on its last line"},
		{Name: "list", Args: "[flags]", Summary: "list the registered clients and their kinds"},
		{Name: "rotate-secret", Args: "ID [--grace 24h] [flags]", Summary: "issue a new secret; the old one keeps working for the grace period"},
		{Name: "remove", Args: "ID [flags]", Summary: "remove a client"},
	}}

func clients(args []string, stdout, stderr io.Writer) int {
	a, rest0, code, ok := clientsCmd.Dispatch(args, stdout, stderr)
	if !ok {
		return code
	}
	sub := a.Name
	id, rest := splitID(rest0)
	fs := clientsCmd.FlagSet(a)
	dataDir, store, secretsFile := storeFlags(fs)
	kind := fs.String("kind", "", "voice (challenge endpoint), host (registers subject tokens for calls) or exchange (RFC 8693)")
	auth := fs.String("auth", authserver.AuthSecret, "secret or private_key_jwt")
	jwksFile := fs.String("jwks", "", "JWKS file with the client's public keys (for --auth private_key_jwt)")
	grace := fs.Duration("grace", authserver.DefaultSecretGrace, "how long the previous secret keeps working after rotate-secret")
	if code, ok := cli.Parse(fs, rest, stdout, stderr); !ok {
		return code
	}
	extra := fs.Args()
	if id == "" && len(extra) > 0 {
		id, extra = extra[0], extra[1:]
	}
	if len(extra) > 0 {
		fmt.Fprintln(stderr, clientsUsage)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "voiceauth clients %s: %v\n", sub, err)
		if errors.Is(err, authserver.ErrClientInvalid) {
			return 2
		}
		return 1
	}
	if sub != "list" && id == "" {
		fmt.Fprintln(stderr, clientsUsage)
		return 2
	}
	var jwks []byte
	if sub == "add" {
		if !authserver.ValidKind(*kind) {
			fmt.Fprintln(stderr, "voiceauth clients add: --kind must be voice, host or exchange")
			return 2
		}
		if *jwksFile != "" {
			b, err := os.ReadFile(*jwksFile)
			if err != nil {
				return fail(fmt.Errorf("--jwks: %w", err))
			}
			jwks = b
		}
	}
	ctx := context.Background()
	st, _, err := app.OpenStore(ctx, app.Config{DataDir: *dataDir, Store: *store, SecretsFile: *secretsFile})
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	reg := &authserver.Registry{Store: st, Grace: *grace}
	switch sub {
	case "add":
		secret, err := reg.Add(ctx, id, *kind, *auth, jwks)
		if err != nil {
			return fail(err)
		}
		if secret == "" {
			fmt.Fprintf(stdout, "added client %s (kind %s, private_key_jwt)\n", id, *kind)
			return 0
		}
		fmt.Fprintf(stdout, "added client %s (kind %s, client_secret_basic)\n", id, *kind)
		fmt.Fprintln(stdout, "its secret, shown only this once:")
		fmt.Fprintln(stdout, secret)
	case "list":
		list, err := reg.List(ctx)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%-32s %-9s %-16s %-20s %s\n", "ID", "KIND", "AUTH", "UPDATED", "PREVIOUS SECRET VALID UNTIL")
		for _, c := range list {
			prev := "-"
			if !c.PrevSecretUntil.IsZero() {
				prev = c.PrevSecretUntil.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%-32s %-9s %-16s %-20s %s\n", c.ID, c.Kind, c.Auth, c.UpdatedAt.UTC().Format(time.RFC3339), prev)
		}
	case "rotate-secret":
		secret, until, err := reg.RotateSecret(ctx, id)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "rotated the secret of %s; the previous one works until %s\n", id, until.UTC().Format(time.RFC3339))
		fmt.Fprintln(stdout, "the new secret, shown only this once:")
		fmt.Fprintln(stdout, secret)
	case "remove":
		if err := reg.Remove(ctx, id); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "removed client %s\n", id)
	default:
		fmt.Fprintf(stderr, "voiceauth clients: unknown subcommand %q\n%s\n", sub, clientsUsage)
		return 2
	}
	return 0
}

// devToken prints a subject token from the dev partner issuer so RFC 8693
// can be tried end to end from a shell. Refused in production, where that
// issuer is not trusted anyway.
func devToken(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("dev-token --sub PATIENT_ID [--acr ACR] [flags]", "Print a subject token from the dev partner issuer, to try RFC 8693 token exchange from a shell (refused in production).")
	dataDir, _, secretsFile := storeFlags(fs)
	sub := fs.String("sub", "", "patient id the token is about (e.g. pt-0001)")
	acr := fs.String("acr", "", "acr claim (urn:voiceauth:acr:kba or urn:voiceauth:acr:kba-otp); the AS caps it")
	aud := fs.String("aud", "", "audience (default http://<as-addr>)")
	asAddr := fs.String("as-addr", envOr("VOICEAUTH_AS_ADDR", "127.0.0.1:8081"), "the embedded AS's address, for the default audience")
	ttl := fs.Duration("ttl", 5*time.Minute, "lifetime")
	envName := fs.String("env", envOr("VOICEAUTH_ENV", "development"), "production refuses")
	if code, ok := cli.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if e := strings.ToLower(*envName); e == "production" || e == "prod" {
		fmt.Fprintln(stderr, "voiceauth dev-token: refused in production (the dev partner issuer is not trusted there)")
		return 1
	}
	if *sub == "" {
		fmt.Fprintln(stderr, "usage: voiceauth dev-token --sub PATIENT_ID [--acr ACR] [--ttl 5m] [--data-dir DIR]")
		return 2
	}
	cfg := app.Defaults(app.Config{DataDir: *dataDir, SecretsFile: *secretsFile})
	secrets, _, err := app.LoadSecrets(cfg.SecretsFile, false)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth dev-token:", err)
		return 1
	}
	if *aud == "" {
		*aud = "http://" + *asAddr
	}
	tok, err := app.MintDevToken(secrets, *aud, *sub, *acr, time.Now(), *ttl)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth dev-token:", err)
		return 2
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
