package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// runKeyedDirectorySuite is the part of the store contract behind issue 14:
// the plaintext → keyed directory-key migration and the RFC 8693 jti table.
// Both backends run it through runStoreSuite.
func runKeyedDirectorySuite(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("RekeyPatients", func(t *testing.T) {
		st := open(t)
		s := internals(t, st)
		// Rows as a pre-migration AS wrote them: plaintext normalized names.
		must(t, st.UpsertPatients(ctx, []Patient{
			{ID: "pt-1", Name: "Maria Garcia", Phone: "+15555550101", NameKeys: []string{"n:garcia maria", "p:grs mr"}},
			{ID: "pt-2", Name: "Ana Keyed", Phone: "+15555550102", NameKeys: []string{"k1:already"}},
		}))
		rev0, err := s.patientsRev(ctx)
		must(t, err)
		if got, _ := st.FindPatients(ctx, []string{"n:garcia maria"}); len(got) != 1 {
			t.Fatalf("plaintext key not found before the migration: %v", got)
		}
		var seen []string
		keys := func(p Patient) []string {
			seen = append(seen, p.ID)
			return []string{"k1:name|" + p.Name, "k1:phone|" + p.Phone}
		}
		n, err := st.RekeyPatients(ctx, "k1:", keys)
		if err != nil || n != 1 || !slices.Equal(seen, []string{"pt-1"}) {
			t.Fatalf("RekeyPatients = %d, %v (called for %v); want 1 patient, pt-1", n, err, seen)
		}
		// No plaintext name is left anywhere in the key table.
		dump := string(dumpTable(t, s, "patient_name_keys"))
		if strings.Contains(dump, "garcia") || strings.Contains(dump, "n:") || strings.Contains(dump, "p:") {
			t.Fatalf("plaintext directory key left after the migration: %q", dump)
		}
		if got, _ := st.FindPatients(ctx, []string{"n:garcia maria"}); len(got) != 0 {
			t.Fatalf("plaintext key still matches: %v", got)
		}
		got, err := st.FindPatients(ctx, []string{"k1:phone|+15555550101"})
		if err != nil || len(got) != 1 || got[0].ID != "pt-1" || got[0].Name != "Maria Garcia" {
			t.Fatalf("keyed lookup after the migration = %+v, %v", got, err)
		}
		if got, _ := st.FindPatients(ctx, []string{"k1:already"}); len(got) != 1 || got[0].ID != "pt-2" {
			t.Fatalf("an already keyed patient was touched: %+v", got)
		}
		if rev1, _ := s.patientsRev(ctx); rev1 == rev0 {
			t.Fatal("the migration did not bump the directory revision (stale lookup caches)")
		}
		// Idempotent: nothing left to do.
		seen = nil
		if n, err := st.RekeyPatients(ctx, "k1:", keys); err != nil || n != 0 || len(seen) != 0 {
			t.Fatalf("second run = %d, %v (%v)", n, err, seen)
		}
		// A key function that returns an unkeyed key is refused and changes nothing.
		must(t, st.UpsertPatients(ctx, []Patient{{ID: "pt-3", Name: "Plain", NameKeys: []string{"n:plain"}}}))
		if _, err := st.RekeyPatients(ctx, "k1:", func(Patient) []string { return []string{"n:plain"} }); err == nil {
			t.Fatal("unkeyed output accepted")
		}
		if got, _ := st.FindPatients(ctx, []string{"n:plain"}); len(got) != 1 {
			t.Fatal("a failed migration lost a patient's keys")
		}
	})

	t.Run("UseJTI", func(t *testing.T) {
		st := open(t)
		clk := newFakeClock()
		internals(t, st).now = clk.Now
		exp := clk.Now().Add(10 * time.Minute)
		must(t, st.UseJTI(ctx, "iss|jti-1", exp))
		if err := st.UseJTI(ctx, "iss|jti-1", exp); !errors.Is(err, ErrExists) {
			t.Fatalf("replay: %v, want ErrExists", err)
		}
		// A later exp does not launder a replay.
		if err := st.UseJTI(ctx, "iss|jti-1", exp.Add(time.Hour)); !errors.Is(err, ErrExists) {
			t.Fatalf("replay with a later exp: %v", err)
		}
		must(t, st.UseJTI(ctx, "iss|jti-2", exp))
		if err := st.UseJTI(ctx, "", exp); err == nil {
			t.Fatal("empty key accepted")
		}
		// Kept until the token's exp, then swept.
		clk.Advance(10*time.Minute - time.Second)
		if err := st.UseJTI(ctx, "iss|jti-1", exp); !errors.Is(err, ErrExists) {
			t.Fatalf("forgotten before exp: %v", err)
		}
		clk.Advance(2 * time.Second)
		if n, err := st.SweepRecords(ctx, clk.Now()); err != nil || n != 2 {
			t.Fatalf("sweep = %d, %v; want the 2 expired jtis", n, err)
		}
		must(t, st.UseJTI(ctx, "iss|jti-1", clk.Now().Add(time.Minute)))
	})
}
