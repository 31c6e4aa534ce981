package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/internal/cli"
)

var flagLine = regexp.MustCompile(`^  -([a-z][a-z0-9-]*)`)

// checkFlagHelp fails unless text is a usage with a description and every
// flag it lists has a one-line description; it returns the flags listed.
func checkFlagHelp(t *testing.T, what, text string) map[string]bool {
	t.Helper()
	if !strings.HasPrefix(text, "usage: voiceauth ") {
		t.Fatalf("%s: help does not start with a usage line:\n%s", what, text)
	}
	lines := strings.Split(text, "\n")
	if len(lines) < 3 || strings.TrimSpace(lines[2]) == "" {
		t.Errorf("%s: no description under the usage line:\n%s", what, text)
	}
	flags := map[string]bool{}
	for i, l := range lines {
		m := flagLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		flags[m[1]] = true
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "    \t") || strings.TrimSpace(lines[i+1]) == "" {
			t.Errorf("%s: flag -%s has no description", what, m[1])
		}
	}
	return flags
}

// Every command and every action of a command group answers -h and --help
// with its usage on stdout and exit 0, and documents each flag.
func TestEveryCommandHasHelp(t *testing.T) {
	groups := map[string]cli.Group{"keys": keysCmd, "audit": auditCmd, "lockouts": lockoutsCmd, "secrets": secretsCmd, "pins": pinsCmd,
		"clients": clientsCmd, "patients": patientsCmd, "twilio": twilioGroup}
	for name, c := range commands {
		if strings.Contains(c.use, "|") && !strings.Contains(c.use, "--") {
			if _, ok := groups[name]; !ok {
				t.Errorf("%s looks like a command group but the test does not know its actions", name)
			}
		}
		for _, h := range []string{"-h", "--help"} {
			var out, errb strings.Builder
			code := run([]string{name, h}, strings.NewReader(""), &out, &errb)
			if code != 0 {
				t.Errorf("voiceauth %s %s: exit %d, stderr %s", name, h, code, errb.String())
				continue
			}
			if name == "bench" { // one action: its help is the action's
				var bout, berr strings.Builder
				if code := run([]string{name, "webhook", h}, nil, &bout, &berr); code != 0 {
					t.Errorf("voiceauth bench webhook %s: exit %d", h, code)
				}
				checkFlagHelp(t, "bench webhook "+h, bout.String())
				continue
			}
			g, isGroup := groups[name]
			if !isGroup {
				if flags := checkFlagHelp(t, name+" "+h, out.String()); len(flags) == 0 {
					t.Errorf("voiceauth %s %s lists no flags", name, h)
				}
				continue
			}
			for _, a := range g.Actions {
				if !strings.Contains(out.String(), "  "+a.Name+" ") {
					t.Errorf("voiceauth %s %s does not list action %s:\n%s", name, h, a.Name, out.String())
				}
				var aout, aerr strings.Builder
				if code := run([]string{name, a.Name, h}, strings.NewReader(""), &aout, &aerr); code != 0 {
					t.Errorf("voiceauth %s %s %s: exit %d, stderr %s", name, a.Name, h, code, aerr.String())
					continue
				}
				checkFlagHelp(t, name+" "+a.Name+" "+h, aout.String())
			}
		}
	}
}

// An action lists only its own flags: verify has no export filters.
func TestActionHelpListsOwnFlags(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"audit", "verify", "-h"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	flags := checkFlagHelp(t, "audit verify", out.String())
	for _, f := range []string{"patient", "from", "to"} {
		if flags[f] {
			t.Errorf("audit verify -h lists -%s, a flag of audit export", f)
		}
	}
	if !flags["data-dir"] || !flags["store"] {
		t.Errorf("audit verify -h lacks the store flags: %v", flags)
	}
	out.Reset()
	if code := run([]string{"audit", "export", "--help"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if flags := checkFlagHelp(t, "audit export", out.String()); !flags["patient"] || !flags["from"] || !flags["to"] {
		t.Errorf("audit export --help lacks its filters: %v", flags)
	}
}

// Mistakes still fail: an unknown action or flag exits 2 with the usage on stderr.
func TestBadArgumentsExit2(t *testing.T) {
	for _, args := range [][]string{{"keys"}, {"keys", "frobnicate"}, {"audit", "verify", "--patient", "x"}, {"serve", "--no-such-flag"}, {"nonsense"}} {
		var out, errb strings.Builder
		if code := run(args, strings.NewReader(""), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if !strings.Contains(errb.String(), "usage") && !strings.Contains(errb.String(), "Usage") {
			t.Errorf("%v: no usage on stderr: %q", args, errb.String())
		}
	}
}
