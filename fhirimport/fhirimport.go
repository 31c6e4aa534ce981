// Package fhirimport reads FHIR R4 Patient resources from an EHR's exports —
// a Bundle (.json), a Bulk Data export (.ndjson, one resource per line) or
// a directory of those — and maps each to the few fields the authorization
// server keeps. It streams: a Bundle's entries and an export's lines are
// decoded one at a time, so memory stays flat however large the export.
//
// A resource that cannot be used is skipped with a reason, never guessed
// at, and never stops the walk. The package knows nothing of storage or
// hashing: Walk hands each Patient to a callback.
package fhirimport

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// SSNSystem is the identifier system of a US Social Security Number.
const SSNSystem = "http://hl7.org/fhir/sid/us-ssn"

// Patient is what the AS needs of one FHIR Patient. Birthdate and SSN-4 are
// plaintext here only on their way to the keyed hashes.
type Patient struct {
	ID        string   // the resource id: re-importing upserts by it
	Name      string   // official name, else usual, else the first current one
	Aliases   []string // every other name, for matching
	Birthdate string   // YYYY-MM-DD
	SSNLast4  string
	Phone     string // E.164; "" when the record has no usable phone
	LineType  string // mobile | landline; "" without a phone
}

// Skip says why a resource was not imported.
type Skip struct {
	Source string // path and line (ndjson) or path and entry number (Bundle)
	ID     string // the resource id when known
	Reason string
}

func (s Skip) String() string {
	if s.ID != "" {
		return fmt.Sprintf("%s (id %s): %s", s.Source, s.ID, s.Reason)
	}
	return fmt.Sprintf("%s: %s", s.Source, s.Reason)
}

// Skip reasons.
const (
	ReasonUnparseable  = "unparseable"
	ReasonNotPatient   = "not a Patient"
	ReasonNoID         = "no id"
	ReasonNoName       = "no name"
	ReasonNoBirthDate  = "no birthDate"
	ReasonPartialDate  = "partial birthDate"
	ReasonBadBirthDate = "invalid birthDate"
	ReasonNoSSN        = "no SSN"
	ReasonDeceased     = "deceased"
	ReasonInactive     = "active: false"
)

// maxLine bounds one ndjson resource.
const maxLine = 16 << 20

// Files expands paths (files or directories, walked in name order) into the
// .json and .ndjson files to read. An unreadable path is an error before
// anything is read, so a typo never leads to a partial import.
func Files(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("fhirimport: %w", err)
		}
		if !info.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".json") || strings.HasSuffix(path, ".ndjson")) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("fhirimport: %w", err)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	for _, p := range out { // every file must open, not only the paths named
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("fhirimport: %w", err)
		}
		f.Close()
	}
	return out, nil
}

// Walk reads every file and calls emit for each usable Patient and skip for
// every other resource. An error from emit stops the walk and is returned;
// so is a file that cannot be opened or read.
func Walk(files []string, emit func(Patient) error, skip func(Skip)) error {
	for _, path := range files {
		if err := walkFile(path, emit, skip); err != nil {
			return err
		}
	}
	return nil
}

func walkFile(path string, emit func(Patient) error, skip func(Skip)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("fhirimport: %w", err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".ndjson") {
		return ReadNDJSON(f, path, emit, skip)
	}
	return ReadJSON(f, path, emit, skip)
}

