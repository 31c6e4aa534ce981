package voiceauth_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/voiceauth/voiceauth"

// allowed is ARCHITECTURE.md's import table: which project packages each
// package's non-test code may import. Sub-packages inherit their parent's row
// and may import their own children. internal/app is the wiring that
// cmd/voiceauth and the scenario runner share, so it may import everything;
// internal/canary is the PHI tests' matcher and imports nothing; internal/cli
// is the subcommands' shared -h/--help plumbing and imports nothing;
// ivr/twiliotest is Twilio's side of the wire for tests (ivr's own tests
// among them, hence it may not import ivr) and imports nothing.
var allowed = map[string][]string{
	"prompts":         {},
	"challenge":       {},
	"session":         {},
	"mcpidentity":     {},
	"mcpclient":       {"mcpidentity"},
	"authserver":      {"challenge", "session"},
	"healthmcp":       {"mcpidentity", "session"},
	"ivr":             {"prompts", "session"},
	"broker":          {"ivr", "session", "challenge", "mcpclient"},
	"ivr/twiliotest":  {},
	"scenarios":       {"*"},
	"internal/app":    {"*"},
	"internal/canary": {},
	"internal/cli":    {},
	"internal/twfake": {},
	"fhirimport":      {},
	"cmd/voiceauth":   {"*"},
}

// TestImportDirection fails on any import that breaks the table.
func TestImportDirection(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "data" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if dir == "." {
			return nil
		}
		row, ok := rowFor(dir)
		if !ok {
			t.Errorf("%s: package directory %q is not in ARCHITECTURE.md's table", path, dir)
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module+"/") {
				continue
			}
			target := strings.TrimPrefix(p, module+"/")
			if !mayImport(dir, row, target) {
				t.Errorf("%s imports %s, which ARCHITECTURE.md does not allow for %s (allowed: %v)", path, target, row, allowed[row])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("only %d files checked; the walk is broken", checked)
	}
}

// rowFor finds the table row of a package directory (longest prefix).
func rowFor(dir string) (string, bool) {
	rows := make([]string, 0, len(allowed))
	for r := range allowed {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return len(rows[i]) > len(rows[j]) })
	for _, r := range rows {
		if dir == r || strings.HasPrefix(dir, r+"/") {
			return r, true
		}
	}
	return "", false
}

func mayImport(dir, row, target string) bool {
	if target == row || strings.HasPrefix(target, row+"/") {
		return true // its own sub-packages (e.g. ivr → ivr/spoken)
	}
	for _, a := range allowed[row] {
		if a == "*" || target == a || strings.HasPrefix(target, a+"/") {
			return true
		}
	}
	return false
}

func TestMayImport(t *testing.T) {
	cases := []struct {
		dir, target string
		want        bool
	}{
		{"ivr", "ivr/spoken", true},
		{"ivr", "session", true},
		{"ivr", "authserver", false},
		{"session", "challenge", false},
		{"challenge", "session", false},
		{"authserver", "challenge", true},
		{"authserver", "ivr", false},
		{"healthmcp", "mcpclient", false},
		{"healthmcp", "mcpidentity", true},
		{"mcpclient", "mcpidentity", true},
		{"mcpidentity", "mcpclient", false},
		{"mcpidentity", "session", false},
		{"healthmcp", "authserver", false},
		{"mcpclient", "session", false},
		{"prompts", "ivr", false},
		{"scenarios", "authserver", true},
		{"ivr/spoken", "prompts", true},
		{"ivr/spoken", "authserver", false},
		{"broker", "ivr", true},
		{"broker", "challenge", true},
		{"broker", "authserver", false},
		{"broker", "healthmcp", false},
		{"broker", "internal/app", false},
		{"ivr", "broker", false},
		{"ivr", "challenge", false},
		{"ivr", "mcpclient", false},
		{"ivr/twiliotest", "ivr", false},
		{"ivr/twiliotest", "session", false},
		{"scenarios", "ivr/twiliotest", true},
	}
	for _, c := range cases {
		row, ok := rowFor(c.dir)
		if !ok {
			t.Fatalf("no row for %s", c.dir)
		}
		if got := mayImport(c.dir, row, c.target); got != c.want {
			t.Errorf("mayImport(%s → %s) = %v, want %v", c.dir, c.target, got, c.want)
		}
	}
}
