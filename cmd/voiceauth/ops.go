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

// storeFlags are the flags operator commands that open the store share with serve.
func storeFlags(fs *flag.FlagSet) (dataDir, store, secretsFile *string) {
	dataDir, secretsFile = dataFlags(fs)
	store = fs.String("store", os.Getenv("VOICEAUTH_STORE"), "SQLite path or postgres:// DSN (default <data-dir>/voiceauth.db)")
	return
}

// dataFlags are the flags of commands that only read the data dir and secrets file.
func dataFlags(fs *flag.FlagSet) (dataDir, secretsFile *string) {
	dataDir = fs.String("data-dir", envOr("VOICEAUTH_DATA_DIR", "./data"), "data directory")
	secretsFile = fs.String("secrets-file", os.Getenv("VOICEAUTH_SECRETS_FILE"), "secrets file (default <data-dir>/secrets.json)")
	return
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func otpOutbox(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("otp-outbox [flags] PHONE", "Print the latest one-time code the embedded default \"texted\" to PHONE (the dev SMS outbox).")
	dataDir := fs.String("data-dir", envOr("VOICEAUTH_DATA_DIR", "./data"), "data directory")
	if code, ok := cli.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	phone := fs.Arg(0)
	path := app.OutboxPath(*dataDir)
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
	dataDir, store, secretsFile := storeFlags(fs)
	what := new(string)
	if a.Name == "rotate" {
		what = fs.String("what", "sealing", "sealing (re-seal stored data), signing (AS token keys) or audit (audit-chain HMAC key)")
	}
	if code, ok := cli.Parse(fs, rest, stdout, stderr); !ok {
		return code
	}
	cfg := app.Defaults(app.Config{DataDir: *dataDir, SecretsFile: *secretsFile, Store: *store})
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
		s, _, err := app.LoadSecrets(cfg.SecretsFile, false)
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth secrets rotate:", err)
			return 1
		}
		switch *what {
		case "signing":
			if err := s.RotateSigningKey(); err != nil {
				fmt.Fprintln(stderr, "voiceauth secrets rotate:", err)
				return 1
			}
		case "audit":
			s.RotateAuditKey()
		case "sealing":
			v := s.RotateSealingKey()
			if err := s.Save(cfg.SecretsFile); err != nil {
				fmt.Fprintln(stderr, "voiceauth secrets rotate:", err)
				return 1
			}
			ctx := context.Background()
			st, _, err := app.OpenStore(ctx, cfg)
			if err != nil {
				fmt.Fprintln(stderr, "voiceauth secrets rotate:", err)
				return 1
			}
			defer st.Close()
			rw, ok := st.(session.Rewrapper)
			if !ok {
				fmt.Fprintln(stderr, "voiceauth secrets rotate: this store cannot re-seal")
				return 1
			}
			n, err := rw.Rewrap(ctx)
			if err != nil {
				fmt.Fprintln(stderr, "voiceauth secrets rotate: re-sealing:", err)
				return 1
			}
			fmt.Fprintf(stdout, "sealing key %d is current; %d stored values re-sealed\n", v, n)
			return 0
		default:
			fmt.Fprintf(stderr, "voiceauth secrets rotate: --what must be sealing, signing or audit\n")
			return 2
		}
		if err := s.Save(cfg.SecretsFile); err != nil {
			fmt.Fprintln(stderr, "voiceauth secrets rotate:", err)
			return 1
		}
		fmt.Fprintf(stdout, "rotated the %s key in %s; restart every instance\n", *what, cfg.SecretsFile)
		return 0
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
	dataDir, store, secretsFile := storeFlags(fs)
	patient, from, to, checkpoint := new(string), new(string), new(string), new(string)
	switch a.Name {
	case "export":
		patient = fs.String("patient", "", "only this patient's records (patient id, e.g. pt-0001)")
		from = fs.String("from", "", "first day, YYYY-MM-DD")
		to = fs.String("to", "", "last day, YYYY-MM-DD")
	case "verify":
		checkpoint = fs.String("checkpoint", "", "signed checkpoint from `audit anchor` to check the chain against")
	}
	if code, ok := cli.Parse(fs, rest, stdout, stderr); !ok {
		return code
	}
	ctx := context.Background()
	st, sec, err := app.OpenStore(ctx, app.Config{DataDir: *dataDir, Store: *store, SecretsFile: *secretsFile})
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
