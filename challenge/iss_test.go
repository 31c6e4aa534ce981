package challenge

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestChallengeResponseIssuer: RFC 9207 on the challenge endpoint. A code
// or auth_session from a response naming another issuer is never used; a
// code without iss is refused only when the metadata promises iss.
func TestChallengeResponseIssuer(t *testing.T) {
	type tc struct {
		name      string
		promised  bool   // authorization_response_iss_parameter_supported
		status    int    // of the answer
		iss       string // raw JSON of the iss member; "" = absent
		wantCode  bool
		wantNeed  bool // insufficient_authorization accepted
		wantIssEr bool
	}
	const own = "ISSUER" // replaced by the fake AS's issuer
	cases := []tc{
		{"code, no iss, not promised", false, 200, "", true, false, false},
		{"code, own iss, not promised", false, 200, `"ISSUER"`, true, false, false},
		{"code, own iss, promised", true, 200, `"ISSUER"`, true, false, false},
		{"code, no iss, promised", true, 200, "", false, false, true},
		{"code, other iss", false, 200, `"https://evil.example"`, false, false, true},
		{"code, own iss with a trailing slash", true, 200, `"ISSUER/"`, false, false, true},
		{"code, own iss upper-cased", true, 200, `"UPPER"`, false, false, true},
		{"code, empty iss", false, 200, `""`, false, false, true},
		{"code, null iss", false, 200, `null`, false, false, true},
		{"code, numeric iss", false, 200, `42`, false, false, true},
		{"error, no iss, promised", true, 400, "", false, true, false},
		{"error, own iss", true, 400, `"ISSUER"`, false, true, false},
		{"error, other iss", false, 400, `"https://evil.example"`, false, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := newTestClient(t, nil)
			as, _, d := discoverFake(t, cl)
			iss := strings.ReplaceAll(c.iss, own, as.Issuer)
			iss = strings.ReplaceAll(iss, "UPPER", strings.ToUpper(as.Issuer))
			as.mu.Lock()
			as.Meta.AuthorizationResponseISSSupported = c.promised
			as.ChallengeHook = func(w http.ResponseWriter, _ *http.Request, _ url.Values) bool {
				body := `{"authorization_code":"code-from-somewhere"`
				if c.status != 200 {
					body = `{"error":"insufficient_authorization","auth_session":"session-from-somewhere","kba_required":["kba_birthdate"]`
				}
				if iss != "" {
					body += `,"iss":` + iss
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(body + "}"))
				return true
			}
			as.mu.Unlock()
			// Discovery cached the metadata before the flag changed: a fresh
			// client reads it anew.
			cl = newTestClient(t, nil)
			d, err := cl.Discover(context.Background(), d.Resource)
			if err != nil {
				t.Fatal(err)
			}
			if d.AS.AuthorizationResponseISSSupported != c.promised {
				t.Fatal("metadata flag not seen")
			}
			f, err := cl.NewFlow(d, "", "cr")
			if err != nil {
				t.Fatal(err)
			}
			verifier := f.Verifier
			res, err := cl.Submit(context.Background(), f, Answers{Name: goodName})
			switch {
			case c.wantIssEr:
				if !errors.Is(err, ErrResponseIssuer) || res.Outcome != TransportFailure || res.Code != "" {
					t.Fatalf("outcome %v code %q err %v, want a refusal for iss", res.Outcome, res.Code, err)
				}
				if f.AuthSession != "" {
					t.Fatal("auth_session of a refused response adopted")
				}
				// The next request gets a fresh verifier.
				_, _ = cl.Submit(context.Background(), f, Answers{Name: goodName})
				if f.Verifier == verifier {
					t.Fatal("verifier reused after a refused response")
				}
			case c.wantCode:
				if err != nil || res.Outcome != Code || res.Code != "code-from-somewhere" {
					t.Fatalf("outcome %v err %v, want the code", res.Outcome, err)
				}
			case c.wantNeed:
				if err != nil || res.Outcome != NeedMore || f.AuthSession != "session-from-somewhere" {
					t.Fatalf("outcome %v err %v", res.Outcome, err)
				}
			}
		})
	}
}

func TestCheckResponseIssuer(t *testing.T) {
	for _, c := range []struct {
		iss               string
		present, required bool
		ok                bool
	}{
		{"https://as.example", true, true, true},
		{"https://as.example", true, false, true},
		{"", false, false, true},
		{"", false, true, false},
		{"", true, false, false},
		{"https://AS.example", true, false, false},
		{"https://as.example:443", true, false, false},
		{"https://as.example/", true, true, false},
	} {
		err := CheckResponseIssuer("https://as.example", c.iss, c.present, c.required)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrResponseIssuer)) {
			t.Errorf("%+v: err %v", c, err)
		}
	}
}

