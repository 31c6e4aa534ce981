package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The runner against the fake IVR: passing scripts pass under each transport
// they name, and scripts that should fail do fail (the harness can say no).
func TestRunnerAgainstFake(t *testing.T) {
	scs, err := Load("testdata/fake")
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		for _, tr := range sc.Transports() {
			t.Run(sc.Name+"/"+tr, func(t *testing.T) {
				t.Parallel()
				f := newFakeIVR(t, tr == TransportRelay)
				r := Run(context.Background(), sc, f.target(), 3*time.Second)
				if !r.Passed {
					t.Fatalf("failed: %v", r.Failures)
				}
				if sc.Name == "fake-forged" && f.forbidden != 2 {
					t.Errorf("server rejected %d requests, want 2", f.forbidden)
				}
				if sc.Name != "fake-forged" && f.forbidden != 0 {
					t.Errorf("server rejected %d of our signatures", f.forbidden)
				}
			})
		}
	}
}

func TestRunnerCatchesFailures(t *testing.T) {
	scs, err := Load("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"fake-leak":         "heard record data",
		"fake-wrong-expect": "expected \"/social security/\"",
		"fake-budget":       "budget 1ns",
	}
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			f := newFakeIVR(t, false)
			r := Run(context.Background(), sc, f.target(), 3*time.Second)
			if r.Passed {
				t.Fatal("passed, want a failure")
			}
			if !strings.Contains(strings.Join(r.Failures, "\n"), want[sc.Name]) {
				t.Fatalf("failures %v, want one containing %q", r.Failures, want[sc.Name])
			}
		})
	}
	// wrong-expect also reports the wrong outcome.
}

func TestRunSkipsOtherTransport(t *testing.T) {
	sc, err := Parse([]byte("name: a\ntransport: relay\ncaller: {from: '+1'}\nturns: [{say: hi}]\n"), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeIVR(t, false)
	r := Run(context.Background(), sc, f.target(), time.Second)
	if !r.Skipped || r.Passed {
		t.Fatalf("%+v", r)
	}
}

func TestReplayMainAgainstTarget(t *testing.T) {
	f := newFakeIVR(t, false)
	var out, errb strings.Builder
	code := ReplayMain([]string{"testdata/fake/happy.yaml", "--target", f.srv.URL, "--auth-token", f.token, "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), `"passed": 1`) {
		t.Fatalf("json: %s", out.String())
	}
	out.Reset()
	code = ReplayMain([]string{"--target", f.srv.URL, "--auth-token", f.token, "testdata/bad/wrong-expect.yaml"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "FAIL") {
		t.Fatalf("exit %d, output %s", code, out.String())
	}
}

func TestCallMainAgainstTarget(t *testing.T) {
	f := newFakeIVR(t, true)
	in := strings.NewReader("Maria Garcia\n#03031980\n#4567\nappointments\n/quit\n")
	var out, errb strings.Builder
	code := CallMain([]string{"--target", f.srv.URL, "--auth-token", f.token, "--transport", "relay"}, in, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"full name", "date of birth", "verified", "Dr. Lee", "[you hung up]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("softphone output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "\033[") {
		t.Error("colour codes written to a non-terminal")
	}
}
