package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/internal/cli"
	"github.com/voiceauth/voiceauth/session"
)

// storeFlags are the store flags of the registry and directory commands
// (clients, patients, dev-token), which take them without serve's others.
func storeFlags(fs *flag.FlagSet) (dataDir, store, secretsFile *string) {
	dataDir = fs.String("data-dir", envOr("VOICEAUTH_DATA_DIR", "./data"), "data directory")
	store = fs.String("store", os.Getenv("VOICEAUTH_STORE"), "SQLite path or postgres:// DSN (default <data-dir>/voiceauth.db)")
	secretsFile = fs.String("secrets-file", os.Getenv("VOICEAUTH_SECRETS_FILE"), "secrets file (default <data-dir>/secrets.json)")
	return
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// opFlags parses an operator command's flags through serve's configuration
// path (flags > env > --config > defaults, every serve flag accepted). ok is
// false when the command must return code at once: 0 after -h/--help (usage
// on stdout), 2 after a bad flag or configuration.
func opFlags(fs *flag.FlagSet, args []string, name string, stdout, stderr io.Writer) (cfg app.Config, code int, ok bool) {
	cli.Capture(fs)
	cfg, err := opConfig(fs, args)
	if err != nil {
		if code, _ := cli.Handle(fs, err, stdout, stderr); code == 0 {
			return cfg, 0, false
		}
		fmt.Fprintf(stderr, "voiceauth %s: %v\n", name, err)
		return cfg, 2, false
	}
	cli.Handle(fs, nil, stdout, stderr)
	return cfg, 0, true
}

func otpOutbox(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("otp-outbox [flags] PHONE", "Print the latest one-time code the embedded default \"texted\" to PHONE (the dev SMS outbox).")
	cfg, rc, ok := opFlags(fs, args, "otp-outbox", stdout, stderr)
	if !ok {
		return rc
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

var secretsCmd = cli.Group{Name: "secrets", Summary: "Create or rotate the secrets file (pepper, sealing, signing and identity keys) every instance shares.",
	Actions: []cli.Action{
		{Name: "init", Args: "[flags]", Summary: "create the secrets file, or add the keys an older file lacks"},
		{Name: "rotate", Args: "[--what sealing|signing|audit] [flags]", Summary: "add a new sealing key (and re-seal stored data), AS signing key or audit-chain key"},
	}}

func secrets(args []string, stdout, stderr io.Writer) int {
	a, rest, code, ok := secretsCmd.Dispatch(args, stdout, stderr)
	if !ok {
		return code
	}
	fs := secretsCmd.FlagSet(a)
	what, wait := new(string), new(time.Duration)
	if a.Name == "rotate" {
		what = fs.String("what", "sealing", "sealing (re-seal stored data), signing (AS token keys) or audit (audit-chain HMAC key)")
		wait = fs.Duration("reload-wait", app.RotationStepWait, "pause between steps so every running instance reloads the file (they look every 2s, or at once on SIGHUP)")
	}
	cfg, code, ok := opFlags(fs, rest, "secrets "+a.Name, stdout, stderr)
	if !ok {
		return code
	}
	switch a.Name {
	case "init":
		before, _ := os.ReadFile(cfg.SecretsFile)
		_, created, err := app.LoadSecrets(cfg.SecretsFile, true)
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth secrets init:", err)
			return 1
		}
		after, _ := os.ReadFile(cfg.SecretsFile)
		switch {
		case created:
			fmt.Fprintf(stdout, "created %s (mode 0600); give every instance sharing a store this same file\n", cfg.SecretsFile)
		case string(before) != string(after):
			fmt.Fprintf(stdout, "added the missing keys to %s; give every instance sharing a store this same file\n", cfg.SecretsFile)
		default:
			fmt.Fprintf(stdout, "%s already exists; nothing changed\n", cfg.SecretsFile)
		}
		return 0
	case "rotate":
		return rotate(cfg, *what, *wait, stdout, stderr)
	}
	return 2 // unreachable: Dispatch knows the actions
}

var auditCmd = cli.Group{Name: "audit", Summary: "Check, anchor or export the HMAC-chained audit trail.",
	Actions: []cli.Action{
		{Name: "verify", Args: "[--checkpoint FILE] [flags]", Summary: "check every record's chain link, the purge checkpoints and optionally a signed checkpoint"},
		{Name: "anchor", Args: "[flags]", Summary: "print a signed checkpoint of the chain's head, to store somewhere else"},
		{Name: "export", Args: "[--patient ID] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [flags]", Summary: "print audit records as JSON lines"},
	}}

func audit(args []string, stdout, stderr io.Writer) int {
	a, rest, code, ok := auditCmd.Dispatch(args, stdout, stderr)
	if !ok {
		return code
	}
	fs := auditCmd.FlagSet(a)
	patient, from, to, checkpoint := new(string), new(string), new(string), new(string)
	switch a.Name {
	case "export":
		patient = fs.String("patient", "", "only this patient's records (patient id, e.g. pt-0001)")
		from = fs.String("from", "", "first day, YYYY-MM-DD")
		to = fs.String("to", "", "last day, YYYY-MM-DD")
	case "verify":
		checkpoint = fs.String("checkpoint", "", "signed checkpoint from `audit anchor` to check the chain against")
	}
	cfg, code, ok := opFlags(fs, rest, "audit "+a.Name, stdout, stderr)
	if !ok {
		return code
	}
	ctx := context.Background()
	st, sec, err := app.OpenStore(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth audit:", err)
		return 1
	}
	defer st.Close()
	switch a.Name {
	case "anchor":
		return auditAnchor(ctx, st, sec, stdout, stderr)
	case "verify":
		if *checkpoint != "" {
			return auditVerifyCheckpoint(ctx, st, sec, *checkpoint, stdout, stderr)
		}
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
	return 2 // unreachable: Dispatch knows the actions
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
	case "audit":
		// Records carry their key's version: old records keep verifying, and
		// running instances chain new records under the new key once they
		// reload the file.
		v := s.RotateAuditKey()
		if err := step(fmt.Sprintf("audit key %d is current", v)); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "audit key %d is current; no restart needed\n", v)
		return 0
	}
	fmt.Fprintf(stderr, "voiceauth secrets rotate: --what must be sealing, signing or audit\n")
	return 2
}
