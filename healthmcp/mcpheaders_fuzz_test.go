package healthmcp

import (
	"net/http"
	"testing"
)

// FuzzCheckHeaders: for any body the gate reads and any Mcp-* header
// values, checkHeaders never panics, and whatever it accepts agrees with the
// gate's reading: a present Mcp-Method is the body's method, a present
// Mcp-Name is the tools/call's tool, a 2026-07-28 tools/call names its tool
// in a header, and _meta's revision is the header's.
func FuzzCheckHeaders(f *testing.F) {
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_medications","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		"2026-07-28", "tools/call", "list_appointments", false)
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`, "2025-11-25", "", "", true)
	f.Add(`{"jsonrpc":"2.0","id":1,"result":{}}`, "", "tools/call", "x", false)
	f.Fuzz(func(t *testing.T, body, version, method, name string, repeat bool) {
		m, err := readRPC([]byte(body))
		if err != nil {
			return
		}
		h := http.Header{}
		for k, v := range map[string]string{hdrProtocolVersion: version, hdrMethod: method, hdrName: name} {
			if v != "" {
				h.Add(k, v)
				if repeat {
					h.Add(k, v)
				}
			}
		}
		if checkHeaders(h, m) != nil {
			return
		}
		if repeat && (version != "" || method != "" || name != "") {
			t.Fatal("repeated header accepted")
		}
		if method != "" && method != m.Method {
			t.Fatalf("Mcp-Method %q accepted for %q", method, m.Method)
		}
		if name != "" && (m.Method != "tools/call" || name != m.Tool) {
			t.Fatalf("Mcp-Name %q accepted for %q %q", name, m.Method, m.Tool)
		}
		if m.Method == "tools/call" && version >= modernVersion && name != m.Tool {
			t.Fatalf("2026-07-28 tools/call of %q accepted without its Mcp-Name", m.Tool)
		}
		if m.HasMetaVersion && m.MetaVersion != version {
			t.Fatalf("_meta revision %q accepted with header %q", m.MetaVersion, version)
		}
	})
}