// ReadNDJSON reads a Bulk Data export: one resource per line. A line over
// 16 MiB is skipped as unparseable without being held in memory.
func ReadNDJSON(r io.Reader, name string, emit func(Patient) error, skip func(Skip)) error {
	br := bufio.NewReaderSize(r, 1<<16)
	var buf []byte
	for line := 1; ; line++ {
		buf = buf[:0]
		tooLong := false
		var err error
		for {
			var chunk []byte
			chunk, err = br.ReadSlice('\n')
			if !tooLong {
				if len(buf)+len(chunk) > maxLine {
					tooLong, buf = true, buf[:0]
				} else {
					buf = append(buf, chunk...)
				}
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("fhirimport: %s: %w", name, err)
		}
		src := fmt.Sprintf("%s:%d", name, line)
		if tooLong {
			skip(Skip{Source: src, Reason: ReasonUnparseable + " (line longer than 16 MiB)"})
		} else if b := bytes.TrimSpace(buf); len(b) > 0 {
			if err := handle(b, src, emit, skip); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// ReadJSON reads a .json file: a Bundle, whose entries are streamed, or a
// single resource.
func ReadJSON(r io.Reader, name string, emit func(Patient) error, skip func(Skip)) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		skip(Skip{Source: name, Reason: ReasonUnparseable + " (not a JSON object)"})
		return nil
	}
	rest := map[string]json.RawMessage{}
	entries := 0
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			skip(Skip{Source: name, Reason: ReasonUnparseable})
			return nil
		}
		key, _ := kt.(string)
		if key != "entry" {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				skip(Skip{Source: name, Reason: ReasonUnparseable})
				return nil
			}
			rest[key] = v
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			skip(Skip{Source: name, Reason: ReasonUnparseable + " (entry is not an array)"})
			return nil
		}
		for dec.More() {
			entries++
			src := fmt.Sprintf("%s#entry[%d]", name, entries-1)
			var e struct {
				Resource json.RawMessage `json:"resource"`
			}
			if err := dec.Decode(&e); err != nil {
				// The decoder cannot resynchronise inside a broken array.
				skip(Skip{Source: src, Reason: ReasonUnparseable + " (the rest of the Bundle is unreadable)"})
				return nil
			}
			if len(e.Resource) == 0 {
				skip(Skip{Source: src, Reason: ReasonUnparseable + " (entry without resource)"})
				continue
			}
			if err := handle(e.Resource, src, emit, skip); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			skip(Skip{Source: name, Reason: ReasonUnparseable})
			return nil
		}
	}
	var rt string
	json.Unmarshal(rest["resourceType"], &rt)
	if rt == "Bundle" {
		return nil
	}
	if entries > 0 {
		skip(Skip{Source: name, Reason: fmt.Sprintf("%s (%s with entries)", ReasonNotPatient, safeType(rt))})
		return nil
	}
	whole, err := json.Marshal(rest)
	if err != nil {
		skip(Skip{Source: name, Reason: ReasonUnparseable})
		return nil
	}
	return handle(whole, name, emit, skip)
}

// handle maps one resource and emits or skips it.
func handle(raw []byte, src string, emit func(Patient) error, skip func(Skip)) error {
	p, reason, id := Map(raw)
	if reason != "" {
		skip(Skip{Source: src, ID: id, Reason: reason})
		return nil
	}
	return emit(p)
}

// safeType keeps an unexpected resourceType printable and short.
func safeType(t string) string {
	if t == "" {
		return "no resourceType"
	}
	if len(t) > 40 || strings.Trim(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return "?"
	}
	return t
}

// Map turns one FHIR resource into a Patient, or says why it cannot
// (reason != ""); id is the resource id when it could be read.
func Map(raw []byte) (p Patient, reason, id string) {
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return p, ReasonUnparseable, ""
	}
	id = safeID(head.ID)
	if head.ResourceType != "Patient" {
		return p, fmt.Sprintf("%s (%s)", ReasonNotPatient, safeType(head.ResourceType)), id
	}
	r, err := fhir.UnmarshalPatient(raw)
	if err != nil {
		return p, ReasonUnparseable + " (not a valid R4 Patient)", id
	}
	if head.ID == "" || id == "" {
		return p, ReasonNoID, ""
	}
	p.ID = head.ID
	if r.Active != nil && !*r.Active {
		return p, ReasonInactive, id
	}
	if r.DeceasedBoolean != nil && *r.DeceasedBoolean || r.DeceasedDateTime != nil {
		return p, ReasonDeceased, id
	}
	p.Name, p.Aliases = names(r.Name)
	if p.Name == "" {
		return p, ReasonNoName, id
	}
	switch bd := r.BirthDate; {
	case bd == nil || *bd == "":
		return p, ReasonNoBirthDate, id
	case len(*bd) < len("2006-01-02"):
		return p, ReasonPartialDate, id
	default:
		if _, err := time.Parse("2006-01-02", *bd); err != nil {
			return p, ReasonBadBirthDate, id
		}
		p.Birthdate = *bd
	}
	if p.SSNLast4 = ssnLast4(r.Identifier); p.SSNLast4 == "" {
		return p, ReasonNoSSN, id
	}
	p.Phone, p.LineType = phone(r.Telecom)
	return p, "", id
}