// clockAt is a settable clock for metadata expiry.
type clockAt struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clockAt) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clockAt) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestCredentialsStayWithTheirIssuer: the MCP server's PRM starts naming
// another authorization server (its metadata issuer changed). The client's
// credentials and the token it holds belong to the first issuer: a flow at
// the new one is refused before any credential or answer is sent, the
// stored token still refreshes at its own issuer only, and a stored token
// set rewritten to name the new issuer is not sent anywhere.
func TestCredentialsStayWithTheirIssuer(t *testing.T) {
	for _, pinned := range []bool{false, true} {
		name := "unpinned (bound on first use)"
		if pinned {
			name = "pinned by Config.Issuer"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clockAt{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
			as1 := newFakeAS(t)
			as2 := newFakeAS(t)
			mcp := newFakeMCP(t, as1.Issuer)
			c := newTestClient(t, func(cfg *Config) {
				cfg.Now = clk.now
				if pinned {
					cfg.Issuer = as1.Issuer
				}
			})
			d1, err := c.Discover(ctx, mcp.URL)
			if err != nil {
				t.Fatal(err)
			}
			_, tok := obtain(t, c, d1)

			// The resource now names AS 2.
			mcp.mu.Lock()
			mcp.PRM.AuthorizationServers = []string{as2.Issuer}
			mcp.mu.Unlock()
			clk.add(2 * time.Hour) // every cached metadata document expired

			posts := func() int {
				n := 0
				for _, r := range as2.requests() {
					if r.Method == http.MethodPost {
						n++
					}
				}
				return n
			}
			if d2, err := c.Discover(ctx, mcp.URL); err == nil {
				if pinned {
					t.Fatal("pinned client discovered an AS its pin does not name")
				}
				f, err := c.NewFlow(d2, "", "cr")
				if err != nil {
					t.Fatal(err)
				}
				res, err := c.Submit(ctx, f, Answers{Name: goodName, Birthdate: goodDOB, SSNLast4: goodSSN})
				if !errors.Is(err, ErrCredentialIssuer) || res.Outcome != TransportFailure {
					t.Fatalf("flow at the new issuer: %v %v", res.Outcome, err)
				}
			} else if !pinned || !errors.Is(err, ErrUntrustedIssuer) {
				t.Fatalf("discover: %v", err)
			}

			// The stored token is not for what the resource names now.
			if d2, err := c.Discover(ctx, mcp.URL); err == nil && d2.Issued(tok) {
				t.Fatal("a token of AS 1 reported as issued by AS 2")
			}
			if !d1.Issued(tok) {
				t.Fatal("the token does not match the discovery it came from")
			}
			// The stored token refreshes at AS 1, its issuer.
			nt, err := c.Refresh(ctx, tok)
			if err != nil || nt.Issuer != as1.Issuer {
				t.Fatalf("refresh at its own issuer: %v %v", nt, err)
			}
			// A stored token set that names AS 2 (rewritten, or from before
			// the move) is not this client's to use there.
			moved := *nt
			moved.Issuer = as2.Issuer
			if _, err := c.Refresh(ctx, &moved); !errors.Is(err, ErrCredentialIssuer) {
				t.Fatalf("refresh at another issuer: %v", err)
			}
			if err := c.Revoke(ctx, &moved); !errors.Is(err, ErrCredentialIssuer) {
				t.Fatalf("revoke at another issuer: %v", err)
			}
			if n := posts(); n != 0 {
				t.Fatalf("AS 2 received %d POSTs carrying this client's credentials", n)
			}
			for _, r := range as2.requests() {
				if r.Header.Get("Authorization") != "" || strings.Contains(r.Body, nt.RefreshToken) {
					t.Fatalf("AS 2 got a credential: %s %s", r.Method, r.Path)
				}
			}
		})
	}
}

// FuzzChallengeIss: any answer body is read without panic, and one the
// check lets through names no issuer but the flow's.
func FuzzChallengeIss(f *testing.F) {
	f.Add(200, []byte(`{"authorization_code":"c","iss":"https://as.example"}`), true)
	f.Add(400, []byte(`{"error":"insufficient_authorization","iss":"https://evil.example"}`), false)
	f.Add(200, []byte(`{"ISS":"x","iss":"https://as.example"}`), false)
	f.Fuzz(func(t *testing.T, status int, body []byte, promised bool) {
		as := ASMetadata{Issuer: "https://as.example", AuthorizationResponseISSSupported: promised}
		if checkChallengeIss(as, as.Issuer, &response{status: status, header: http.Header{}, body: body}) != nil {
			return
		}
		var v struct {
			Iss *string `json:"iss"`
		}
		if decodeJSON(body, &v) != nil {
			return
		}
		if v.Iss != nil && *v.Iss != as.Issuer {
			t.Fatalf("iss %q accepted", *v.Iss)
		}
		if v.Iss == nil && promised && status == 200 {
			t.Fatal("missing iss accepted although promised")
		}
	})
}
