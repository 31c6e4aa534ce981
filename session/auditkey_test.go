package session

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAuditMACGolden pins the keyed chain value (version ‖ HMAC-SHA256 over
// version ‖ prev ‖ JCS(record)) for a fixed key. The golden values were
// computed independently with Python (hmac, hashlib, struct and json.dumps
// with sort_keys, compact separators, ensure_ascii=False); see the test's
// source for the records. A change here makes every stored chain fail.
func TestAuditMACGolden(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	kr, err := newAuditKeyring(map[uint32][]byte{7: key}, 7)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 123456000, time.UTC)
	events := []AuditEvent{
		{Seq: 1, Time: t0, Type: "kba.failed", Actor: "voiceauth-ivr", Subject: "patient:0011223344556677", Number: "number:8899aabbccddeeff", CallRef: "call:01", Outcome: "fail", Detail: map[string]string{"reason": "identity_unresolved", "attempt": "1"}},
		{Seq: 2, Time: t0.Add(time.Second), Type: "token.issued", Actor: "voiceauth-ivr", Subject: "patient:0011223344556677", Outcome: "ok", Detail: map[string]string{"acr": "urn:voiceauth:acr:kba-otp", "note": "é\u2028<>&"}},
		{Seq: 3, Time: t0.Add(2 * time.Second), Type: AuditCheckpoint, Actor: "session", Outcome: "purged"},
	}
	var lines []string
	var prev []byte
	for _, e := range events {
		h, ok := kr.sum(7, prev, &e)
		if !ok || len(h) != auditMACLen {
			t.Fatalf("sum = %x, %v", h, ok)
		}
		lines = append(lines, hex.EncodeToString(h))
		prev = h
	}
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", "audit_chain_keyed.golden")
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
		t.Fatalf("keyed audit chain values changed:\ngot\n%swant\n%s", got, want)
	}
	// Another key, or another version of the same key, gives another value.
	other, _ := newAuditKeyring(map[uint32][]byte{7: bytes.Repeat([]byte{1}, 32), 8: key}, 7)
	a, _ := other.sum(7, nil, &events[0])
	b, _ := other.sum(8, nil, &events[0])
	if a == nil || b == nil || hex.EncodeToString(a) == lines[0] || hex.EncodeToString(b) == lines[0] {
		t.Fatal("the chain value does not depend on the key and its version")
	}
	if _, ok := other.sum(9, nil, &events[0]); ok {
		t.Fatal("sum under a version the keyring does not hold")
	}
}

func TestAuditKeyringRefusesBadKeys(t *testing.T) {
	for name, tc := range map[string]struct {
		keys map[uint32][]byte
		cur  uint32
	}{
		"empty":       {nil, 1},
		"short key":   {map[uint32][]byte{1: make([]byte, 16)}, 1},
		"no current":  {map[uint32][]byte{1: make([]byte, 32)}, 2},
		"short older": {map[uint32][]byte{1: make([]byte, 31), 2: make([]byte, 32)}, 2},
	} {
		if _, err := newAuditKeyring(tc.keys, tc.cur); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "v.db"),
		Options{Sealer: testSealer(t), AuditKeys: map[uint32][]byte{1: make([]byte, 32)}, AuditKeyCurrent: 3})
	if err == nil {
		t.Fatal("Open accepted an audit key version that is not in the keyring")
	}
}

// rebuildPlain rewrites the chain from record `from` on as an attacker with
// write access but without the audit key would: change record `from`, then
// recompute every value with the (public) unkeyed SHA-256 and move the head.
func rebuildPlain(t *testing.T, s *sqlStore, from int64) {
	t.Helper()
	rebuild(t, s, from, func(prev []byte, e *AuditEvent) []byte { return auditHash(prev, e) })
}

// rebuild rewrites records from `from` on with sum (record `from` gets
// outcome "success") and points the head at the new last value.
func rebuild(t *testing.T, s *sqlStore, from int64, sum func(prev []byte, e *AuditEvent) []byte) {
	t.Helper()
	ctx := context.Background()
	dropAuditTrigger(t, s)
	all, err := s.ListAudit(ctx, AuditFilter{})
	must(t, err)
	var prev []byte
	for _, e := range all {
		if e.Seq < from {
			prev = e.Hash
			continue
		}
		if e.Seq == from {
			e.Outcome = "success"
		}
		e.PrevHash = prev
		e.Hash = sum(prev, &e)
		_, err := s.be.writer().exec(ctx, "UPDATE audit_log SET outcome = ?, prev_hash = ?, hash = ? WHERE seq = ?", e.Outcome, e.PrevHash, e.Hash, e.Seq)
		must(t, err)
		prev = e.Hash
	}
	_, err = s.be.writer().exec(ctx, "UPDATE audit_head SET hash = ? WHERE id = 1", prev)
	must(t, err)
}

