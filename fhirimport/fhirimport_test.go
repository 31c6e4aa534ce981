package fhirimport

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata from the generator")

const (
	testSeed   = 20261206
	ndjsonPath = "testdata/export/Patient.ndjson"
	bundlePath = "testdata/bundle.json"
)

// testdata is generated: 300 resources as a Bulk Data export and the first
// 60 of another seed as a Bundle. `go test ./fhirimport -run Testdata -update` rewrites it.
func testdataFiles(t *testing.T) (ndjson, bundle []byte, nd, bu []Synthetic) {
	nd, bu = Generate(300, testSeed, true), Generate(60, testSeed+1, true)
	var a, b bytes.Buffer
	if err := WriteNDJSON(&a, nd); err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(&b, bu); err != nil {
		t.Fatal(err)
	}
	return a.Bytes(), b.Bytes(), nd, bu
}

func TestTestdataIsGenerated(t *testing.T) {
	nd, bu, _, _ := testdataFiles(t)
	if *update {
		os.WriteFile(ndjsonPath, nd, 0o644)
		os.WriteFile(bundlePath, bu, 0o644)
	}
	for path, want := range map[string][]byte{ndjsonPath: nd, bundlePath: bu} {
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s differs from the generator (run with -update): %v", path, err)
		}
	}
}

