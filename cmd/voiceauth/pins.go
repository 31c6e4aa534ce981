package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/session"
)

const pinsUsage = `usage: voiceauth pins list [store flags]
       voiceauth pins clear --server URL [store flags]

The voice service pins each MCP server's Ed25519 identity key on first use and
refuses a different key unless the pinned key signed the hand-over. "list"
shows the pins; "clear" forgets one server's pin (audited as mcp.pin.cleared),
so the next call pins whatever key that server then presents: clear only after
confirming the server's new key out of band.

Flags:
`

// pins lets an operator see and clear MCP server identity pins.
func pins(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pins", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), pinsUsage)
		fs.PrintDefaults()
	}
	dataDir, store, secretsFile := storeFlags(fs)
	server := fs.String("server", "", "clear: the MCP server URL exactly as pinned (see list)")
	if len(args) == 0 {
		fs.Usage()
		return 2
	}
	sub := args[0]
	switch sub {
	case "-h", "--help", "-help", "help":
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	case "list", "clear":
	default:
		fmt.Fprintf(stderr, "voiceauth pins: unknown subcommand %q\n", sub)
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "voiceauth pins %s: unexpected argument %q\n", sub, fs.Arg(0))
		return 2
	}
	if sub == "clear" && *server == "" {
		fmt.Fprintln(stderr, "voiceauth pins clear: --server URL is required")
		return 2
	}
	ctx := context.Background()
	st, _, err := app.OpenStore(ctx, app.Config{DataDir: *dataDir, Store: *store, SecretsFile: *secretsFile})
	if err != nil {
		fmt.Fprintf(stderr, "voiceauth pins %s: %v\n", sub, err)
		return 1
	}
	defer st.Close()
	if sub == "list" {
		return pinsList(ctx, st, stdout, stderr)
	}
	return pinsClear(ctx, st, *server, stdout, stderr)
}

func pinsList(ctx context.Context, st session.Store, stdout, stderr io.Writer) int {
	ps, err := st.ListPins(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth pins list:", err)
		return 1
	}
	if len(ps) == 0 {
		fmt.Fprintln(stdout, "no MCP server keys are pinned")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tKEY ID\tTHUMBPRINT (RFC 7638)\tPINNED AT\tUPDATED AT")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Server, p.KeyID, p.Thumbprint,
			p.PinnedAt.UTC().Format(time.RFC3339), p.UpdatedAt.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintln(stderr, "voiceauth pins list:", err)
		return 1
	}
	return 0
}

func pinsClear(ctx context.Context, st session.Store, server string, stdout, stderr io.Writer) int {
	p, err := st.GetPin(ctx, server)
	if err == nil {
		err = st.DeletePin(ctx, server, &session.AuditEvent{
			Type: "mcp.pin.cleared", Actor: "operator", Outcome: "cleared",
			Detail: map[string]string{"server": server, "kid": p.KeyID, "thumbprint": p.Thumbprint},
		})
	}
	if errors.Is(err, session.ErrNotFound) {
		fmt.Fprintf(stderr, "voiceauth pins clear: no pin for %q (`voiceauth pins list` shows the pinned servers)\n", server)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth pins clear:", err)
		return 1
	}
	fmt.Fprintf(stdout, "cleared the pin of %s (key %s, thumbprint %s); the next call pins the key it then presents\n",
		server, p.KeyID, p.Thumbprint)
	return 0
}
