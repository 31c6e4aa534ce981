package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/mcpclient"
)

// keys manages the demo MCP server's Ed25519 identity, kept in the secrets
// file; rotation records go to <data-dir>/mcp-identity-attestations.json,
// which the server publishes so that pinned clients accept the new key.
func keys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: voiceauth keys generate|show|rotate|sign-tools [--data-dir DIR] [--secrets-file FILE]")
		return 2
	}
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := opConfig(fs, args[1:])
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth keys:", err)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "voiceauth keys %s: %v\n", args[0], err)
		return 1
	}
	switch args[0] {
	case "generate":
		s, created, err := app.LoadSecrets(cfg.SecretsFile, true)
		if err != nil {
			return fail(err)
		}
		if !created {
			fmt.Fprintf(stdout, "an identity key already exists in %s (use `voiceauth keys rotate` to replace it)\n", cfg.SecretsFile)
		}
		return showKey(stdout, s)
	case "show":
		s, _, err := app.LoadSecrets(cfg.SecretsFile, false)
		if err != nil {
			return fail(err)
		}
		return showKey(stdout, s)
	case "rotate":
		s, _, err := app.LoadSecrets(cfg.SecretsFile, false)
		if err != nil {
			return fail(err)
		}
		next, err := mcpclient.GenerateIdentityKey()
		if err != nil {
			return fail(err)
		}
		rec, err := mcpclient.SignRotation(s.MCPIdentityKey, next, time.Now())
		if err != nil {
			return fail(err)
		}
		raw, err := json.Marshal(rec)
		if err != nil {
			return fail(err)
		}
		if err := app.AppendAttestation(cfg.DataDir, raw); err != nil {
			return fail(err)
		}
		s.MCPIdentityKey = next
		if err := s.Save(cfg.SecretsFile); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "rotated: %s replaces %s; the rotation record is published with the server's identity\n", rec.ReplacementKeyID, rec.RevokedKeyID)
		return showKey(stdout, s)
	case "sign-tools":
		s, _, err := app.LoadSecrets(cfg.SecretsFile, false)
		if err != nil {
			return fail(err)
		}
		tools, err := app.SignedTools(s.MCPIdentityKey, time.Now())
		if err != nil {
			return fail(err)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(tools); err != nil {
			return fail(err)
		}
		return 0
	}
	fmt.Fprintf(stderr, "voiceauth keys: unknown subcommand %q\n", args[0])
	return 2
}

func showKey(w io.Writer, s *app.Secrets) int {
	pub, err := mcpclient.PublicJWK(s.MCPIdentityKey)
	if err != nil {
		fmt.Fprintln(w, "error:", err)
		return 1
	}
	tp, _ := mcpclient.Thumbprint(s.MCPIdentityKey)
	fmt.Fprintf(w, "MCP server identity (Ed25519)\n  kid         %s\n  thumbprint  %s\n  public JWK  %s\n", s.MCPIdentityKey.KeyID, tp, pub)
	return 0
}
