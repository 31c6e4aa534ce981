package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestNewSealerValidates(t *testing.T) {
	tests := []struct {
		name    string
		keys    map[uint32][]byte
		current uint32
		ok      bool
	}{
		{"one key", map[uint32][]byte{1: testKey(1)}, 1, true},
		{"two keys", map[uint32][]byte{1: testKey(1), 2: testKey(2)}, 2, true},
		{"empty ring", nil, 1, false},
		{"short key", map[uint32][]byte{1: make([]byte, 16)}, 1, false},
		{"current missing", map[uint32][]byte{1: testKey(1)}, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSealer(tt.keys, tt.current)
			if (err == nil) != tt.ok {
				t.Fatalf("NewSealer err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestSealerBindsCellAndKey(t *testing.T) {
	s1, err := NewSealer(map[uint32][]byte{1: testKey(1)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	s12, err := NewSealer(map[uint32][]byte{1: testKey(1), 2: testKey(2)}, 2)
	if err != nil {
		t.Fatal(err)
	}
	s2only, err := NewSealer(map[uint32][]byte{2: testKey(2)}, 2)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("CANARY-state")
	sealed, err := s1.Seal(plain, "calls", "state_sealed", "CA1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed value contains the plaintext")
	}
	if v, ok := SealedVersion(sealed); !ok || v != 1 {
		t.Fatalf("SealedVersion = %d, %v; want 1, true", v, ok)
	}
	again, _ := s1.Seal(plain, "calls", "state_sealed", "CA1")
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same value are identical: nonce is not random")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	versionSwapped := bytes.Clone(sealed)
	versionSwapped[3] = 2

	tests := []struct {
		name               string
		s                  *Sealer
		sealed             []byte
		table, column, row string
		wantOK             bool
	}{
		{"same cell", s1, sealed, "calls", "state_sealed", "CA1", true},
		{"old key still in ring", s12, sealed, "calls", "state_sealed", "CA1", true},
		{"other row", s1, sealed, "calls", "state_sealed", "CA2", false},
		{"other column", s1, sealed, "calls", "tokens_sealed", "CA1", false},
		{"other table", s1, sealed, "records", "state_sealed", "CA1", false},
		{"boundary shift", s1, sealed, "calls", "state_sealedCA", "1", false},
		{"key removed from ring", s2only, sealed, "calls", "state_sealed", "CA1", false},
		{"tampered", s1, tampered, "calls", "state_sealed", "CA1", false},
		{"version relabelled", s12, versionSwapped, "calls", "state_sealed", "CA1", false},
		{"truncated", s1, sealed[:10], "calls", "state_sealed", "CA1", false},
		{"empty", s1, nil, "calls", "state_sealed", "CA1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Open(tt.sealed, tt.table, tt.column, tt.row)
			if tt.wantOK {
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("Open = %q, %v; want plaintext", got, err)
				}
				return
			}
			if !errors.Is(err, ErrUnsealable) {
				t.Fatalf("Open err = %v, want ErrUnsealable", err)
			}
			if bytes.Contains([]byte(err.Error()), plain) {
				t.Fatal("error carries plaintext")
			}
		})
	}
}

func TestSealEmptyPlaintext(t *testing.T) {
	s, _ := NewSealer(map[uint32][]byte{7: testKey(7)}, 7)
	sealed, err := s.Seal(nil, "t", "c", "r")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Open(sealed, "t", "c", "r")
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Open(empty) = %v, %v", got, err)
	}
}

func TestPseudonym(t *testing.T) {
	key := []byte("log-hash-key")
	tests := []struct {
		kind, value, other string
	}{
		{"number", "+15555550123", "+15555550124"},
		{"patient", "pt-0001", "pt-0002"},
	}
	for _, tt := range tests {
		got := Pseudonym(key, tt.kind, tt.value)
		if len(got) != len(tt.kind)+1+16 || got[:len(tt.kind)+1] != tt.kind+":" {
			t.Fatalf("Pseudonym = %q: want kind: + 16 hex digits", got)
		}
		if got != Pseudonym(key, tt.kind, tt.value) {
			t.Fatal("not stable")
		}
		if got == Pseudonym(key, tt.kind, tt.other) || got == Pseudonym([]byte("other"), tt.kind, tt.value) {
			t.Fatal("collides across value or key")
		}
		if bytes.Contains([]byte(got), []byte(tt.value)) {
			t.Fatal("pseudonym leaks the value")
		}
	}
	// Known answer: HMAC-SHA256("k", "number|+15555550123"), first 8 bytes.
	if got, want := Pseudonym([]byte("k"), "number", "+15555550123"), "number:"+knownPseudonym; got != want {
		t.Fatalf("Pseudonym = %q, want %q", got, want)
	}
}

func FuzzSealerOpen(f *testing.F) {
	s, _ := NewSealer(map[uint32][]byte{1: testKey(1)}, 1)
	good, _ := s.Seal([]byte("x"), "t", "c", "r")
	f.Add(good, "r")
	f.Add([]byte{0, 0, 0, 1}, "r")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, sealed []byte, row string) {
		got, err := s.Open(sealed, "t", "c", row)
		if err == nil && (row != "r" || !bytes.Equal(got, []byte("x"))) {
			t.Fatalf("Open accepted forged input for row %q", row)
		}
	})
}

