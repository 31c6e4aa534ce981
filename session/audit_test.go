package session

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestAuditHashGolden pins the chain's hash function (SHA-256 over prev_hash
// and the RFC 8785 form of the record): a change here would make every
// stored chain fail verification, so it must be deliberate. The golden
// values were cross-checked with an independent Python implementation
// (json.dumps sort_keys, compact separators, ensure_ascii=False + hashlib).
func TestAuditHashGolden(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 123456000, time.UTC)
	events := []AuditEvent{
		{Seq: 1, Time: t0, Type: "kba.failed", Actor: "voiceauth-ivr", Subject: "patient:0011223344556677", Number: "number:8899aabbccddeeff", CallRef: "call:01", Outcome: "fail", Detail: map[string]string{"reason": "identity_unresolved", "attempt": "1"}},
		{Seq: 2, Time: t0.Add(time.Second), Type: "token.issued", Actor: "voiceauth-ivr", Subject: "patient:0011223344556677", Outcome: "ok", Detail: map[string]string{"acr": "urn:voiceauth:acr:kba-otp", "note": "é\u2028<>&"}},
		{Seq: 3, Time: t0.Add(2 * time.Second), Type: AuditCheckpoint, Actor: "session", Outcome: "purged"},
	}
	var lines []string
	var prev []byte
	for _, e := range events {
		h := auditHash(prev, &e)
		lines = append(lines, hex.EncodeToString(h))
		prev = h
	}
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", "audit_chain.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("audit chain hashes changed:\ngot\n%swant\n%s", got, want)
	}
	// Nil and empty Detail hash the same (both are stored as {}).
	a := AuditEvent{Seq: 1, Time: t0, Type: "x"}
	b := a
	b.Detail = map[string]string{}
	ha := auditHash(nil, &a)
	hb := auditHash(nil, &b)
	if hex.EncodeToString(ha) != hex.EncodeToString(hb) {
		t.Fatal("nil and empty Detail hash differently")
	}
}

func FuzzSQLitePath(f *testing.F) {
	for _, s := range []string{"data/v.db", "sqlite:x", "sqlite://x?y", "file:a?b=c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		p := sqlitePath(dsn)
		if strings.Contains(p, "?") {
			t.Fatalf("sqlitePath(%q) = %q keeps a query", dsn, p)
		}
		if len(p) > len(dsn) {
			t.Fatalf("sqlitePath grew the input")
		}
	})
}

func FuzzAuditHash(f *testing.F) {
	f.Add(int64(1), "kba.failed", "k", "v", []byte{})
	f.Fuzz(func(t *testing.T, seq int64, typ, k, v string, prev []byte) {
		e := AuditEvent{Seq: seq, Time: time.Unix(0, 0), Type: typ, Detail: map[string]string{k: v}}
		h1 := auditHash(prev, &e)
		h2 := auditHash(prev, &e)
		if string(h1) != string(h2) || len(h1) != 32 {
			t.Fatal("hash not deterministic")
		}
		e.Outcome = "changed"
		if h3 := auditHash(prev, &e); string(h3) == string(h1) {
			t.Fatal("hash ignores a field")
		}
	})
}

// auditCanon is the record as encoding/json sees it, for checking
// appendAuditJCS against jcs.Transform.
type auditCanon struct {
	Seq     int64             `json:"seq"`
	Time    string            `json:"time"`
	Type    string            `json:"type"`
	Actor   string            `json:"actor"`
	Subject string            `json:"subject"`
	Number  string            `json:"number"`
	CallRef string            `json:"call_ref"`
	Outcome string            `json:"outcome"`
	Detail  map[string]string `json:"detail"`
}

func viaJCS(e *AuditEvent) ([]byte, error) {
	d := e.Detail
	if d == nil {
		d = map[string]string{}
	}
	raw, err := json.Marshal(auditCanon{Seq: e.Seq, Time: e.Time.UTC().Format(time.RFC3339Nano), Type: e.Type, Actor: e.Actor,
		Subject: e.Subject, Number: e.Number, CallRef: e.CallRef, Outcome: e.Outcome, Detail: d})
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// FuzzAuditJCS: the direct encoder agrees with the JCS library on every
// record, escapes, control characters, invalid UTF-8, and keys that sort
// differently in UTF-8 and UTF-16 (U+FF5E against U+1F600) included.
func FuzzAuditJCS(f *testing.F) {
	f.Add(int64(1), int64(123456000), "kba.failed", "reason", "identity_unresolved", "attempt", "1", "patient:00")
	f.Add(int64(2), int64(0), "t\"y\\pe\u2028<>&", "\uff5e", "a", "\U0001F600", "b\x00\x1f\x7f", "\xff\xfe")
	f.Add(int64(1<<53), int64(999999999), "", "", "", "k", "\b\t\n\f\r", "é")
	f.Fuzz(func(t *testing.T, seq, nanos int64, typ, k1, v1, k2, v2, subject string) {
		if seq > 1<<53 || seq < -(1<<53) {
			t.Skip() // JCS numbers are IEEE doubles; audit sequence numbers stay far below 2^53
		}
		e := AuditEvent{Seq: seq, Time: time.Unix(1700000000, nanos%1e9), Type: typ, Actor: k2 + v1, Subject: subject,
			Number: v2, CallRef: k1, Outcome: "fail", Detail: map[string]string{k1: v1, k2: v2}}
		want, err := viaJCS(&e)
		if err != nil {
			t.Skipf("jcs: %v", err)
		}
		if got := appendAuditJCS(nil, &e); string(got) != string(want) {
			t.Fatalf("appendAuditJCS:\n got %q\nwant %q", got, want)
		}
	})
}
