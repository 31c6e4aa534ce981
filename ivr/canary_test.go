package ivr

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voiceauth/voiceauth/internal/canary"
)

// leakyBackend fails with errors whose text carries the caller's answers, as
// a careless adapter might: ivr must never pass that text on.
type leakyBackend struct{ *fakeBackend }

func (l leakyBackend) Submit(ctx context.Context, call CallInfo, flow []byte, a Answers, stepUp bool) (AuthStep, []byte, error) {
	if a.SSNLast4 == "4567" && a.Name == "" {
		return AuthStep{}, nil, fmt.Errorf("as said no to %s %s %s", a.Name, a.Birthdate, a.SSNLast4)
	}
	return l.fakeBackend.Submit(ctx, call, flow, a, stepUp)
}

// Seeded DOB, SSN-4 and OTP values never reach logs, metrics or error strings.
func TestCanaryNoPHIInLogsOrMetrics(t *testing.T) {
	var codes []string
	var logs, metrics []string
	for _, fe := range []string{FrontendGather, FrontendRelay} {
		for _, name := range []string{"OTP step-up then refill", "wrong answers then transfer", "backend down transfers", "happy path by keypad"} {
			var conv conversation
			for _, c := range conversations {
				if c.name == name {
					conv = c
				}
			}
			f := newFixture(t, fe, nil)
			sid := "CA0000000000000000000000000000c" + strconv.Itoa(len(logs))
			var r runner = &webhookRunner{f: f}
			if fe == FrontendRelay {
				r = &relayRunner{f: f}
			}
			for n, s := range conv.steps {
				if s.before != nil {
					s.before(f)
				}
				if s.otp {
					s.digits = f.be.code(sid)
					codes = append(codes, s.digits)
				}
				if n == 0 {
					r.start(sid)
				} else {
					r.do(s)
				}
			}
			r.close()
			f.waitEndedIf(sid)
			logs = append(logs, f.logs.String())
			mfs, err := f.reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			metrics = append(metrics, fmt.Sprint(mfs))
		}
	}
	canaries := append([]string{"1980-03-03", "03031980", "4567", "March 3", "Maria", "Garcia", "+15555550101", "Lisinopril"}, codes...)
	all := strings.Join(append(logs, metrics...), "\n")
	if !strings.Contains(all, "voiceauth_ivr_calls_total") || !strings.Contains(all, "call:") {
		t.Fatal("no logs or metrics captured; the canary would prove nothing")
	}
	for _, c := range canaries {
		if c != "" && canary.Leaks(all, c) {
			t.Errorf("canary %q leaked", c)
		}
	}
	// Error strings: a leaky adapter's error text is never logged.
	f := newFixture(t, FrontendGather, func(c *Config) { c.Auth = leakyBackend{newFakeBackend()} })
	w := &webhookRunner{f: f}
	w.start("CA0000000000000000000000000000cc")
	st := &State{Answers: Answers{SSNLast4: "4567"}, Call: CallInfo{CallSid: "CAx"}}
	res := f.srv.run(st, &Job{Kind: jobSubmit, Started: f.srv.now()})
	if res.Err == nil || canary.Leaks(f.logs.String(), "4567") || canary.Leaks(errKind(res.Err), "4567") {
		t.Errorf("adapter error text leaked: %q", f.logs.String())
	}
	if k := errKind(errors.New("x 4567")); k != "internal" {
		t.Errorf("errKind of an unknown error = %q, want the fixed kind \"internal\" (never its text, never a Go type)", k)
	}
}

func (f *fixture) waitEndedIf(sid string) {
	_, st := f.state(sid)
	if st.Out.End != "" {
		f.waitEnded(sid)
	}
}

var sentenceWord = regexp.MustCompile(`^[A-Za-z']+[.,!?]?$`)

// Every sentence a caller hears comes from prompts: no string literal of
// three or more English-looking words in ivr's non-test code, except error,
// log and metric-help texts (which a caller never hears).
func TestNoSentencesOutsidePrompts(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		exempt := map[*ast.BasicLit]bool{}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if isErrorOrLog(n.Fun) {
					for _, a := range n.Args {
						if lit, ok := a.(*ast.BasicLit); ok {
							exempt[lit] = true
						}
					}
				}
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok && id.Name == "Help" {
					if lit, ok := n.Value.(*ast.BasicLit); ok {
						exempt[lit] = true
					}
				}
			}
			return true
		})
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || exempt[lit] {
				return true
			}
			s, _ := strconv.Unquote(lit.Value)
			words := 0
			for _, w := range strings.Fields(s) {
				if sentenceWord.MatchString(w) {
					words++
				}
			}
			if words >= 3 {
				t.Errorf("%s: sentence literal %q; put it in prompts/", fset.Position(lit.Pos()), s)
			}
			return true
		})
	}
}

func isErrorOrLog(fun ast.Expr) bool {
	sel, ok := fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	if x, ok := sel.X.(*ast.Ident); ok && (x.Name == "errors" || x.Name == "fmt" && sel.Sel.Name == "Errorf") {
		return true
	}
	switch sel.Sel.Name {
	case "Error", "Warn", "Info", "Debug", "CloseError":
		return true
	}
	return false
}

var _ = prometheus.NewRegistry
