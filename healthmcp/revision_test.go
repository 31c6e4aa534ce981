package healthmcp_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/voiceauth/voiceauth/healthmcp"
	"github.com/voiceauth/voiceauth/mcpclient"
)

// wireLog records what the client put on the wire: each POST's JSON-RPC
// method, its Mcp-* headers and whether its params carried _meta.
type wireLog struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []wireReq
}

type wireReq struct {
	method, hdrMethod, hdrName, hdrVersion, session string
	meta                                            bool
}

func (l *wireLog) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.GetBody != nil {
		b, _ := r.GetBody()
		body, _ := io.ReadAll(b)
		var m struct {
			Method string
			Params struct {
				Meta json.RawMessage `json:"_meta"`
			}
		}
		_ = json.Unmarshal(body, &m)
		l.mu.Lock()
		l.reqs = append(l.reqs, wireReq{method: m.Method, hdrMethod: r.Header.Get("Mcp-Method"), hdrName: r.Header.Get("Mcp-Name"),
			hdrVersion: r.Header.Get("Mcp-Protocol-Version"), session: r.Header.Get("Mcp-Session-Id"), meta: len(m.Params.Meta) > 0})
		l.mu.Unlock()
	}
	resp, err := l.base.RoundTrip(r)
	if err == nil && resp.Header.Get("Mcp-Session-Id") != "" {
		l.mu.Lock()
		l.reqs = append(l.reqs, wireReq{method: "<session id issued>"})
		l.mu.Unlock()
	}
	return resp, err
}

