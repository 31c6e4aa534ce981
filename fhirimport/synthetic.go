package fhirimport

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Synthetic is one generated resource with what an import must make of it:
// Want for a usable Patient, Reason (a prefix of the skip reason) otherwise.
type Synthetic struct {
	Line   []byte // the resource as one line of JSON ("" content for a broken line)
	Want   *Patient
	Reason string
}

var (
	synFirst = []string{"Avery", "Bianca", "Caleb", "Dalia", "Eitan", "Freya", "Gideon", "Hiroko", "Ines", "Jonah",
		"Keisha", "Lorenzo", "Mireille", "Nikolai", "Odette", "Pavel", "Quinn", "Rashida", "Soren", "Thuy"}
	synLast = []string{"Achterberg", "Bellweather", "Cienfuegos", "Drummond", "Estrada", "Falkenrath", "Goldberg",
		"Halvorsen", "Ishikawa", "Jaramillo", "Kettering", "Lindgren", "Montague", "Nwosu", "Ostrowski", "Pemberton"}
	synNick = []string{"Ave", "Bee", "Cal", "Dee", "Eli", "Fred", "Gid", "Hiro", "Nessa", "Jo"}
)

// Generate returns n synthetic resources shaped like real EHR exports —
// several names (official, usual, maiden), several phones (home, mobile, an
// old one, e-mail), SSNs with and without dashes beside an MRN, US Core
// race and ethnicity extensions, narrative text — deterministically from
// seed. With bad set, a few in every hundred are unusable in each way the
// importer must report (no birthDate, partial date, no SSN, deceased,
// inactive, not a Patient, an unparseable line).
func Generate(n int, seed uint64, bad bool) []Synthetic {
	rng := rand.New(rand.NewPCG(seed, 15))
	base := time.Date(1925, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]Synthetic, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, generateOne(rng, base, i, bad))
	}
	return out
}