// TestWalkTestdata imports the generated exports and checks every resource
// against what the generator says it must become.
func TestWalkTestdata(t *testing.T) {
	_, _, nd, bu := testdataFiles(t)
	files, err := Files([]string{"testdata"})
	if err != nil || len(files) != 2 || files[0] != bundlePath || files[1] != ndjsonPath {
		t.Fatalf("Files = %v, %v", files, err)
	}
	var got []Patient
	var skips []Skip
	if err := Walk(files, func(p Patient) error { got = append(got, p); return nil }, func(s Skip) { skips = append(skips, s) }); err != nil {
		t.Fatal(err)
	}
	var want []Patient
	var reasons []string
	for _, set := range [][]Synthetic{bu, nd} {
		inBundle := len(set) == len(bu)
		for _, s := range set {
			switch {
			case s.Want != nil:
				want = append(want, *s.Want)
			case inBundle && !json.Valid(s.Line):
				// WriteBundle leaves broken lines out: they cannot be embedded.
			default:
				reasons = append(reasons, s.Reason)
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		for i := range min(len(got), len(want)) {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("patient %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
		t.Fatalf("got %d patients, want %d", len(got), len(want))
	}
	if len(skips) != len(reasons) {
		t.Fatalf("skipped %d, want %d: %v", len(skips), len(reasons), skips)
	}
	kinds := map[string]bool{}
	for i, s := range skips {
		if !strings.HasPrefix(s.Reason, reasons[i]) {
			t.Errorf("skip %d = %v, want reason %q", i, s, reasons[i])
		}
		kinds[reasons[i]] = true
		if !strings.Contains(s.Source, ".ndjson:") && !strings.Contains(s.Source, "#entry[") {
			t.Errorf("skip %v does not say where", s)
		}
	}
	for _, r := range []string{ReasonUnparseable, ReasonNotPatient, ReasonNoBirthDate, ReasonPartialDate, ReasonNoSSN, ReasonDeceased, ReasonInactive} {
		if !kinds[r] {
			t.Errorf("testdata has no resource skipped for %q", r)
		}
	}
	var aliased, landline, mobile int
	for _, p := range got {
		if len(p.Aliases) > 0 {
			aliased++
		}
		switch p.LineType {
		case "landline":
			landline++
		case "mobile":
			mobile++
		}
	}
	if aliased == 0 || landline == 0 || mobile == 0 {
		t.Fatalf("testdata lacks variety: %d aliased, %d landline, %d mobile", aliased, landline, mobile)
	}
}

func TestMap(t *testing.T) {
	base := `"resourceType":"Patient","id":"p1","birthDate":"1980-03-03","name":[{"use":"official","family":"Garcia","given":["Maria"]}],"identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"123-45-4567"}]`
	tests := []struct {
		name, json string
		want       Patient
		reason     string
	}{
		{"minimal", `{` + base + `}`, Patient{ID: "p1", Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "4567"}, ""},
		{"ssn without dashes", strings.Replace(`{`+base+`}`, "123-45-4567", "123454567", 1), Patient{ID: "p1", Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "4567"}, ""},
		{"masked ssn", strings.Replace(`{`+base+`}`, "123-45-4567", "***-**-4567", 1), Patient{ID: "p1", Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "4567"}, ""},
		{"ssn under another system", strings.Replace(`{`+base+`}`, "us-ssn", "us-npi", 1), Patient{}, ReasonNoSSN},
		{"ssn too long", strings.Replace(`{`+base+`}`, "123-45-4567", "1234567890123", 1), Patient{}, ReasonNoSSN},
		{"sms and home phones", `{` + base + `,"telecom":[{"system":"phone","value":"(555) 555-0111","use":"home"},{"system":"sms","value":"+1 555 555 0112"}]}`,
			Patient{ID: "p1", Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "4567", Phone: "+15555550112", LineType: "mobile"}, ""},
		{"work then home", `{` + base + `,"telecom":[{"system":"phone","value":"555.555.0113","use":"work"},{"system":"phone","value":"tel:+15555550114","use":"home"}]}`,
			Patient{ID: "p1", Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "4567", Phone: "+15555550114", LineType: "landline"}, ""},
		{"only an old phone", `{` + base + `,"telecom":[{"system":"phone","value":"5555550115","use":"old"}]}`,
			Patient{ID: "p1", Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "4567"}, ""},
		{"usual when no official", `{"resourceType":"Patient","id":"p2","birthDate":"1980-03-03","identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"4567"}],"name":[{"use":"nickname","text":"Mari"},{"use":"usual","given":["Maria"],"family":"Garcia"}]}`,
			Patient{ID: "p2", Name: "Maria Garcia", Aliases: []string{"Mari"}, Birthdate: "1980-03-03", SSNLast4: "4567"}, ""},
		{"deceased date", `{` + base + `,"deceasedDateTime":"2020-01-01"}`, Patient{}, ReasonDeceased},
		{"deceased false is alive", `{` + base + `,"deceasedBoolean":false}`, Patient{ID: "p1", Name: "Maria Garcia", Birthdate: "1980-03-03", SSNLast4: "4567"}, ""},
		{"inactive", `{` + base + `,"active":false}`, Patient{}, ReasonInactive},
		{"partial date", strings.Replace(`{`+base+`}`, "1980-03-03", "1980", 1), Patient{}, ReasonPartialDate},
		{"impossible date", strings.Replace(`{`+base+`}`, "1980-03-03", "1980-02-30", 1), Patient{}, ReasonBadBirthDate},
		{"no name", `{"resourceType":"Patient","id":"p3","birthDate":"1980-03-03"}`, Patient{}, ReasonNoName},
		{"only old names", `{"resourceType":"Patient","id":"p3","name":[{"use":"old","text":"X Y"}]}`, Patient{}, ReasonNoName},
		{"no id", strings.Replace(`{`+base+`}`, `"id":"p1",`, "", 1), Patient{}, ReasonNoID},
		{"id with a slash", strings.Replace(`{`+base+`}`, `"p1"`, `"../p1"`, 1), Patient{}, ReasonNoID},
		{"not a patient", `{"resourceType":"Practitioner","id":"d1"}`, Patient{}, ReasonNotPatient},
		{"unknown code", `{` + base + `,"gender":"robot"}`, Patient{}, ReasonUnparseable},
		{"array", `[1,2]`, Patient{}, ReasonUnparseable},
		{"truncated", `{"resourceType":"Pat`, Patient{}, ReasonUnparseable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, reason, _ := Map([]byte(tt.json))
			if !strings.HasPrefix(reason, tt.reason) || (tt.reason == "") != (reason == "") {
				t.Fatalf("reason %q, want %q", reason, tt.reason)
			}
			if reason == "" && !reflect.DeepEqual(p, tt.want) {
				t.Fatalf("got %+v\nwant %+v", p, tt.want)
			}
		})
	}
}

func TestReadJSONShapes(t *testing.T) {
	collect := func(src string) ([]Patient, []Skip) {
		var ps []Patient
		var ss []Skip
		if err := ReadJSON(strings.NewReader(src), "f.json", func(p Patient) error { ps = append(ps, p); return nil }, func(s Skip) { ss = append(ss, s) }); err != nil {
			t.Fatal(err)
		}
		return ps, ss
	}
	one := `{"resourceType":"Patient","id":"p1","birthDate":"1980-03-03","name":[{"family":"Garcia","given":["Maria"]}],"identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"4567"}]}`
	if ps, ss := collect(one); len(ps) != 1 || len(ss) != 0 || ps[0].ID != "p1" {
		t.Fatalf("single resource: %v %v", ps, ss)
	}
	// entry before resourceType; a broken entry ends the bundle, earlier ones stand.
	if ps, ss := collect(`{"entry":[{"resource":` + one + `},{"fullUrl":"x"}],"resourceType":"Bundle"}`); len(ps) != 1 || len(ss) != 1 || !strings.Contains(ss[0].Reason, "without resource") {
		t.Fatalf("bundle: %v %v", ps, ss)
	}
	if ps, ss := collect(`{"resourceType":"Bundle","entry":[{"resource":` + one + `},{"resource":{"resourceType":"Patient",]}`); len(ps) != 1 || len(ss) != 1 || ss[0].Reason[:len(ReasonUnparseable)] != ReasonUnparseable {
		t.Fatalf("broken bundle: %v %v", ps, ss)
	}
	if ps, ss := collect(`[]`); len(ps) != 0 || len(ss) != 1 {
		t.Fatalf("array file: %v %v", ps, ss)
	}
	if ps, ss := collect(`{"resourceType":"Observation","id":"o1"}`); len(ps) != 0 || len(ss) != 1 || !strings.HasPrefix(ss[0].Reason, ReasonNotPatient) {
		t.Fatalf("observation file: %v %v", ps, ss)
	}
}

func TestReadNDJSONLines(t *testing.T) {
	one := `{"resourceType":"Patient","id":"p1","birthDate":"1980-03-03","name":[{"family":"Garcia","given":["Maria"]}],"identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"4567"}]}`
	huge := `{"resourceType":"Patient","id":"big","x":"` + strings.Repeat("a", maxLine) + `"}`
	src := one + "\r\n\n" + "not json\n" + huge + "\n" + strings.Replace(one, "p1", "p2", 1) // no final newline
	var ps []Patient
	var ss []Skip
	if err := ReadNDJSON(strings.NewReader(src), "x.ndjson", func(p Patient) error { ps = append(ps, p); return nil }, func(s Skip) { ss = append(ss, s) }); err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].ID != "p1" || ps[1].ID != "p2" {
		t.Fatalf("patients %v", ps)
	}
	if len(ss) != 2 || ss[0].Source != "x.ndjson:3" || ss[1].Source != "x.ndjson:4" || !strings.Contains(ss[1].Reason, "16 MiB") {
		t.Fatalf("skips %v", ss)
	}
}

func TestFilesRefusesUnreadablePaths(t *testing.T) {
	if _, err := Files([]string{"testdata", "testdata/missing.ndjson"}); err == nil {
		t.Fatal("a missing path was accepted")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.ndjson"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "a.json"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644)
	if fs, err := Files([]string{dir}); err != nil || len(fs) != 2 || filepath.Base(fs[0]) != "a.json" {
		t.Fatalf("Files = %v, %v", fs, err)
	}
}

func TestE164(t *testing.T) {
	for in, want := range map[string]string{
		"(555) 555-0101": "+15555550101", "+1 555 555 0101": "+15555550101", "15555550101": "+15555550101",
		"tel:+442071838750": "+442071838750", "555-0101": "", "+0123456789": "", "call me": "", "1555555010x": "",
		"0555555010": "",
	} {
		if got := E164(in); got != want {
			t.Errorf("E164(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzMap(f *testing.F) {
	for _, s := range Generate(20, 1, true) {
		f.Add(s.Line)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, reason, _ := Map(b)
		if reason != "" {
			return
		}
		if safeID(p.ID) == "" || p.Name == "" || len(p.SSNLast4) != 4 || len(p.Birthdate) != 10 || p.Phone != "" && E164(p.Phone) != p.Phone {
			t.Fatalf("emitted an unusable patient %+v", p)
		}
	})
}

func FuzzReaders(f *testing.F) {
	var nd, bu bytes.Buffer
	rs := Generate(5, 2, true)
	WriteNDJSON(&nd, rs)
	WriteBundle(&bu, rs)
	f.Add(nd.Bytes())
	f.Add(bu.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		emit := func(Patient) error { return nil }
		skip := func(Skip) {}
		if err := ReadNDJSON(bytes.NewReader(b), "f", emit, skip); err != nil {
			t.Fatal(err)
		}
		if err := ReadJSON(bytes.NewReader(b), "f", emit, skip); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWriteGeneratedMatchesGenerate(t *testing.T) {
	var a, b bytes.Buffer
	WriteGenerated(&a, 120, 7, true)
	WriteNDJSON(&b, Generate(120, 7, true))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the streaming generator differs from Generate")
	}
}

func TestFilesRefusesADanglingFileInADirectory(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.ndjson"), nil, 0o644)
	// A symlink to nowhere is listed by the walk but cannot be opened.
	if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "b.ndjson")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if _, err := Files([]string{dir}); err == nil || !strings.Contains(err.Error(), "b.ndjson") {
		t.Fatalf("Files = %v, want an error naming b.ndjson", err)
	}
}
