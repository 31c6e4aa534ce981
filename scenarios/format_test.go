package scenarios

import (
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown field", "name: a\ncaller: {from: '+1'}\nturns: [{say: hi, expct: [x]}]\n", "field expct not found"},
		{"no name", "caller: {from: '+1'}\nturns: [{say: hi}]\n", "name: required"},
		{"bad name", "name: Hello World\ncaller: {from: '+1'}\nturns: [{say: hi}]\n", "lower-case"},
		{"two actions", "name: a\ncaller: {from: '+1'}\nturns: [{say: hi, press: '1'}]\n", "exactly one of"},
		{"no action", "name: a\ncaller: {from: '+1'}\nturns: [{expect: [x]}]\n", "exactly one of"},
		{"bad keys", "name: a\ncaller: {from: '+1'}\nturns: [{press: '12a'}]\n", "only 0-9"},
		{"bad transport", "name: a\ntransport: sip\ncaller: {from: '+1'}\nturns: [{say: hi}]\n", "transport \"sip\""},
		{"bad regex", "name: a\ncaller: {from: '+1'}\nturns: [{say: hi, expect: ['/(/']}]\n", "missing closing )"},
		{"bad outcome", "name: a\ncaller: {from: '+1'}\nturns: [{say: hi}]\nexpect: {outcome: happy}\n", "outcome \"happy\""},
		{"unknown fault", "name: a\nfaults: [as_sleepy]\ncaller: {from: '+1'}\nturns: [{say: hi}]\n", "unknown fault"},
		{"bad fault duration", "name: a\nfaults: [as_slow=soon]\ncaller: {from: '+1'}\nturns: [{say: hi}]\n", "bad duration"},
		{"relay-only action", "name: a\ncaller: {from: '+1'}\nturns: [{send_raw: ['{']}]\n", "need transport: relay"},
		{"duplicate on relay", "name: a\ntransport: relay\ncaller: {from: '+1'}\nturns: [{say: hi, duplicate: true}]\n", "duplicate needs"},
		{"no from", "name: a\nturns: [{say: hi}]\n", "caller.from required"},
		{"no turns", "name: a\ncaller: {from: '+1'}\n", "at least one turn"},
		{"calls and turns", "name: a\ncaller: {from: '+1'}\nturns: [{say: hi}]\ncalls: [{caller: {from: '+1'}, turns: [{say: hi}]}]\n", "not both"},
		{"bad budget", "name: a\nlatency_budget: fast\ncaller: {from: '+1'}\nturns: [{say: hi}]\n", "bad duration"},
		{"shared with faults", "name: a\nshared: true\nfaults: [as_down]\ncaller: {from: '+1'}\nturns: [{say: hi}]\n", "own stack"},
		{"not yaml", "name: [\n", "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "x.yaml")
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "x.yaml") {
				t.Fatalf("error %q, want it to name the file and contain %q", err, tt.want)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	sc, err := Parse([]byte("name: a\nlatency_budget: 1500\ncaller: {from: '+1'}\nturns: [{say: hi, budget: 2s}]\n"), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Transport != TransportBoth || sc.Language != "en" || len(sc.Transports()) != 2 {
		t.Errorf("defaults: %+v", sc)
	}
	if sc.LatencyBudget != Duration(1500e6) || sc.Turns[0].Budget != Duration(2e9) {
		t.Errorf("durations %v %v", sc.LatencyBudget, sc.Turns[0].Budget)
	}
}

func TestLoadDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/a.yaml", "name: same\ncaller: {from: '+1'}\nturns: [{say: hi}]\n")
	writeFile(t, dir+"/b.yaml", "name: same\ncaller: {from: '+1'}\nturns: [{say: hi}]\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("err = %v", err)
	}
}

// Every shipped scenario parses, and there are enough of them.
func TestShippedScenariosParse(t *testing.T) {
	scs, err := Load(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) < 40 {
		t.Fatalf("%d scenarios, want ≥ 40", len(scs))
	}
	for _, sc := range scs {
		if strings.HasPrefix(sc.File, "testdata") {
			t.Errorf("Load descended into testdata: %s", sc.File)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("name: a\ncaller: {from: '+1'}\nturns: [{say: hi, expect: [x]}]\n"))
	f.Add([]byte("name: b\ncalls: [{repeat: 3, caller: {from: '+1'}, turns: [{press: '12#'}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse(data, "f.yaml")
		if err == nil && (sc.Name == "" || len(sc.AllCalls()) == 0) {
			t.Fatalf("accepted an invalid scenario: %+v", sc)
		}
	})
}

// A shared stack cannot tell one call's AS traffic from another's, so a shared
// scenario may not assert that no token was issued.
func TestSharedScenarioOnlyAssertsAuthenticated(t *testing.T) {
	base := "name: s\nshared: true\ncaller: {from: \"+15555550101\"}\nturns:\n  - say: hi\n"
	for _, bad := range []string{"expect: {outcome: transferred}\n", "expect: {outcome: caller_hung_up}\n", "expect: {token_issued: false}\n"} {
		if _, err := Parse([]byte(base+bad), "s.yaml"); err == nil {
			t.Errorf("shared scenario with %q accepted", bad)
		}
	}
	if _, err := Parse([]byte(base+"expect: {outcome: authenticated}\n"), "s.yaml"); err != nil {
		t.Errorf("shared authenticated scenario refused: %v", err)
	}
}
