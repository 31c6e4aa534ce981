package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
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
	patient := fs.String("patient", "", "patient id (e.g. pt-0001)")
	number := fs.String("number", "", "caller number, E.164")
	cfg, err := opConfig(fs, args[1:])
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth lockouts:", err)
		return 2
	}
	ctx := context.Background()
	switch args[0] {
	case "list":
		locks, err := app.ListLocks(ctx, cfg, time.Now())
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth lockouts:", err)
			return 1
		}
		if len(locks) == 0 {
			fmt.Fprintln(stdout, "no active locks")
		}
		for _, l := range locks {
			until := "unknown"
			if !l.Until.IsZero() {
				until = l.Until.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%-8s %-16s since %s  until %s\n", l.Kind, l.Who, l.Since.UTC().Format(time.RFC3339), until)
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
