package healthmcp

import (
	"net/http"
	"slices"
)

// decide applies a tool's policy to a verified token's scopes and acr and
// to the argument names of the call. Both the gate (on its reading of the
// body) and every tool handler (on the SDK's reading, with the SDK's
// TokenInfo) call it: a gate that is ever fooled still meets the handler.
func decide(tool string, scopes []string, acr string, args []string) (denial, bool) {
	p, ok := toolPolicies[tool]
	if !ok {
		return denial{status: http.StatusForbidden, err: "access_denied", reason: "unknown_tool"}, false
	}
	for _, a := range args {
		if !slices.Contains(p.args, a) {
			// Tools act on the token's patient only; any other argument
			// (patient_id, mrn, …) is an attempt to reach another record.
			return denial{status: http.StatusForbidden, err: "access_denied", reason: "unexpected_argument"}, false
		}
	}
	if !slices.Contains(scopes, p.scope) {
		return denial{status: http.StatusForbidden, err: "insufficient_scope", scope: p.scope, reason: "insufficient_scope"}, false
	}
	if p.acr != "" && acrRank(acr) < acrRank(p.acr) {
		return denial{status: http.StatusUnauthorized, err: "insufficient_user_authentication", acr: p.acr, reason: "acr_too_low"}, false
	}
	return denial{}, true
}

// checkCall is the gate's decision on one message it read. Methods other
// than tools/call reach no patient data; a tools/call for a tool this
// server does not have is left to the SDK's "unknown tool" answer.
func checkCall(g *grant, m *rpcMsg) (denial, bool) {
	if m.Method != "tools/call" {
		return denial{}, true
	}
	if _, ok := toolPolicies[m.Tool]; !ok {
		return denial{}, true
	}
	return decide(m.Tool, g.Scopes, g.ACR, m.Args)
}
