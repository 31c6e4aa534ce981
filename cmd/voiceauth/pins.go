package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/cli"
	"github.com/voiceauth/voiceauth/session"
)

var pinsCmd = cli.Group{Name: "pins", Summary: `The voice service pins each MCP server's Ed25519 identity key on first use and refuses a different key
unless the pinned key signed the hand-over. "clear" forgets one server's pin (audited as mcp.pin.cleared), so the next
call pins whatever key that server then presents: clear only after confirming the server's new key out of band.`,
	Actions: []cli.Action{
		{Name: "list", Args: "[flags]", Summary: "show every pinned server, key id, thumbprint and when it was pinned"},
		{Name: "clear", Args: "--server URL [flags]", Summary: "forget one server's pinned key (audited)"},
	}}

// pins lets an operator see and clear MCP server identity pins.
func pins(args []string, stdout, stderr io.Writer) int {
	a, rest, code, ok := pinsCmd.Dispatch(args, stdout, stderr)
	if !ok {
		return code
	}
	sub := a.Name
	fs := pinsCmd.FlagSet(a)
	server := new(string)
	if sub == "clear" {
		server = fs.String("server", "", "the MCP server URL exactly as pinned (see list)")
	}
	cfg, code, ok := opFlags(fs, rest, "pins "+sub, stdout, stderr)
	if !ok {
		return code
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
	st, _, err := app.OpenStore(ctx, cfg)
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
