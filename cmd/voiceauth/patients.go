package main

import (
	"context"
	"fmt"
	"io"

	"github.com/voiceauth/voiceauth/internal/cli"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/fhirimport"
	"github.com/voiceauth/voiceauth/internal/app"
)

const patientsUsage = `usage:
  voiceauth patients import [--data-dir DIR | --store DSN] [--dry-run] PATH...   FHIR R4 Patients: Bundle .json, Bulk Data .ndjson, or directories
  voiceauth patients count [--data-dir DIR | --store DSN]`

// progressEvery is how many resources pass between progress lines.
var progressEvery = 10000

// patients imports the EHR's patients (FHIR R4) into the directory the AS
// matches callers against, or counts them.
var patientsCmd = cli.Group{Name: "patients", Summary: "The patient directory the AS matches callers against.",
	Actions: []cli.Action{
		{Name: "import", Args: "[--dry-run] [flags] PATH...", Summary: "import FHIR R4 Patients: a Bundle .json, Bulk Data .ndjson, or directories of those"},
		{Name: "count", Args: "[flags]", Summary: "print how many patients the directory holds"},
	}}

func patients(args []string, stdout, stderr io.Writer) int {
	a, rest, code, ok := patientsCmd.Dispatch(args, stdout, stderr)
	if !ok {
		return code
	}
	args = append([]string{a.Name}, rest...)
	fs := patientsCmd.FlagSet(a)
	dataDir, store, secretsFile := storeFlags(fs)
	dryRun := new(bool)
	if a.Name == "import" {
		dryRun = fs.Bool("dry-run", false, "read and check everything, write nothing")
	}
	if code, ok := cli.Parse(fs, args[1:], stdout, stderr); !ok {
		return code
	}
	ctx := context.Background()
	cfg := app.Config{DataDir: *dataDir, Store: *store, SecretsFile: *secretsFile}
	switch args[0] {
	case "count":
		st, _, err := app.OpenStore(ctx, cfg)
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth patients count:", err)
			return 1
		}
		defer st.Close()
		n, err := st.CountPatients(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "voiceauth patients count:", err)
			return 1
		}
		fmt.Fprintln(stdout, n)
		return 0
	case "import":
	default:
		fmt.Fprintf(stderr, "voiceauth patients: unknown subcommand %q\n%s\n", args[0], patientsUsage)
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, patientsUsage)
		return 2
	}
	// Every path must be readable before anything is written.
	files, err := fhirimport.Files(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth patients import:", err)
		return 1
	}
	st, secrets, err := app.OpenStore(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth patients import:", err)
		return 1
	}
	defer st.Close()
	im := &authserver.Importer{Store: st, Pepper: secrets.Pepper, DryRun: *dryRun}
	read, skipped := 0, 0
	progress := func() {
		if read++; progressEvery > 0 && read%progressEvery == 0 {
			fmt.Fprintf(stderr, "… %d resources read (%d imported, %d updated, %d skipped so far)\n", read, im.Inserted, im.Updated, skipped)
		}
	}
	err = fhirimport.Walk(files, func(p fhirimport.Patient) error {
		progress()
		return im.Add(ctx, authserver.ImportedPatient{ID: p.ID, Name: p.Name, Aliases: p.Aliases, Birthdate: p.Birthdate,
			SSNLast4: p.SSNLast4, Phone: p.Phone, LineType: p.LineType})
	}, func(s fhirimport.Skip) {
		progress()
		skipped++
		fmt.Fprintln(stdout, "skipped", s)
	})
	if err == nil {
		err = im.Flush(ctx)
	}
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth patients import:", err)
		fmt.Fprintf(stdout, "stopped: imported %d, updated %d, skipped %d before the error\n", im.Inserted, im.Updated, skipped)
		return 1
	}
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing was written")
	}
	fmt.Fprintf(stdout, "imported %d, updated %d, skipped %d\n", im.Inserted, im.Updated, skipped)
	return 0
}
