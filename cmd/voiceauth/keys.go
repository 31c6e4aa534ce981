package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/cli"
	"github.com/voiceauth/voiceauth/mcpidentity"
)

// keys manages the demo MCP server's Ed25519 identity, kept in the secrets
// file; rotation records go to <data-dir>/mcp-identity-attestations.json,
// which the server publishes so that pinned clients accept the new key.
var keysCmd = cli.Group{Name: "keys", Summary: "Manage the demo MCP server's Ed25519 identity key (kept in the secrets file).",
	Actions: []cli.Action{
		{Name: "generate", Args: "[flags]", Summary: "create the identity key if the secrets file has none, and show it"},
		{Name: "show", Args: "[flags]", Summary: "show the identity key's kid, thumbprint and public JWK"},
		{Name: "rotate", Args: "[flags]", Summary: "replace the key and publish a rotation record signed by the old one"},
		{Name: "sign-tools", Args: "[flags]", Summary: "print the demo tool definitions signed with the identity key (JSON)"},
	}}

func keys(args []string, stdout, stderr io.Writer) int {
	a, rest, code, ok := keysCmd.Dispatch(args, stdout, stderr)
	if !ok {
		return code
	}
	fs := keysCmd.FlagSet(a)
	cfg, code, ok := opFlags(fs, rest, "keys "+a.Name, stdout, stderr)
	if !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "voiceauth keys %s: %v\n", a.Name, err)
		return 1
	}
	switch a.Name {
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
		next, err := mcpidentity.GenerateKey()
		if err != nil {
			return fail(err)
		}
		rec, err := mcpidentity.SignRotation(s.MCPIdentityKey, next, time.Now())
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
	return 2 // unreachable: Dispatch knows the actions
}

func showKey(w io.Writer, s *app.Secrets) int {
	pub, err := mcpidentity.PublicJWK(s.MCPIdentityKey)
	if err != nil {
		fmt.Fprintln(w, "error:", err)
		return 1
	}
	tp, _ := mcpidentity.Thumbprint(s.MCPIdentityKey)
	fmt.Fprintf(w, "MCP server identity (Ed25519)\n  kid         %s\n  thumbprint  %s\n  public JWK  %s\n", s.MCPIdentityKey.KeyID, tp, pub)
	return 0
}
