package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/session"
)

// lockouts lets an operator see and lift KBA locks. Listing reads the audit
// trail (pseudonymous, no PHI); clearing is itself audited.
func lockouts(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: voiceauth lockouts list | clear --patient ID | clear --number E164")
		return 2
	}
	fs := flag.NewFlagSet("lockouts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir, store, secretsFile := storeFlags(fs)
	patient := fs.String("patient", "", "patient id (e.g. pt-0001)")
	number := fs.String("number", "", "caller number, E.164")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	ctx := context.Background()
	cfg := app.Config{DataDir: *dataDir, Store: *store, SecretsFile: *secretsFile}
	switch args[0] {
	case "list":
		st, _, err := app.OpenStore(ctx, cfg)
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth lockouts:", err)
			return 1
		}
		defer st.Close()
		evs, err := st.ListAudit(ctx, session.AuditFilter{From: time.Now().Add(-31 * 24 * time.Hour)})
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth lockouts:", err)
			return 1
		}
		for _, l := range app.ActiveLocks(evs, time.Now()) {
			fmt.Fprintf(stdout, "%-14s %-26s since %s  until %s\n", l.Kind, l.Who, l.Since.UTC().Format(time.RFC3339), l.Until)
		}
		return 0
	case "clear":
		who := *patient
		if *number != "" {
			who = *number
		}
		if (*patient == "") == (*number == "") {
			fmt.Fprintln(stderr, "voiceauth lockouts clear: give exactly one of --patient or --number")
			return 2
		}
		if err := app.ClearLock(ctx, cfg, who); err != nil {
			fmt.Fprintln(stderr, "voiceauth lockouts clear:", err)
			return 1
		}
		fmt.Fprintln(stdout, "cleared (audited as lock.cleared)")
		return 0
	}
	fmt.Fprintf(stderr, "voiceauth lockouts: unknown subcommand %q\n", args[0])
	return 2
}
