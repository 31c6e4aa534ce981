package session

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		h, err := auditHash(prev, &e)
		if err != nil {
			t.Fatal(err)
		}
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
	ha, _ := auditHash(nil, &a)
	hb, _ := auditHash(nil, &b)
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
		h1, err := auditHash(prev, &e)
		if err != nil {
			t.Skip() // invalid UTF-8 cannot be canonicalized; AppendAudit reports the error
		}
		h2, _ := auditHash(prev, &e)
		if string(h1) != string(h2) || len(h1) != 32 {
			t.Fatal("hash not deterministic")
		}
		e.Outcome = "changed"
		if h3, _ := auditHash(prev, &e); string(h3) == string(h1) {
			t.Fatal("hash ignores a field")
		}
	})
}