// insertLegacy writes n records the way versions before the keyed chain
// did (unkeyed SHA-256), as a database carried over from them holds.
func insertLegacy(t *testing.T, s *sqlStore, n int, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	var (
		seq  int64
		prev []byte
	)
	must(t, s.be.reader().queryRow(ctx, qAuditHead).Scan(&seq, &prev))
	for range n {
		e := AuditEvent{Seq: seq + 1, Time: t0.Add(time.Duration(seq) * time.Second), Type: "kba.failed", Actor: "voiceauth-ivr", Outcome: "fail", PrevHash: prev}
		e.Hash = auditHash(prev, &e)
		_, err := s.be.writer().exec(ctx, qAuditInsert, e.Seq, micros(e.Time), e.Type, e.Actor, e.Subject, e.Number, e.CallRef, e.Outcome, "{}", e.PrevHash, e.Hash)
		must(t, err)
		_, err = s.be.writer().exec(ctx, qAuditHeadUpdate, e.Seq, e.Hash)
		must(t, err)
		seq, prev = e.Seq, e.Hash
	}
}

// auditKeySuite is the keyed chain's and the pins' part of the store
// contract, run by runStoreSuite on both backends.
func auditKeySuite(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	fill := func(t *testing.T, st Store, n int) {
		t.Helper()
		for i := range n {
			must(t, st.AppendAudit(ctx, &AuditEvent{Type: "kba.failed", Outcome: "fail", Detail: map[string]string{"attempt": fmt.Sprint(i)}}))
		}
	}
	verify := func(t *testing.T, st Store) AuditReport {
		t.Helper()
		rep, err := st.VerifyAudit(ctx)
		must(t, err)
		return rep
	}

	t.Run("AuditKeyed", func(t *testing.T) {
		st := open(t)
		fill(t, st, 3)
		all, err := st.ListAudit(ctx, AuditFilter{})
		must(t, err)
		cur := internals(t, st).audit.current
		for _, e := range all {
			v, legacy, ok := auditValueVersion(e.Hash)
			if !ok || legacy || v != cur {
				t.Fatalf("record %d has chain value %x, want keyed under version %d", e.Seq, e.Hash, cur)
			}
		}
		if rep := verify(t, st); rep.Problem != "" || rep.Records != 3 || rep.Legacy != 0 {
			t.Fatalf("VerifyAudit = %+v", rep)
		}
	})

	// An attacker without the key rewrites a record and recomputes the rest
	// of the chain with plain SHA-256, as the unkeyed chain allowed.
	t.Run("AuditRebuiltWithoutKey", func(t *testing.T) {
		for _, from := range []int64{1, 3} {
			t.Run(fmt.Sprint("from ", from), func(t *testing.T) {
				st := open(t)
				fill(t, st, 5)
				rebuildPlain(t, internals(t, st), from)
				rep := verify(t, st)
				if rep.Problem == "" || rep.FirstBad != from {
					t.Fatalf("VerifyAudit after a plain-hash rebuild from %d = %+v", from, rep)
				}
			})
		}
		// Nor does a guessed key help.
		st := open(t)
		fill(t, st, 5)
		wrong, _ := newAuditKeyring(map[uint32][]byte{internals(t, st).audit.current: bytes.Repeat([]byte{0x42}, 32)}, internals(t, st).audit.current)
		rebuild(t, internals(t, st), 2, func(prev []byte, e *AuditEvent) []byte { h, _ := wrong.sum(wrong.current, prev, e); return h })
		if rep := verify(t, st); rep.FirstBad != 2 || !strings.Contains(rep.Problem, "modified") {
			t.Fatalf("VerifyAudit after a rebuild under another key = %+v", rep)
		}
	})

	// A chain begun by an earlier (unkeyed) version gets the AuditKeyed
	// record, then continues keyed; the old records stay verifiable, and
	// rewriting them, or passing keyed records off as old ones, is caught.
	t.Run("AuditLegacyChain", func(t *testing.T) {
		st := open(t)
		s := internals(t, st)
		insertLegacy(t, s, 3, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		if rep := verify(t, st); rep.FirstBad != 1 || !strings.Contains(rep.Problem, "vouches") {
			t.Fatalf("an unkeyed chain with no keyed record verified: %+v", rep)
		}
		must(t, s.startKeyedChain(ctx)) // what Open does
		must(t, s.startKeyedChain(ctx)) // once only
		fill(t, st, 2)
		all, err := st.ListAudit(ctx, AuditFilter{})
		must(t, err)
		if len(all) != 6 || all[3].Type != AuditKeyed || all[3].Detail["legacy_through_seq"] != "3" ||
			all[3].Detail["legacy_head"] != hex.EncodeToString(all[2].Hash) || !bytes.Equal(all[3].PrevHash, all[2].Hash) {
			t.Fatalf("chain after keying: %+v", all)
		}
		if rep := verify(t, st); rep.Problem != "" || rep.Legacy != 3 || rep.Records != 6 {
			t.Fatalf("VerifyAudit = %+v", rep)
		}
		// A rewrite of an old record with a recomputed plain hash breaks the
		// keyed marker's link to it.
		rebuildPlain(t, s, 2)
		if rep := verify(t, st); rep.Problem == "" {
			t.Fatal("rewriting an unkeyed record went unnoticed")
		}
	})

	t.Run("AuditLegacyDowngrade", func(t *testing.T) {
		st := open(t)
		s := internals(t, st)
		insertLegacy(t, s, 2, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		fill(t, st, 3) // the first append keys the chain (record 3 is the marker)
		// Pass keyed records off as old ones: plain hashes from record 4 on.
		rebuildPlain(t, s, 4)
		if rep := verify(t, st); rep.FirstBad != 4 || !strings.Contains(rep.Problem, "not keyed") {
			t.Fatalf("VerifyAudit after a downgrade = %+v", rep)
		}
	})

	t.Run("AuditKeyRotation", func(t *testing.T) {
		st := open(t)
		s := internals(t, st)
		fill(t, st, 2)
		v1 := s.audit.current
		rotated, err := newAuditKeyring(map[uint32][]byte{v1: s.audit.keys[v1], v1 + 1: bytes.Repeat([]byte{7}, 32)}, v1+1)
		must(t, err)
		s.audit = rotated
		fill(t, st, 2)
		all, _ := st.ListAudit(ctx, AuditFilter{})
		if v, _, _ := auditValueVersion(all[1].Hash); v != v1 {
			t.Fatalf("record 2 under version %d", v)
		}
		if v, _, _ := auditValueVersion(all[3].Hash); v != v1+1 {
			t.Fatalf("record 4 under version %d", v)
		}
		if rep := verify(t, st); rep.Problem != "" {
			t.Fatalf("VerifyAudit across a rotation = %+v", rep)
		}
		// Dropping the old key from the keyring is reported, not ignored.
		s.audit, _ = newAuditKeyring(map[uint32][]byte{v1 + 1: bytes.Repeat([]byte{7}, 32)}, v1+1)
		if rep := verify(t, st); rep.FirstBad != 1 || !strings.Contains(rep.Problem, "does not hold") {
			t.Fatalf("VerifyAudit without the old key = %+v", rep)
		}
	})

	t.Run("AuditAnchor", func(t *testing.T) {
		an := func(t *testing.T, st Store) AuditAnchorer {
			a, ok := st.(AuditAnchorer)
			if !ok {
				t.Fatalf("%T is not an AuditAnchorer", st)
			}
			return a
		}
		check := func(t *testing.T, st Store, a AuditAnchor) AuditReport {
			t.Helper()
			rep, err := an(t, st).VerifyAuditAnchor(ctx, a)
			must(t, err)
			return rep
		}
		anchored := func(t *testing.T, n int) (Store, AuditAnchor) {
			st := open(t)
			fill(t, st, n)
			a, err := an(t, st).AuditHead(ctx)
			must(t, err)
			if a.Seq != int64(n) || len(a.Hash) != auditMACLen {
				t.Fatalf("AuditHead = %+v", a)
			}
			fill(t, st, 3) // the chain goes on after the anchor
			return st, a
		}

		t.Run("intact", func(t *testing.T) {
			st, a := anchored(t, 4)
			if rep := check(t, st, a); rep.Problem != "" || rep.Records != 7 {
				t.Fatalf("VerifyAuditAnchor = %+v", rep)
			}
		})
		// Someone with the audit key (or a copy of the secrets file)
		// rebuilds the chain: VerifyAudit cannot tell, the anchor can.
		t.Run("rebuilt with the key", func(t *testing.T) {
			st, a := anchored(t, 4)
			s := internals(t, st)
			rebuild(t, s, 2, func(prev []byte, e *AuditEvent) []byte { h, _ := s.audit.sum(s.audit.current, prev, e); return h })
			if rep := verify(t, st); rep.Problem != "" {
				t.Fatalf("a keyed rebuild should pass VerifyAudit (that is what anchors are for): %+v", rep)
			}
			if rep := check(t, st, a); rep.FirstBad != 4 || !strings.Contains(rep.Problem, "rebuilt") {
				t.Fatalf("VerifyAuditAnchor after a rebuild = %+v", rep)
			}
		})
		t.Run("truncated with its head", func(t *testing.T) {
			st, a := anchored(t, 4)
			s := internals(t, st)
			all, _ := st.ListAudit(ctx, AuditFilter{})
			_, err := s.be.writer().exec(ctx, "DELETE FROM audit_log WHERE seq > 2")
			must(t, err)
			_, err = s.be.writer().exec(ctx, "UPDATE audit_head SET seq = 2, hash = ? WHERE id = 1", all[1].Hash)
			must(t, err)
			if rep := verify(t, st); rep.Problem != "" {
				t.Fatalf("a truncation with its head passes VerifyAudit alone: %+v", rep)
			}
			if rep := check(t, st, a); rep.FirstBad != 4 || !strings.Contains(rep.Problem, "truncated") {
				t.Fatalf("VerifyAuditAnchor after truncation = %+v", rep)
			}
		})
		t.Run("forged anchor", func(t *testing.T) {
			st, a := anchored(t, 4)
			a.Hash = append([]byte(nil), a.Hash...)
			a.Hash[len(a.Hash)-1] ^= 1
			if rep := check(t, st, a); rep.FirstBad != 4 || rep.Problem == "" {
				t.Fatalf("VerifyAuditAnchor(wrong value) = %+v", rep)
			}
		})
		t.Run("purged", func(t *testing.T) {
			st := open(t)
			clk := newFakeClock()
			internals(t, st).now = clk.Now
			for range 6 {
				must(t, st.AppendAudit(ctx, &AuditEvent{Type: "token.issued"}))
				clk.Advance(time.Hour)
			}
			all, _ := st.ListAudit(ctx, AuditFilter{})
			exact := AuditAnchor{Seq: 4, Hash: all[3].Hash}
			older := AuditAnchor{Seq: 2, Hash: all[1].Hash}
			n, err := st.PurgeAudit(ctx, all[4].Time) // records 1..4
			if err != nil || n != 4 {
				t.Fatalf("PurgeAudit = %d, %v", n, err)
			}
			if rep := check(t, st, exact); rep.Problem != "" {
				t.Fatalf("anchor on the last purged record (named by the checkpoint) = %+v", rep)
			}
			if rep := check(t, st, older); rep.FirstBad != 2 || !strings.Contains(rep.Problem, "purged") {
				t.Fatalf("anchor on a purged record = %+v", rep)
			}
		})
		if _, err := an(t, open(t)).VerifyAuditAnchor(ctx, AuditAnchor{}); err == nil {
			t.Fatal("an empty anchor was accepted")
		}
	})

	t.Run("PinsListDelete", func(t *testing.T) {
		st := open(t)
		if ps, err := st.ListPins(ctx); err != nil || len(ps) != 0 {
			t.Fatalf("ListPins(empty) = %v, %v", ps, err)
		}
		for _, srv := range []string{"https://b.example/mcp", "https://a.example/mcp"} {
			must(t, st.PutPin(ctx, &Pin{Server: srv, KeyID: "kid-" + srv, Thumbprint: "tp-" + srv, Key: []byte(`{"kty":"OKP"}`)}))
		}
		ps, err := st.ListPins(ctx)
		if err != nil || len(ps) != 2 || ps[0].Server != "https://a.example/mcp" || ps[1].KeyID != "kid-https://b.example/mcp" ||
			ps[0].Thumbprint != "tp-https://a.example/mcp" || string(ps[0].Key) != `{"kty":"OKP"}` || ps[0].PinnedAt.IsZero() {
			t.Fatalf("ListPins = %+v, %v", ps, err)
		}
		e := &AuditEvent{Type: "mcp.pin.cleared", Actor: "operator", Detail: map[string]string{"server": "https://a.example/mcp"}}
		must(t, st.DeletePin(ctx, "https://a.example/mcp", e))
		if e.Seq == 0 || len(e.Hash) != auditMACLen {
			t.Fatalf("DeletePin did not fill the audit event: %+v", e)
		}
		if _, err := st.GetPin(ctx, "https://a.example/mcp"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetPin after DeletePin = %v", err)
		}
		if ps, _ := st.ListPins(ctx); len(ps) != 1 || ps[0].Server != "https://b.example/mcp" {
			t.Fatalf("ListPins after delete = %+v", ps)
		}
		// Nothing to delete: ErrNotFound, and nothing is audited.
		if err := st.DeletePin(ctx, "https://a.example/mcp", &AuditEvent{Type: "mcp.pin.cleared"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeletePin(missing) = %v", err)
		}
		evs, _ := st.ListAudit(ctx, AuditFilter{Type: "mcp.pin.cleared"})
		if len(evs) != 1 || evs[0].Detail["server"] != "https://a.example/mcp" {
			t.Fatalf("audit of pin clearing = %+v", evs)
		}
		if rep := verify(t, st); rep.Problem != "" {
			t.Fatalf("VerifyAudit = %+v", rep)
		}
	})
}

// Reopening a database written by an earlier version keys its chain at
// once (Open appends the AuditKeyed record), and VerifyAudit accepts the old
// records it vouches for.
func TestSQLiteOpenKeysLegacyChain(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	st, err := Open(ctx, path, Options{Sealer: testSealer(t)})
	must(t, err)
	insertLegacy(t, internals(t, st), 4, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	must(t, st.Close())
	st, err = Open(ctx, path, Options{Sealer: testSealer(t)})
	must(t, err)
	defer st.Close()
	all, err := st.ListAudit(ctx, AuditFilter{})
	must(t, err)
	if len(all) != 5 || all[4].Type != AuditKeyed || all[4].Detail["legacy_through_seq"] != "4" {
		t.Fatalf("after reopening: %+v", all)
	}
	rep, err := st.VerifyAudit(ctx)
	if err != nil || rep.Problem != "" || rep.Legacy != 4 {
		t.Fatalf("VerifyAudit = %+v, %v", rep, err)
	}
}

// The database file, its -wal and -shm, and a directory the store creates
// are owner-only after opening and writing, whatever the umask; files left
// world-readable by older versions are tightened on open.
func TestSQLiteFileModes(t *testing.T) {
	old := syscall.Umask(0) // the most permissive umask: modes are then exactly what the code asks for
	defer syscall.Umask(old)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "voiceauth.db")
	st, err := Open(ctx, path, Options{Sealer: testSealer(t)})
	must(t, err)
	must(t, st.CreateCall(ctx, &Call{ID: "CA1", State: []byte("s")}))
	must(t, st.AppendAudit(ctx, &AuditEvent{Type: "kba.failed"}))
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		must(t, err)
		return fi.Mode().Perm()
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if m := mode(p); m&0o077 != 0 {
			t.Errorf("%s has mode %04o, readable by group or others", filepath.Base(p), m)
		}
	}
	if m := mode(dir); m != 0o700 {
		t.Errorf("store directory has mode %04o, want 0700", m)
	}
	must(t, st.Close())

	// An older version's files, world-readable.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			must(t, os.Chmod(p, 0o644))
		}
	}
	st, err = Open(ctx, path, Options{Sealer: testSealer(t)})
	must(t, err)
	defer st.Close()
	must(t, st.AppendAudit(ctx, &AuditEvent{Type: "kba.failed"}))
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if m := mode(p); m&0o077 != 0 {
			t.Errorf("reopened: %s has mode %04o", filepath.Base(p), m)
		}
	}
}
