package mcpclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/voiceauth/voiceauth/mcpidentity"
)

// TestConcurrentConnectsVerify: many calls connecting at once to the genuine
// server through one shared Config (as the voice service does) must all
// establish its identity and verify its tools. Run with -race.
func TestConcurrentConnectsVerify(t *testing.T) {
	ts := &testServer{key: newKey(t)}
	url := ts.start(t)
	cl := New(Config{Pins: newMemPins(), Policy: Policy{Mode: PolicyPinned, RequireExtSignature: true}})
	const n = 150
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := cl.Connect(t.Context(), url, &staticTokens{tokens: []string{"t"}})
			if err != nil {
				errs <- fmt.Errorf("connect %d: %w", i, err)
				return
			}
			defer s.Close()
			if got := toolNames(s); len(got) != 2 {
				errs <- fmt.Errorf("connect %d: verified tools %v, want echo and other", i, got)
				return
			}
			res, err := s.CallTool(t.Context(), "echo", map[string]any{"message": "hi"})
			if err != nil || res.IsError {
				errs <- fmt.Errorf("call %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestIdentityTransportErrorIsUnavailable: when the server cannot be reached
// for identity/get or identity/challenge (connection dropped, 5xx), that is
// an outage, never an identity refusal: a false security alarm would hand
// every caller to a person and page the security team.
func TestIdentityTransportErrorIsUnavailable(t *testing.T) {
	for _, method := range []string{mcpidentity.MethodGet, mcpidentity.MethodChallenge} {
		for _, mode := range []string{"503", "drop"} {
			t.Run(method+"/"+mode, func(t *testing.T) {
				ts := &testServer{key: newKey(t)}
				ts.gate = func(w http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodPost || !strings.Contains(peekBody(r), `"method":"`+method+`"`) {
						return true
					}
					if mode == "503" {
						http.Error(w, "overloaded", http.StatusServiceUnavailable)
						return false
					}
					hj, ok := w.(http.Hijacker)
					if !ok {
						t.Error("no hijacker")
						return false
					}
					c, _, err := hj.Hijack()
					if err == nil {
						c.Close()
					}
					return false
				}
				url := ts.start(t)
				_, err := New(Config{Pins: newMemPins()}).Connect(context.Background(), url, &staticTokens{tokens: []string{"t"}})
				if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrIdentity) {
					t.Fatalf("err %v, want ErrUnavailable and not ErrIdentity", err)
				}
			})
		}
	}
}
