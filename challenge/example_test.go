package challenge_test

import (
	"context"
	"fmt"
	"os"

	"github.com/voiceauth/voiceauth/challenge"
)

// exampleTB lets an Example build the real stack.
type exampleTB struct{ cleanups []func() }

func (e *exampleTB) Helper()           {}
func (e *exampleTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }
func (e *exampleTB) Cleanup(f func())  { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) TempDir() string {
	d, err := os.MkdirTemp("", "challenge-example")
	if err != nil {
		panic(err)
	}
	e.Cleanup(func() { os.RemoveAll(d) })
	return d
}
func (e *exampleTB) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// Example_flow drives one caller through the reference AS: discovery, the
// answers one turn at a time, the code, the token.
func Example_flow() {
	tb := &exampleTB{}
	defer tb.close()
	stack := newRealStack(tb, nil) // AS on loopback + an MCP server's 401/PRM
	ctx := context.Background()

	c := challenge.New(challenge.Config{ClientID: "voiceauth-ivr", ClientSecret: ivrSecret})
	d, err := c.Discover(ctx, stack.mcpURL)
	if err != nil {
		panic(err)
	}
	f, _ := c.NewFlow(d, "", "call-ref-example") // scope from the 401: appointments:read
	for _, a := range []challenge.Answers{
		{Name: "Maria Garcia", CallerPhone: "+15555550101", StirVerstat: "TN-Validation-Passed-A"},
		{Birthdate: "1980-03-03"},
		{SSNLast4: "4567"},
	} {
		res, err := c.Submit(ctx, f, a)
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Outcome, res.Need)
		if res.Outcome == challenge.Code {
			tok, err := c.Redeem(ctx, f, res.Code)
			if err != nil {
				panic(err)
			}
			fmt.Println(tok.Scope, tok.Resource == stack.mcpURL)
		}
	}
	// Output:
	// NeedMore [kba_birthdate kba_ssn_last4]
	// NeedMore [kba_ssn_last4]
	// Code []
	// appointments:read true
}
