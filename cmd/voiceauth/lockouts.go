package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/cli"
)

// lockouts lets an operator see and lift KBA locks. Listing reads the audit
// trail (pseudonymous, no PHI); clearing is itself audited.
var lockoutsCmd = cli.Group{Name: "lockouts", Summary: "See and lift KBA lockouts (listing reads the pseudonymous audit trail; clearing is audited).",
	Actions: []cli.Action{
		{Name: "list", Args: "[flags]", Summary: "list the identities and numbers locked now"},
		{Name: "clear", Args: "--patient ID | --number E164 [flags]", Summary: "lift the lock on one patient or one caller number"},
	}}

func lockouts(args []string, stdout, stderr io.Writer) int {
	a, rest, code, ok := lockoutsCmd.Dispatch(args, stdout, stderr)
	if !ok {
		return code
	}
	fs := lockoutsCmd.FlagSet(a)
	patient, number := new(string), new(string)
	if a.Name == "clear" {
		patient = fs.String("patient", "", "patient id (e.g. pt-0001)")
		number = fs.String("number", "", "caller number, E.164")
	}
	cfg, code, ok := opFlags(fs, rest, "lockouts "+a.Name, stdout, stderr)
	if !ok {
		return code
	}
	ctx := context.Background()
	switch a.Name {
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
	return 2 // unreachable: Dispatch knows the actions
}