// safeID accepts FHIR's id syntax ([A-Za-z0-9-.]{1,64}) and nothing else.
func safeID(id string) string {
	if id == "" || len(id) > 64 {
		return ""
	}
	for _, c := range id {
		if !(c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return id
}

func nameText(n fhir.HumanName) string {
	if n.Text != nil && strings.TrimSpace(*n.Text) != "" {
		return strings.Join(strings.Fields(*n.Text), " ")
	}
	parts := append([]string(nil), n.Given...)
	if n.Family != nil {
		parts = append(parts, *n.Family)
	}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

// names picks the official name, else the usual one, else the first that
// is not marked old; every other name becomes an alias.
func names(ns []fhir.HumanName) (string, []string) {
	pick := -1
	for _, want := range []fhir.NameUse{fhir.NameUseOfficial, fhir.NameUseUsual} {
		for i, n := range ns {
			if pick < 0 && n.Use != nil && *n.Use == want && nameText(n) != "" {
				pick = i
			}
		}
	}
	for i, n := range ns {
		if pick < 0 && (n.Use == nil || *n.Use != fhir.NameUseOld) && nameText(n) != "" {
			pick = i
		}
	}
	if pick < 0 {
		return "", nil
	}
	main := nameText(ns[pick])
	var aliases []string
	for i, n := range ns {
		if t := nameText(n); i != pick && t != "" && t != main && !contains(aliases, t) {
			aliases = append(aliases, t)
		}
	}
	return main, aliases
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ssnLast4 reads the last four digits of the SSN identifier, whatever its
// punctuation ("123-45-6789", "123456789", "***-**-6789").
func ssnLast4(ids []fhir.Identifier) string {
	for _, id := range ids {
		if id.System == nil || *id.System != SSNSystem || id.Value == nil {
			continue
		}
		var digits []byte
		for _, c := range []byte(*id.Value) {
			if c >= '0' && c <= '9' {
				digits = append(digits, c)
			}
		}
		if len(digits) >= 4 && len(digits) <= 9 {
			return string(digits[len(digits)-4:])
		}
	}
	return ""
}

// phone picks the number texts and caller matching use: a mobile number
// first, then home, work, temp or unmarked; never one marked old. The line
// type is mobile for use=mobile and landline otherwise.
func phone(ts []fhir.ContactPoint) (string, string) {
	rank := func(c fhir.ContactPoint) int {
		if *c.System == fhir.ContactPointSystemSms && (c.Use == nil || *c.Use != fhir.ContactPointUseOld) {
			return 0 // a number for texts is a mobile one
		}
		if c.Use == nil {
			return 4
		}
		switch *c.Use {
		case fhir.ContactPointUseMobile:
			return 0
		case fhir.ContactPointUseHome:
			return 1
		case fhir.ContactPointUseWork:
			return 2
		case fhir.ContactPointUseTemp:
			return 3
		}
		return -1 // old
	}
	best, bestRank := "", 99
	lineType := ""
	for _, c := range ts {
		if c.System == nil || (*c.System != fhir.ContactPointSystemPhone && *c.System != fhir.ContactPointSystemSms) || c.Value == nil {
			continue
		}
		r := rank(c)
		e := E164(*c.Value)
		if r < 0 || e == "" || r >= bestRank {
			continue
		}
		best, bestRank = e, r
		lineType = "landline"
		if r == 0 || *c.System == fhir.ContactPointSystemSms {
			lineType = "mobile"
		}
	}
	return best, lineType
}

// E164 normalizes a US-style or international phone value: "+1 (555)
// 555-0101", "555.555.0101", "tel:+15555550101", "15555550101". "" when it
// is not a plausible number.
func E164(v string) string {
	v = strings.TrimPrefix(strings.TrimSpace(v), "tel:")
	plus := strings.HasPrefix(v, "+")
	var d []byte
	for _, c := range []byte(v) {
		switch {
		case c >= '0' && c <= '9':
			d = append(d, c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '+':
		default:
			return ""
		}
	}
	switch {
	case plus && len(d) >= 8 && len(d) <= 15 && d[0] != '0':
		return "+" + string(d)
	case !plus && len(d) == 10 && d[0] >= '2':
		return "+1" + string(d)
	case !plus && len(d) == 11 && d[0] == '1':
		return "+" + string(d)
	}
	return ""
}