func FuzzSealRoundTrip(f *testing.F) {
	s, _ := NewSealer(map[uint32][]byte{1: testKey(1)}, 1)
	f.Add([]byte("state"), "calls", "state_sealed", "CA1")
	f.Fuzz(func(t *testing.T, plain []byte, table, column, row string) {
		sealed, err := s.Seal(plain, table, column, row)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Open(sealed, table, column, row)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// knownPseudonym was computed independently (Python hmac) for the test above.
const knownPseudonym = "0035dd75f3d0c0fa"

// TestMACMatchesHMAC: the pooled MAC is HMAC-SHA256 over the parts joined
// with "|", under concurrent use, and its pseudonyms are Pseudonym's.
func TestMACMatchesHMAC(t *testing.T) {
	key := []byte("pepper-of-sixteen-bytes")
	m := NewMAC(key)
	key[0] = 'X' // NewMAC keeps its own copy
	want := func(parts ...string) []byte {
		h := hmac.New(sha256.New, []byte("pepper-of-sixteen-bytes"))
		h.Write([]byte(strings.Join(parts, "|")))
		return h.Sum(nil)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id, v := fmt.Sprintf("pt-%d", g), fmt.Sprintf("%04d", i)
				if got := m.Sum(id, "ssn_last4", v); !bytes.Equal(got, want(id, "ssn_last4", v)) {
					t.Errorf("Sum(%s, ssn_last4, %s) = %x", id, v, got)
					return
				}
				if got, w := m.Pseudonym("number", v), Pseudonym([]byte("pepper-of-sixteen-bytes"), "number", v); got != w {
					t.Errorf("Pseudonym = %s, want %s", got, w)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := m.Sum(); !bytes.Equal(got, want()) {
		t.Fatalf("Sum() = %x", got)
	}
}

// TestSealerUpdateWhileInUse: a running instance loads a rotated keyring;
// values sealed by another instance under the new key open, values sealed
// under the old key still open, and new seals use the new key — with
// concurrent use (-race).
func TestSealerUpdateWhileInUse(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	running, err := NewSealer(map[uint32][]byte{1: k1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := running.Seal([]byte("old"), "t", "c", "r")
	rotated, _ := NewSealer(map[uint32][]byte{1: k1, 2: k2}, 2)
	fresh, _ := rotated.Seal([]byte("new"), "t", "c", "r")
	if _, err := running.Open(fresh, "t", "c", "r"); err == nil {
		t.Fatal("the old keyring opened a value sealed under version 2")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			v, err := running.Seal([]byte("x"), "t", "c", "r")
			if err == nil {
				_, err = running.Open(v, "t", "c", "r")
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	// The file now lists only version 2: version 1 stays readable anyway.
	if err := running.Update(map[uint32][]byte{2: k2}, 2); err != nil {
		t.Fatal(err)
	}
	<-done
	for _, v := range [][]byte{old, fresh} {
		if _, err := running.Open(v, "t", "c", "r"); err != nil {
			t.Errorf("after the update: %v", err)
		}
	}
	if running.CurrentVersion() != 2 {
		t.Errorf("current %d, want 2", running.CurrentVersion())
	}
	if err := running.Update(map[uint32][]byte{3: k2[:16]}, 3); err == nil {
		t.Error("a short key was accepted")
	}
	if running.CurrentVersion() != 2 {
		t.Error("a failed update changed the keyring")
	}
}
