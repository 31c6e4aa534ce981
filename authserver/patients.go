package authserver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/voiceauth/voiceauth/session"
)

// DemoPatient is a synthetic patient as a tester knows them (with the answers).
type DemoPatient struct {
	ID, Name, Birthdate, SSNLast4, Phone, LineType string
}

// DemoPatients are exactly the rows of DEMO-DATA.md, in table order.
func DemoPatients() []DemoPatient {
	return []DemoPatient{
		{"pt-0001", "Maria Garcia", "1980-03-03", "4567", "+15555550101", "mobile"},
		{"pt-0002", "James O'Brien", "1955-11-30", "0912", "+15555550102", "mobile"},
		{"pt-0003", "Nguyen Van An", "1992-07-14", "3321", "+15555550103", "mobile"},
		{"pt-0004", "John Smith", "1970-01-01", "1111", "+15555550104", "mobile"},
		{"pt-0005", "John Smith", "1970-01-01", "2222", "+15555550105", "mobile"},
		{"pt-0006", "Zoë Müller-Lüdenscheidt", "2001-12-25", "8080", "+15555550106", "mobile"},
		{"pt-0007", "Robert Brown", "1948-02-29", "5050", "+15555550107", "landline"},
	}
}

var genFirst = []string{"Aaliyah", "Benjamin", "Camila", "Dmitri", "Elena", "Farah", "Gustavo", "Hana", "Ibrahim", "Jade",
	"Kofi", "Lucia", "Mateo", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Samuel", "Tomas", "Uma", "Victor",
	"Wendy", "Ximena", "Yusuf", "Zara", "Andre", "Beatriz", "Chen", "Daniela", "Emeka", "Fatima", "Gabriel", "Helen",
	"Isaac", "Julia", "Kenji", "Leila", "Marco", "Noor"}

var genLast = []string{"Abara", "Bergstrom", "Castillo", "Dubois", "Eriksen", "Fontaine", "Gallagher", "Haddad", "Ivanova",
	"Jankowski", "Kowalczyk", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quintero", "Rasmussen",
	"Sandoval", "Takahashi", "Umarov", "Valdez", "Whitfield", "Xiong", "Yamamoto", "Zielinski", "Acosta", "Baptiste",
	"Cardenas", "Delacroix", "Esposito", "Ferreira", "Grimaldi", "Holloway", "Iglesias", "Jovanovic", "Kaminski",
	"Lombardi", "Mbeki", "Novak"}

// GeneratePatients returns n deterministic synthetic patients (fixed seed):
// ids pt-g000001…, numbers +1555600xxxx (n ≤ 10,000 keeps them unique), no
// name+DOB clash with DemoPatients and no two with the same name+DOB+SSN-4.
func GeneratePatients(n int) []DemoPatient {
	rng := rand.New(rand.NewPCG(20261125, 3))
	demo := map[string]bool{}
	for _, d := range DemoPatients() {
		demo[NormalizeName(d.Name)+"|"+d.Birthdate] = true
	}
	seen := map[string]bool{}
	base := time.Date(1930, 1, 1, 0, 0, 0, 0, time.UTC)
	days := int(time.Date(2006, 1, 1, 0, 0, 0, 0, time.UTC).Sub(base).Hours() / 24)
	out := make([]DemoPatient, 0, n)
	for i := 1; len(out) < n; i++ {
		name := genFirst[rng.IntN(len(genFirst))] + " " + genLast[rng.IntN(len(genLast))]
		dob := base.AddDate(0, 0, rng.IntN(days)).Format("2006-01-02")
		ssn := fmt.Sprintf("%04d", rng.IntN(10000))
		k := NormalizeName(name) + "|" + dob
		if demo[k] || seen[k+"|"+ssn] {
			continue
		}
		seen[k+"|"+ssn] = true
		idx := len(out) + 1
		line := "mobile"
		switch {
		case idx%25 == 0:
			line = "voip"
		case idx%10 == 0:
			line = "landline"
		}
		out = append(out, DemoPatient{
			ID: fmt.Sprintf("pt-g%06d", idx), Name: name, Birthdate: dob, SSNLast4: ssn,
			Phone: fmt.Sprintf("+1555600%04d", (idx-1)%10000), LineType: line,
		})
	}
	return out
}

// fieldHash is HMAC-SHA256(pepper, patient|field|value): the only form in
// which a birthdate or SSN-4 is stored or compared.
func fieldHash(pepper *session.MAC, patientID, field, value string) []byte {
	return pepper.Sum(patientID, field, value)
}

const (
	fieldDOB  = "birthdate"
	fieldSSN4 = "ssn_last4"
)

// Seed writes the patients into the directory with their keyed directory
// keys (name and number on file) and keyed hashes, after migrating any rows
// still keyed in plaintext. It is idempotent (upsert by id).
func Seed(ctx context.Context, st Store, pepper []byte, ps []DemoPatient) error {
	const batch = 1000
	if _, err := MigrateDirectory(ctx, st, pepper); err != nil {
		return err
	}
	mac := session.NewMAC(pepper)
	dir := newDirectory(pepper)
	rows := make([]session.Patient, 0, batch)
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		err := st.UpsertPatients(ctx, rows)
		rows = rows[:0]
		return err
	}
	for _, p := range ps {
		if _, err := time.Parse("2006-01-02", p.Birthdate); err != nil {
			return fmt.Errorf("authserver: seed %s: bad birthdate", p.ID)
		}
		rows = append(rows, session.Patient{
			ID: p.ID, Name: p.Name, NameKeys: dir.keys(p.Name, p.Phone),
			DOBHash:  fieldHash(mac, p.ID, fieldDOB, p.Birthdate),
			SSN4Hash: fieldHash(mac, p.ID, fieldSSN4, p.SSNLast4),
			Phone:    p.Phone, LineType: p.LineType,
		})
		if len(rows) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
