package healthmcp_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/healthmcp"
	"github.com/voiceauth/voiceauth/session"
)

// rawSession is an MCP client written by hand, to send bodies no SDK
// client would: it initializes a real session over HTTP and then posts
// arbitrary bytes on it.
type rawSession struct {
	t       *testing.T
	url     string
	token   string
	version string
	id      string
	// initialized: later requests carry Mcp-Protocol-Version.
	initialized bool
}

func openRaw(t *testing.T, st *stack, token, version string) *rawSession {
	t.Helper()
	rs := &rawSession{t: t, url: st.url, token: token, version: version}
	status, body, h := rs.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + version +
		`","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}`)
	if status != http.StatusOK || !strings.Contains(body, `"serverInfo"`) {
		t.Fatalf("initialize: %d %s", status, body)
	}
	// healthmcp is stateless (it speaks 2026-07-28): no session id is
	// issued, and every request stands on its own token.
	if rs.id = h.Get("Mcp-Session-Id"); rs.id != "" {
		t.Fatalf("stateless server issued Mcp-Session-Id %q", rs.id)
	}
	rs.initialized = true
	if status, body, _ := rs.send(`{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}`); status/100 != 2 {
		t.Fatalf("initialized: %d %s", status, body)
	}
	return rs
}

func (rs *rawSession) send(body string) (int, string, http.Header) {
	rs.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rs.url, strings.NewReader(body))
	if err != nil {
		rs.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+rs.token)
	if rs.initialized {
		req.Header.Set("Mcp-Protocol-Version", rs.version)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rs.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// phiMarkers appear in pt-0001's medications or in a refill result and
// nowhere in her appointments.
var phiMarkers = []string{"Lisinopril", "Atorvastatin", "Amoxicillin", `"medications"`, "ready_on", "refill requested"}

func leaksPHI(body string) string {
	for _, m := range phiMarkers {
		if strings.Contains(body, m) {
			return m
		}
	}
	return ""
}

func call(tool string, extra string) string {
	return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}` + extra + `}}`
}

// TestGateRefusesAmbiguousBodies: a token holding only appointments:read at
// the KBA tier must not reach list_medications or request_refill through
// any reading of the body that differs between a lenient decoder and the
// SDK's. Every ambiguous body is refused with 400 (not skipped, not let
// through), and nothing of the medications leaks.
func TestGateRefusesAmbiguousBodies(t *testing.T) {
	const (
		meds   = `{"name":"list_medications","arguments":{}}`
		appts  = `{"name":"list_appointments","arguments":{}}`
		refill = `{"name":"request_refill","arguments":{"medication_id":"rx-1"}}`
	)
	attacks := []struct{ name, body string }{
		{"case-variant Name after name", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_medications","Name":"list_appointments","arguments":{}}}`},
		{"case-variant Name before name", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"Name":"list_appointments","name":"list_medications","arguments":{}}}`},
		{"upper-case NAME", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"request_refill","NAME":"list_appointments","arguments":{"medication_id":"rx-1"}}}`},
		{"Kelvin-sign fold", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"list_medications\",\"arguments\":{},\"\u212aey\":1,\"key\":2}}"},
		{"case-variant Method", `{"jsonrpc":"2.0","id":7,"method":"tools/call","Method":"ping","params":` + meds + `}`},
		{"case-variant Method first", `{"jsonrpc":"2.0","id":7,"Method":"ping","method":"tools/call","params":` + meds + `}`},
		{"case-variant Params decoy", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `,"Params":` + appts + `}`},
		{"duplicate name", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_medications","name":"list_appointments","arguments":{}}}`},
		{"duplicate name reversed", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_appointments","name":"list_medications","arguments":{}}}`},
		{"duplicate method", `{"jsonrpc":"2.0","id":7,"method":"tools/call","method":"ping","params":` + meds + `}`},
		{"duplicate params", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `,"params":` + appts + `}`},
		{"duplicate params reversed", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + appts + `,"params":` + meds + `}`},
		{"nested duplicate in arguments", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"request_refill","arguments":{"medication_id":"rx-1","medication_id":"rx-2"}}}`},
		{"nested case duplicate in _meta", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_medications","arguments":{},"_meta":{"a":1,"A":2}}}`},
		{"wrong-typed Arguments decoy", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_medications","arguments":{},"Arguments":"x"}}`},
		{"wrong-typed Params decoy", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `,"Params":5}`},
		{"wrong-typed arguments", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_medications","arguments":[]}}`},
		{"wrong-typed name", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":["list_medications"],"arguments":{}}}`},
		{"wrong-typed method", `{"jsonrpc":"2.0","id":7,"method":["tools/call"],"params":` + meds + `}`},
		{"wrong-typed params", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":[` + meds + `]}`},
		{"null params", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":null}`},
		{"null name", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":null,"arguments":{}}}`},
		{"null _meta", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_medications","_meta":null}}`},
		{"fractional id", `{"jsonrpc":"2.0","id":7.5,"method":"tools/call","params":` + meds + `}`},
		{"unknown envelope member", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `,"x-tool":"list_appointments"}`},
		{"trailing object", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `}{"jsonrpc":"2.0","id":8,"method":"ping"}`},
		{"trailing garbage", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `} x`},
		{"trailing NUL", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":" + meds + "}\x00"},
		{"batch", `[{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `}]`},
		{"batch with case-variant", `[{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_medications","Name":"list_appointments"}}]`},
		{"batch with a bad element", `[{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `},5]`},
		{"escaped key beside plain", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"n\u0061me":"list_medications","name":"list_appointments","arguments":{}}}`},
		{"escaped key reversed", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_appointments","n\u0061me":"list_medications","arguments":{}}}`},
		{"escaped method key", `{"jsonrpc":"2.0","id":7,"m\u0065thod":"tools/call","method":"ping","params":` + meds + `}`},
		{"lone surrogate in name", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_medications\ud800","arguments":{}}}`},
		{"invalid UTF-8 key", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"list_medications\",\"nam\xff\":\"list_appointments\",\"arguments\":{}}}"},
		{"BOM", "\ufeff" + `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `}`},
		{"NBSP before value", "\u00a0" + `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `}`},
		{"vertical tab", "\v" + `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + meds + `}`},
		{"refill case-variant", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"request_refill","Name":"list_appointments","arguments":{"medication_id":"rx-1"}}}`},
		{"refill Method", `{"jsonrpc":"2.0","id":7,"method":"tools/call","Method":"ping","params":` + refill + `}`},
		{"refill trailing", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + refill + `}]`},
		{"empty body", ``},
		{"whitespace only", " \n\t "},
		{"string body", `"tools/call"`},
	}
	for _, version := range []string{"2025-11-25", "2025-03-26"} { // the older one accepts batches in the SDK
		t.Run(version, func(t *testing.T) {
			st := newStack(t)
			tok := st.mint(t, tokenOpts{sub: "pt-0001", scope: healthmcp.ScopeAppointments, acr: healthmcp.ACRKBA})
			rs := openRaw(t, st, tok, version)
			// The session works: a plain call for the token's own tier succeeds,
			// also written with insignificant whitespace and escapes in values.
			for _, ok := range []string{call("list_appointments", ""), " {\"jsonrpc\" : \"2.0\",\n\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"list_\\u0061ppointments\"}} \n"} {
				status, body, _ := rs.send(ok)
				if status != http.StatusOK || !strings.Contains(body, "Dr. Lee") {
					t.Fatalf("control call: %d %s", status, body)
				}
			}
			for _, a := range attacks {
				t.Run(a.name, func(t *testing.T) {
					before := len(st.audit.all())
					status, body, _ := rs.send(a.body)
					if m := leaksPHI(body); m != "" {
						t.Fatalf("BYPASS: %q reached the response (status %d): %s", m, status, body)
					}
					if status != http.StatusBadRequest {
						t.Fatalf("status %d, want 400 (refused): %s", status, body)
					}
					var rpc struct {
						Error struct {
							Code int `json:"code"`
						} `json:"error"`
					}
					if err := json.Unmarshal([]byte(body), &rpc); err != nil || rpc.Error.Code != -32700 {
						t.Fatalf("body %s is not a JSON-RPC parse error", body)
					}
					ev := st.audit.all()[before:]
					if len(ev) != 1 || ev[0].Type != "mcp.denied" || ev[0].Detail["reason"] != "unreadable_body" ||
						ev[0].Subject != session.Pseudonym(st.logKey, "patient", "pt-0001") {
						t.Fatalf("audit %+v, want one mcp.denied/unreadable_body", ev)
					}
				})
			}
			// The session still serves the caller's own tier afterwards.
			if status, body, _ := rs.send(call("list_appointments", "")); status != http.StatusOK || !strings.Contains(body, "Dr. Lee") {
				t.Fatalf("after the probes: %d %s", status, body)
			}
		})
	}
}

// TestGateDecidesOnWhatTheSDKRuns: with well-formed bodies the gate's tier
// decision holds for the exact call the SDK would run.
func TestGateDecidesOnWhatTheSDKRuns(t *testing.T) {
	st := newStack(t)
	low := openRaw(t, st, st.mint(t, tokenOpts{sub: "pt-0001", scope: healthmcp.ScopeAppointments, acr: healthmcp.ACRKBA}), "2025-11-25")
	for _, body := range []string{
		call("list_medications", ""),
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"request_refill","arguments":{"medication_id":"rx-1"}}}`,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_\u006dedications","arguments":{}}}`,
		// An escaped member name is read unescaped, and the SDK is handed
		// the plain name: one reading, so the tier check applies.
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"n\u0061me":"list_medications","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":7,"m\u0065thod":"tools/call","params":{"name":"list_medications","arguments":{}}}`,
	} {
		status, resp, _ := low.send(body)
		if m := leaksPHI(resp); m != "" || status != http.StatusForbidden {
			t.Fatalf("%s: status %d (want 403), leaked %q", body, status, m)
		}
	}
	full := openRaw(t, st, st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBAOTP}), "2025-11-25")
	status, resp, _ := full.send(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_\u006dedications","arguments":{}}}`)
	if status != http.StatusOK || !strings.Contains(resp, "Lisinopril") {
		t.Fatalf("full tier: %d %s", status, resp)
	}
}