// TestWholeCallEachRevision: the identity check, the verified tools/list
// and a tool call against healthmcp, once on each revision set explicitly,
// and once negotiated (which must land on 2026-07-28). The wire shows which
// revision really ran: 2026-07-28 has no initialize, carries _meta and the
// Mcp-Method/Mcp-Name headers; 2025-11-25 initializes. Neither gets a
// session id (the server is stateless).
func TestWholeCallEachRevision(t *testing.T) {
	st := newStack(t)
	tok := st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBAOTP})
	for _, tc := range []struct{ ask, want string }{
		{mcpclient.Version20251125, mcpclient.Version20251125},
		{mcpclient.Version20260728, mcpclient.Version20260728},
		{"", mcpclient.Version20260728},
	} {
		t.Run("ask "+tc.ask, func(t *testing.T) {
			wl := &wireLog{base: http.DefaultTransport}
			cl := mcpclient.New(mcpclient.Config{Pins: newPins(), Now: clock, ProtocolVersion: tc.ask, HTTPClient: &http.Client{Transport: wl},
				Policy: mcpclient.Policy{Mode: mcpclient.PolicyPinned, RequireExtSignature: true}})
			s, err := cl.Connect(t.Context(), st.url, &tokens{list: []string{tok}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if v := s.ProtocolVersion(); v != tc.want {
				t.Fatalf("version %q, want %q", v, tc.want)
			}
			if n := len(s.Tools()); n != 3 {
				t.Fatalf("%d verified tools", n)
			}
			res, err := s.CallTool(t.Context(), "request_refill", map[string]any{"medication_id": "rx-1"})
			if err != nil {
				t.Fatal(err)
			}
			if got := structured(t, res); !strings.Contains(got, `"status":"requested"`) {
				t.Fatalf("refill %s", got)
			}
			wl.mu.Lock()
			defer wl.mu.Unlock()
			var methods []string
			sawCall := false
			for _, r := range wl.reqs {
				methods = append(methods, r.method)
				if r.method == "<session id issued>" || r.session != "" {
					t.Fatalf("a session id on the wire: %+v", r)
				}
				if r.method == "initialize" && tc.want == mcpclient.Version20260728 {
					t.Fatalf("2026-07-28 sent initialize: %v", methods)
				}
				if r.method == "server/discover" && tc.ask == mcpclient.Version20251125 {
					t.Fatalf("2025-11-25 probed: %v", methods)
				}
				if r.method != "tools/call" {
					continue
				}
				sawCall = true
				if r.hdrVersion != tc.want {
					t.Fatalf("tools/call Mcp-Protocol-Version %q", r.hdrVersion)
				}
				modern := tc.want == mcpclient.Version20260728
				if modern != (r.hdrMethod == "tools/call" && r.hdrName == "request_refill" && r.meta) {
					t.Fatalf("tools/call shape %+v on %s", r, tc.want)
				}
			}
			if !sawCall {
				t.Fatalf("no tools/call seen: %v", methods)
			}
		})
	}
}

// post2026 sends one 2026-07-28 request by hand with the given headers.
func post2026(t *testing.T, st *stack, token, body string, hdr map[string][]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, st.url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const meta2026 = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"probe","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`

// TestGateHoldsMCPHeadersToBody: the 2026-07-28 headers that repeat the
// body (Mcp-Method, Mcp-Name, Mcp-Protocol-Version beside _meta) are held
// by the gate to its own reading of the body; any disagreement, repetition
// or missing header is refused by the gate (audited as header_mismatch)
// before the SDK runs anything, and nothing of the medications leaks. The
// honest requests pass, on both revisions.
func TestGateHoldsMCPHeadersToBody(t *testing.T) {
	st := newStack(t)
	// Appointments only, at the KBA tier: list_medications is not for it.
	tok := st.mint(t, tokenOpts{sub: "pt-0001", scope: healthmcp.ScopeAppointments, acr: healthmcp.ACRKBA})
	appts := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_appointments","arguments":{},` + meta2026 + `}}`
	meds := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_medications","arguments":{},` + meta2026 + `}}`
	listBody := `{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{` + meta2026 + `}}`
	v := func(s ...string) []string { return s }
	modern := func(method, name string) map[string][]string {
		h := map[string][]string{"Mcp-Protocol-Version": v("2026-07-28"), "Mcp-Method": v(method)}
		if name != "" {
			h["Mcp-Name"] = v(name)
		}
		return h
	}
	with := func(h map[string][]string, k string, vals ...string) map[string][]string {
		out := map[string][]string{}
		for kk, vv := range h {
			out[kk] = vv
		}
		if vals == nil {
			delete(out, k)
		} else {
			out[k] = vals
		}
		return out
	}
	refused := []struct {
		name string
		body string
		hdr  map[string][]string
	}{
		{"Mcp-Name names the allowed tool, body calls another", meds, modern("tools/call", "list_appointments")},
		{"Mcp-Name repeated", appts, with(modern("tools/call", ""), "Mcp-Name", "list_appointments", "list_medications")},
		{"Mcp-Method names another method", appts, modern("tools/list", "list_appointments")},
		{"Mcp-Method repeated", appts, with(modern("", "list_appointments"), "Mcp-Method", "tools/call", "tools/list")},
		{"Mcp-Method missing on 2026-07-28", appts, with(modern("tools/call", "list_appointments"), "Mcp-Method")},
		{"Mcp-Name missing on a 2026-07-28 tools/call", appts, with(modern("tools/call", ""), "Mcp-Name")},
		{"header revision differs from _meta", appts, with(modern("tools/call", "list_appointments"), "Mcp-Protocol-Version", "2025-11-25")},
		{"Mcp-Protocol-Version repeated", appts, with(modern("tools/call", "list_appointments"), "Mcp-Protocol-Version", "2026-07-28", "2025-11-25")},
		{"Mcp-Name on tools/list", listBody, modern("tools/list", "list_medications")},
		{"Mcp-Param header", appts, with(modern("tools/call", "list_appointments"), "Mcp-Param-Patient", "pt-0002")},
		{"2025-11-25 request with a lying Mcp-Name", strings.Replace(meds, meta2026, `"_meta":{}`, 1),
			map[string][]string{"Mcp-Protocol-Version": v("2025-11-25"), "Mcp-Name": v("list_appointments")}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			before := countDenied(st, "header_mismatch")
			status, body := post2026(t, st, tok, tc.body, tc.hdr)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", status, body)
			}
			if m := leaksPHI(body); m != "" {
				t.Fatalf("leaked %q", m)
			}
			if after := countDenied(st, "header_mismatch"); after != before+1 {
				t.Fatalf("not refused by the gate (header_mismatch audits %d → %d): %s", before, after, body)
			}
		})
	}

	// _meta of the wrong shape is a body the gate does not read.
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":"2026-07-28"}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":20260728}}}`,
	} {
		status, resp := post2026(t, st, tok, body, modern("tools/list", ""))
		if status != http.StatusBadRequest || !strings.Contains(resp, "_meta") {
			t.Fatalf("%s: %d %s", body, status, resp)
		}
	}

	// The honest requests: a 2026-07-28 discover, list and call pass.
	for _, ok := range []struct{ body, method, name, want string }{
		{`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{` + meta2026 + `}}`, "server/discover", "", `"supportedVersions"`},
		{listBody, "tools/list", "", `"list_appointments"`},
		{appts, "tools/call", "list_appointments", `"appointments"`},
	} {
		status, body := post2026(t, st, tok, ok.body, modern(ok.method, ok.name))
		if status != http.StatusOK || !strings.Contains(body, ok.want) {
			t.Fatalf("%s: %d %s", ok.method, status, body)
		}
	}
	// And the refused tool stays refused by scope, not by headers.
	status, body := post2026(t, st, tok, meds, modern("tools/call", "list_medications"))
	if status != http.StatusForbidden || leaksPHI(body) != "" {
		t.Fatalf("medications with honest headers: %d %s", status, body)
	}
}

func countDenied(st *stack, reason string) int {
	n := 0
	for _, e := range st.audit.all() {
		if e.Type == "mcp.denied" && e.Detail["reason"] == reason {
			n++
		}
	}
	return n
}
