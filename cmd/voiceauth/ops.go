package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/session"
)

func otpOutbox(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("otp-outbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := opConfig(fs, args)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth otp-outbox:", err)
		return 2
	}
	phone := fs.Arg(0)
	path := app.OutboxPath(cfg.DataDir)
	if phone == "" {
		fmt.Fprintf(stderr, "usage: voiceauth otp-outbox [--data-dir DIR] PHONE   (outbox: %s)\n", path)
		return 2
	}
	code, err := authserver.LatestOutboxCode(path, phone)
	if err != nil {
		fmt.Fprintf(stderr, "voiceauth otp-outbox: no code for %s in %s: %v\n", phone, path, err)
		return 1
	}
	fmt.Fprintf(stdout, "latest one-time code texted to %s:\n%s\n", phone, code)
	return 0
}

func secrets(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: voiceauth secrets init|rotate [--data-dir DIR] [--secrets-file FILE] [--what sealing|signing]")
		return 2
	}
	fs := flag.NewFlagSet("secrets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	what := fs.String("what", "sealing", "rotate: sealing (re-seal stored data) or signing (AS token keys)")
	wait := fs.Duration("reload-wait", app.RotationStepWait, "rotate: pause between steps so every running instance reloads the file (they look every 2s, or at once on SIGHUP)")
	cfg, err := opConfig(fs, args[1:])
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth secrets:", err)
		return 2
	}
	switch args[0] {
	case "init":
		_, created, err := app.LoadSecrets(cfg.SecretsFile, true)
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth secrets init:", err)
			return 1
		}
		if created {
			fmt.Fprintf(stdout, "created %s (mode 0600); give every instance sharing a store this same file\n", cfg.SecretsFile)
		} else {
			fmt.Fprintf(stdout, "%s already exists; nothing changed\n", cfg.SecretsFile)
		}
		return 0
	case "rotate":
		return rotate(cfg, *what, *wait, stdout, stderr)
	}
	fmt.Fprintf(stderr, "voiceauth secrets: unknown subcommand %q\n", args[0])
	return 2
}

func audit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: voiceauth audit verify|export [--patient ID] [--from YYYY-MM-DD] [--to YYYY-MM-DD]")
		return 2
	}
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	patient := fs.String("patient", "", "patient id (export)")
	from := fs.String("from", "", "first day, YYYY-MM-DD (export)")
	to := fs.String("to", "", "last day, YYYY-MM-DD (export)")
	cfg, err := opConfig(fs, args[1:])
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth audit:", err)
		return 2
	}
	ctx := context.Background()
	st, sec, err := app.OpenStore(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth audit:", err)
		return 1
	}
	defer st.Close()
	switch args[0] {
	case "verify":
		rep, err := st.VerifyAudit(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth audit verify:", err)
			return 1
		}
		if rep.Problem != "" {
			fmt.Fprintf(stdout, "audit trail BROKEN at record %d: %s (%d records, %d purge checkpoints)\n", rep.FirstBad, rep.Problem, rep.Records, rep.Checkpoints)
			return 1
		}
		fmt.Fprintf(stdout, "audit trail intact: %d records, %d purge checkpoints\n", rep.Records, rep.Checkpoints)
		return 0
	case "export":
		f := session.AuditFilter{}
		if *patient != "" {
			f.Subject = app.PatientPseudonym(sec, *patient)
		}
		if f.From, err = parseDay(*from, false); err != nil {
			fmt.Fprintln(stderr, "voiceauth audit export: --from:", err)
			return 2
		}
		if f.To, err = parseDay(*to, true); err != nil {
			fmt.Fprintln(stderr, "voiceauth audit export: --to:", err)
			return 2
		}
		evs, err := st.ListAudit(ctx, f)
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth audit export:", err)
			return 1
		}
		enc := json.NewEncoder(stdout)
		for _, e := range evs {
			enc.Encode(map[string]any{"seq": e.Seq, "time": e.Time.UTC().Format(time.RFC3339), "type": e.Type,
				"actor": e.Actor, "subject": e.Subject, "call_ref": e.CallRef, "outcome": e.Outcome, "detail": e.Detail})
		}
		return 0
	}
	fmt.Fprintf(stderr, "voiceauth audit: unknown subcommand %q\n", args[0])
	return 2
}

func parseDay(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return t, errors.New("want YYYY-MM-DD")
	}
	if end {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return t, nil
}

// rotate changes a key while instances are serving, in steps that each
// running instance picks up (file watch or SIGHUP) before the next step
// relies on it: first the new key is only known (it can open/verify), then it
// is used (seals/signs), and only then is old data re-sealed. A reader never
// meets a key it has not loaded.
func rotate(cfg app.Config, what string, wait time.Duration, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "voiceauth secrets rotate:", err)
		return 1
	}
	s, _, err := app.LoadSecrets(cfg.SecretsFile, false)
	if err != nil {
		return fail(err)
	}
	step := func(msg string) error {
		if err := s.Save(cfg.SecretsFile); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s; waiting %s for running instances to reload %s\n", msg, wait, cfg.SecretsFile)
		time.Sleep(wait)
		return nil
	}
	switch what {
	case "signing":
		kid, err := s.AddSigningKey()
		if err != nil {
			return fail(err)
		}
		if err := step("new signing key " + kid + " published"); err != nil {
			return fail(err)
		}
		if err := s.PromoteSigningKey(kid); err != nil {
			return fail(err)
		}
		if err := step("signing key " + kid + " now signs; the previous key stays published"); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "signing key rotated; no restart needed")
		return 0
	case "sealing":
		v := s.AddSealingKey()
		if err := step(fmt.Sprintf("sealing key %d added (readable, not yet used)", v)); err != nil {
			return fail(err)
		}
		s.SealingCurrent = v
		if err := step(fmt.Sprintf("sealing key %d is current", v)); err != nil {
			return fail(err)
		}
		ctx := context.Background()
		st, _, err := app.OpenStore(ctx, cfg)
		if err != nil {
			return fail(err)
		}
		defer st.Close()
		rw, ok := st.(session.Rewrapper)
		if !ok {
			return fail(errors.New("this store cannot re-seal"))
		}
		n, err := rw.Rewrap(ctx)
		if err != nil {
			return fail(fmt.Errorf("re-sealing: %w", err))
		}
		fmt.Fprintf(stdout, "sealing key %d is current; %d stored values re-sealed; no restart needed\n", v, n)
		return 0
	}
	fmt.Fprintf(stderr, "voiceauth secrets rotate: --what must be sealing or signing\n")
	return 2
}
