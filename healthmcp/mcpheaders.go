package healthmcp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/voiceauth/voiceauth/session"
)

// MCP 2026-07-28 repeats parts of the body in HTTP headers (Mcp-Method,
// Mcp-Name, Mcp-Protocol-Version beside _meta's revision) so that proxies
// can route without reading the body. Two places saying one thing can say
// two things: the gate holds every such header to its own reading of the
// body (readRPC) and refuses a disagreement, so the tool the gate decides
// on, the name a proxy routed on and the call the SDK runs are one.

const (
	hdrProtocolVersion = "Mcp-Protocol-Version"
	hdrMethod          = "Mcp-Method"
	hdrName            = "Mcp-Name"
	hdrParamPrefix     = "Mcp-Param-"
	// modernVersion is the first revision whose requests carry the headers.
	modernVersion = "2026-07-28"
)

// errHeaders is a header set the gate refuses; its text never quotes a value.
type errHeaders struct{ reason string }

func (e *errHeaders) Error() string { return "MCP headers disagree with the body: " + e.reason }

// checkHeaders compares the MCP transport headers with m, the gate's
// reading of the body. Repeated headers are refused (a reader taking the
// first and one taking the last would differ); Mcp-Param-* is refused (no
// tool here declares x-mcp-header); on 2026-07-28 requests Mcp-Method (and
// Mcp-Name for tools/call) are required, and whenever present they must
// match the body exactly.
func checkHeaders(h http.Header, m *rpcMsg) error {
	for _, k := range []string{hdrProtocolVersion, hdrMethod, hdrName} {
		if len(h.Values(k)) > 1 {
			return &errHeaders{reason: "repeated " + k}
		}
	}
	for k := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), hdrParamPrefix) {
			return &errHeaders{reason: "unexpected " + hdrParamPrefix + "* header"}
		}
	}
	pv := h.Get(hdrProtocolVersion)
	if m.HasMetaVersion && m.MetaVersion != pv {
		return &errHeaders{reason: hdrProtocolVersion + " differs from _meta's protocol version"}
	}
	modern := pv >= modernVersion
	method, hasMethod := h.Get(hdrMethod), len(h.Values(hdrMethod)) > 0
	name, hasName := h.Get(hdrName), len(h.Values(hdrName)) > 0
	isCall := m.Method != "" && m.ID != nil
	if m.Method == "" {
		// A response to the server: it has no method or name.
		if hasMethod || hasName {
			return &errHeaders{reason: "method headers on a response"}
		}
		return nil
	}
	if hasMethod && method != m.Method {
		return &errHeaders{reason: hdrMethod + " differs from the body's method"}
	}
	if modern && isCall && !hasMethod {
		return &errHeaders{reason: hdrMethod + " missing"}
	}
	if m.Method == "tools/call" {
		if hasName && name != m.Tool {
			return &errHeaders{reason: hdrName + " differs from the body's tool name"}
		}
		if modern && !hasName {
			return &errHeaders{reason: hdrName + " missing"}
		}
	} else if hasName {
		// prompts/get and resources/read also name things in Mcp-Name; this
		// server has neither, and names no other method.
		return &errHeaders{reason: hdrName + " on a method that names nothing here"}
	}
	return nil
}

// refuseHeaders answers a header/body disagreement: 400 with a JSON-RPC
// error, never a pass to the SDK; audited like other denials.
func (s *Server) refuseHeaders(w http.ResponseWriter, r *http.Request, g *grant, m *rpcMsg, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	var id json.RawMessage
	if m.ID != nil {
		id = m.ID
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": id,
		"error": map[string]any{"code": -32600, "message": fmt.Sprint(err)}})
	subject := session.Pseudonym(s.cfg.LogKey, "patient", g.Subject)
	s.log.Info("mcp request denied", "subject", subject, "tool", m.Tool, "reason", "header_mismatch", "status", http.StatusBadRequest)
	s.audit(r.Context(), "mcp.denied", subject, "denied", map[string]string{"tool": m.Tool, "reason": "header_mismatch", "client_id": g.ClientID, "acr": g.ACR})
}
