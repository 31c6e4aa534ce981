package authserver

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestImporterCountsAndHashes: new and re-imported ids are told apart (also
// when an id repeats inside one batch), aliases are matchable, and what is
// stored is the peppered HMAC, not the birthdate.
func TestImporterCountsAndHashes(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	st := openStore(t, clk.Now)
	im := &Importer{Store: st, Pepper: testPepper, BatchSize: 3}
	add := func(id, name, dob string, aliases ...string) {
		t.Helper()
		if err := im.Add(ctx, ImportedPatient{ID: id, Name: name, Aliases: aliases, Birthdate: dob, SSNLast4: "1234", Phone: "+15555550170", LineType: "mobile"}); err != nil {
			t.Fatal(err)
		}
	}
	add("e1", "Ana Lima", "1970-01-02", "Ana Souza")
	add("e2", "Bo Chen", "1971-01-02")
	add("e1", "Ana Lima", "1970-01-03", "Ana Souza") // same id in the same batch: the later one wins, counted as an update
	add("e3", "Cy Park", "1972-01-02")
	if err := im.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if im.Inserted != 3 || im.Updated != 1 {
		t.Fatalf("inserted %d updated %d, want 3 and 1", im.Inserted, im.Updated)
	}
	p, err := st.GetPatient(ctx, "e1")
	if err != nil || !bytes.Equal(p.DOBHash, fieldHash(im.mac, "e1", fieldDOB, "1970-01-03")) || bytes.Contains(p.DOBHash, []byte("1970")) {
		t.Fatalf("e1 = %+v, %v", p, err)
	}
	if got, _ := st.FindPatients(ctx, newDirectory(testPepper).nameKeys("Ana Souza")); len(got) != 1 || got[0].ID != "e1" {
		t.Fatalf("alias lookup = %+v", got)
	}
	// Directory keys are keyed, never the plaintext name.
	if got, _ := st.FindPatients(ctx, NameKeys("Ana Souza")); len(got) != 0 {
		t.Fatalf("plaintext name key found %+v", got)
	}
	dry := &Importer{Store: st, Pepper: testPepper, DryRun: true}
	for _, id := range []string{"e2", "e9", "e9"} {
		if err := dry.Add(ctx, ImportedPatient{ID: id, Name: "X Y", Birthdate: "1970-01-01", SSNLast4: "0000"}); err != nil {
			t.Fatal(err)
		}
	}
	dry.Flush(ctx)
	if dry.Inserted != 1 || dry.Updated != 2 {
		t.Fatalf("dry run inserted %d updated %d", dry.Inserted, dry.Updated)
	}
	if n, _ := st.CountPatients(ctx); n != 3 {
		t.Fatalf("a dry run wrote: %d patients", n)
	}
	for _, bad := range []ImportedPatient{{ID: "x", Name: "A", Birthdate: "1970-13-01", SSNLast4: "1234"}, {ID: "x", Name: "A", Birthdate: "1970-01-01", SSNLast4: "12"}, {Name: "A", Birthdate: "1970-01-01", SSNLast4: "1234"}} {
		if err := im.Add(ctx, bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if err := (&Importer{Store: st}).Add(ctx, ImportedPatient{ID: "x"}); err == nil {
		t.Error("an importer without the pepper accepted a patient")
	}
}
