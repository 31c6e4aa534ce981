package healthmcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/voiceauth/voiceauth/mcpidentity"
	"github.com/voiceauth/voiceauth/session"
)

type bearer struct{ base http.RoundTripper }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer opaque")
	return b.base.RoundTrip(r)
}

// TestHandlersRecheckWithoutTheGate mounts the SDK with no gate in front (a
// gate fooled by every body) and a verified grant in the context: each tool
// handler still refuses what the grant's scope or acr does not allow, and
// audits it, from the SDK's TokenInfo alone.
func TestHandlersRecheckWithoutTheGate(t *testing.T) {
	sealer, err := session.NewSealer(map[uint32][]byte{1: make([]byte, 32)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := session.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), session.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, _ := mcpidentity.GenerateKey()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s, err := New(Config{Resource: "http://127.0.0.1:1/mcp", Issuer: "http://127.0.0.1:2", JWKSURL: "http://127.0.0.1:2/jwks",
		IdentityKey: id, Store: st, LogKey: []byte("k"), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		g      grant
		tool   string
		args   map[string]any
		reason string // "" = allowed
	}{
		{"appointments-only token, medications", grant{Scopes: []string{ScopeAppointments}, ACR: ACRKBA}, "list_medications", nil, "insufficient_scope"},
		{"appointments-only token, refill", grant{Scopes: []string{ScopeAppointments}, ACR: ACRKBA}, "request_refill", map[string]any{"medication_id": "rx-1"}, "insufficient_scope"},
		{"all scopes at kba, medications", grant{Scopes: []string{ScopeAppointments, ScopeMedications, ScopeRefill}, ACR: ACRKBA}, "list_medications", nil, "acr_too_low"},
		{"all scopes at kba, refill", grant{Scopes: []string{ScopeAppointments, ScopeMedications, ScopeRefill}, ACR: ACRKBA}, "request_refill", map[string]any{"medication_id": "rx-1"}, "acr_too_low"},
		{"medications scope at otp without refill scope", grant{Scopes: []string{ScopeAppointments, ScopeMedications}, ACR: ACRKBAOTP}, "request_refill", map[string]any{"medication_id": "rx-1"}, "insufficient_scope"},
		{"patient argument", grant{Scopes: []string{ScopeAppointments}, ACR: ACRKBA}, "list_appointments", map[string]any{"patient_id": "pt-0002"}, "unexpected_argument"},
		{"own tier", grant{Scopes: []string{ScopeAppointments}, ACR: ACRKBA}, "list_appointments", nil, ""},
		{"full tier", grant{Scopes: []string{ScopeAppointments, ScopeMedications, ScopeRefill}, ACR: ACRKBAOTP}, "request_refill", map[string]any{"medication_id": "rx-1"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			g.Subject, g.ClientID, g.Expiry = "pt-0001", "voiceauth-ivr", time.Now().Add(time.Hour)
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), grantKey{}, &g)))
			}))
			defer hs.Close()
			tr := &mcp.StreamableClientTransport{Endpoint: hs.URL, MaxRetries: -1, DisableStandaloneSSE: true,
				HTTPClient: &http.Client{Transport: bearer{http.DefaultTransport}}}
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(t.Context(), tr, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			before, _ := st.ListAudit(t.Context(), session.AuditFilter{})
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
			after, _ := st.ListAudit(t.Context(), session.AuditFilter{})
			ev := after[len(before):]
			if len(ev) != 1 || ev[0].Subject != session.Pseudonym([]byte("k"), "patient", "pt-0001") ||
				ev[0].Detail["tool"] != tc.tool || ev[0].Detail["client_id"] != "voiceauth-ivr" || ev[0].Detail["acr"] != g.ACR {
				t.Fatalf("audit %+v", ev)
			}
			if tc.reason == "" {
				if err != nil || res.IsError {
					t.Fatalf("allowed call failed: %v %+v", err, res)
				}
				if ev[0].Outcome != "ok" || (ev[0].Type != "mcp.read" && ev[0].Type != "mcp.refill") {
					t.Fatalf("audit %+v, want an ok read/refill", ev[0])
				}
				return
			}
			if err == nil {
				t.Fatalf("handler ran %s for %+v: %+v", tc.tool, tc.g, res)
			}
			for _, m := range []string{"Lisinopril", "ready_on"} {
				if strings.Contains(err.Error(), m) {
					t.Fatalf("error leaks %s: %v", m, err)
				}
			}
			if ev[0].Type != "mcp.denied" || ev[0].Detail["reason"] != tc.reason || ev[0].Detail["where"] != "handler" {
				t.Fatalf("audit %+v, want mcp.denied/%s from the handler", ev[0], tc.reason)
			}
		})
	}
}