func generateOne(rng *rand.Rand, base time.Time, i int, bad bool) Synthetic {
	id := fmt.Sprintf("ehr-%07d", i)
	first, last := synFirst[rng.IntN(len(synFirst))], synLast[rng.IntN(len(synLast))]
	dob := base.AddDate(0, 0, rng.IntN(80*365)).Format("2006-01-02")
	ssn := fmt.Sprintf("%03d%02d%04d", 100+rng.IntN(800), 1+rng.IntN(98), rng.IntN(10000))
	home := fmt.Sprintf("(555) %03d-%04d", 700+i/10000%100, i%10000)
	mobile := fmt.Sprintf("+1555%07d", 6100000+i)
	kind := 0
	if bad {
		switch {
		case i%97 == 0:
			return Synthetic{Line: []byte(`{"resourceType":"Patient","id":"` + id + `","name":[{"family":`), Reason: ReasonUnparseable}
		case i%89 == 0:
			line, _ := json.Marshal(map[string]any{"resourceType": "Observation", "id": "obs-" + id, "status": "final",
				"subject": map[string]string{"reference": "Patient/" + id}})
			return Synthetic{Line: line, Reason: ReasonNotPatient}
		case i%37 == 0:
			kind = 1
		case i%41 == 0:
			kind = 2
		case i%43 == 0:
			kind = 3
		case i%47 == 0:
			kind = 4
		case i%53 == 0:
			kind = 5
		}
	}
	names := []map[string]any{}
	want := &Patient{ID: id, Name: first + " " + last, Birthdate: dob, SSNLast4: ssn[5:]}
	switch i % 5 {
	case 0: // official plus a nickname and a maiden name
		maiden := synLast[(i/5)%len(synLast)]
		if maiden == last {
			maiden = "Vandermeer"
		}
		nick := synNick[i%len(synNick)]
		names = append(names,
			map[string]any{"use": "usual", "given": []string{nick}, "family": last},
			map[string]any{"use": "official", "family": last, "given": []string{first}, "prefix": []string{"Ms."}},
			map[string]any{"use": "maiden", "family": maiden, "given": []string{first}})
		want.Aliases = []string{nick + " " + last, first + " " + maiden}
	case 1: // usual only, with narrative text
		names = append(names, map[string]any{"use": "usual", "text": first + " " + last, "family": last, "given": []string{first}})
	case 2: // official with a middle name and an old name
		names = append(names,
			map[string]any{"use": "old", "family": "Oldname", "given": []string{first}, "period": map[string]string{"end": "2001-06-01"}},
			map[string]any{"use": "official", "family": last, "given": []string{first, "Marie"}})
		want.Name = first + " Marie " + last
		want.Aliases = []string{first + " Oldname"}
	default:
		names = append(names, map[string]any{"use": "official", "family": last, "given": []string{first}})
	}
	ssnValue := ssn
	if i%2 == 0 {
		ssnValue = ssn[:3] + "-" + ssn[3:5] + "-" + ssn[5:]
	}
	identifiers := []map[string]any{
		{"use": "usual", "type": map[string]any{"coding": []map[string]string{{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}}},
			"system": "http://hospital.example.org/mrn", "value": fmt.Sprintf("MRN%08d", i)},
		{"type": map[string]any{"coding": []map[string]string{{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}}},
			"system": SSNSystem, "value": ssnValue},
	}
	telecom := []map[string]any{
		{"system": "phone", "value": home, "use": "home", "rank": 2},
		{"system": "email", "value": fmt.Sprintf("patient%d@example.org", i), "use": "home"},
		{"system": "phone", "value": "555-555-0000", "use": "old", "period": map[string]string{"end": "2015-01-01"}},
	}
	switch i % 3 {
	case 0: // no mobile: the home landline is the number on file
		want.Phone, want.LineType = E164(home), "landline"
	default:
		telecom = append(telecom, map[string]any{"system": "phone", "value": mobile, "use": "mobile", "rank": 1})
		want.Phone, want.LineType = mobile, "mobile"
	}
	res := map[string]any{
		"resourceType": "Patient", "id": id,
		"meta": map[string]any{"versionId": "3", "lastUpdated": "2026-11-01T10:00:00Z",
			"profile": []string{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"}},
		"text": map[string]string{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">` + first + " " + last + `</div>`},
		"extension": []map[string]any{
			{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": []map[string]any{
				{"url": "ombCategory", "valueCoding": map[string]string{"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3", "display": "White"}},
				{"url": "text", "valueString": "White"}}},
			{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "F"},
		},
		"identifier": identifiers, "active": true, "name": names, "telecom": telecom,
		"gender": []string{"female", "male", "other", "unknown"}[i%4], "birthDate": dob,
		"address":       []map[string]any{{"use": "home", "line": []string{fmt.Sprintf("%d Main St", i)}, "city": "Springfield", "state": "IL", "postalCode": "62701"}},
		"communication": []map[string]any{{"language": map[string]any{"coding": []map[string]string{{"system": "urn:ietf:bcp:47", "code": "en-US"}}}, "preferred": true}},
	}
	s := Synthetic{Want: want}
	switch kind {
	case 1:
		delete(res, "birthDate")
		s.Want, s.Reason = nil, ReasonNoBirthDate
	case 2:
		res["birthDate"] = dob[:7]
		s.Want, s.Reason = nil, ReasonPartialDate
	case 3:
		res["identifier"] = identifiers[:1]
		s.Want, s.Reason = nil, ReasonNoSSN
	case 4:
		res["deceasedBoolean"] = true
		s.Want, s.Reason = nil, ReasonDeceased
	case 5:
		res["active"] = false
		s.Want, s.Reason = nil, ReasonInactive
	}
	s.Line, _ = json.Marshal(res)
	return s
}

// WriteNDJSON writes the resources one per line (a Bulk Data export).
func WriteNDJSON(w io.Writer, rs []Synthetic) error {
	bw := bufio.NewWriter(w)
	for _, r := range rs {
		bw.Write(r.Line)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteBundle writes the resources as a collection Bundle. Broken lines
// cannot be embedded in valid JSON, so they are left out.
func WriteBundle(w io.Writer, rs []Synthetic) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(`{"resourceType":"Bundle","type":"collection","entry":[`)
	first := true
	for _, r := range rs {
		if !json.Valid(r.Line) {
			continue
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		var head struct {
			ResourceType, ID string
		}
		json.Unmarshal(r.Line, &head)
		fmt.Fprintf(bw, `{"fullUrl":"urn:uuid:%s","resource":`, head.ID)
		bw.Write(r.Line)
		bw.WriteString(`,"search":{"mode":"match"}}`)
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

// WriteGenerated streams n generated resources as ndjson without holding
// them (for benchmarks and load runs of any size): the same resources, in
// the same order, as Generate(n, seed, bad).
func WriteGenerated(w io.Writer, n int, seed uint64, bad bool) error {
	rng := rand.New(rand.NewPCG(seed, 15))
	base := time.Date(1925, 1, 1, 0, 0, 0, 0, time.UTC)
	bw := bufio.NewWriterSize(w, 1<<16)
	for i := 1; i <= n; i++ {
		bw.Write(generateOne(rng, base, i, bad).Line)
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
	}
	return bw.Flush()
}
