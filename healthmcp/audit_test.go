package healthmcp_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/voiceauth/voiceauth/healthmcp"
	"github.com/voiceauth/voiceauth/session"
)

// TestAuditEveryPHIReadAndRefill: over real HTTP, every tool call that
// reaches patient data is an audit record naming the tool, the patient's
// pseudonym, the client, the acr and the outcome; refusals are mcp.denied;
// no record carries the data itself.
func TestAuditEveryPHIReadAndRefill(t *testing.T) {
	st := newStack(t)
	s := connect(t, st, &tokens{list: []string{st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBAOTP})}})
	calls := []struct {
		tool string
		args map[string]any
	}{
		{"list_appointments", nil},
		{"list_medications", nil},
		{"request_refill", map[string]any{"medication_id": "rx-1"}},
		{"request_refill", map[string]any{"medication_id": "rx-2"}},
	}
	for _, c := range calls {
		if _, err := s.CallTool(t.Context(), c.tool, c.args); err != nil {
			t.Fatalf("%s: %v", c.tool, err)
		}
	}
	low := connect(t, st, &tokens{list: []string{st.mint(t, tokenOpts{sub: "pt-0001", scope: healthmcp.ScopeAppointments, acr: healthmcp.ACRKBA})}})
	if _, err := low.CallTool(t.Context(), "list_medications", nil); err == nil {
		t.Fatal("appointments-only token read medications")
	}

	pseudo := session.Pseudonym(st.logKey, "patient", "pt-0001")
	want := []string{
		"mcp.read list_appointments ok " + healthmcp.ACRKBAOTP,
		"mcp.read list_medications ok " + healthmcp.ACRKBAOTP,
		"mcp.refill request_refill ok " + healthmcp.ACRKBAOTP,
		"mcp.refill request_refill tool_error " + healthmcp.ACRKBAOTP,
		"mcp.denied list_medications denied " + healthmcp.ACRKBA,
	}
	ev := st.audit.all()
	var got []string
	for _, e := range ev {
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Type, e.Detail["tool"], e.Outcome, e.Detail["acr"]))
		if e.Subject != pseudo || e.Detail["client_id"] != "voiceauth-ivr" || e.Actor != "healthmcp" {
			t.Errorf("record %+v lacks the patient pseudonym or client", e)
		}
		all := fmt.Sprint(e)
		for _, phi := range []string{"Lisinopril", "Atorvastatin", "10 mg", "pt-0001", "Dr. Lee"} {
			if strings.Contains(all, phi) {
				t.Errorf("audit record carries %q: %s", phi, all)
			}
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep, err := st.audit.VerifyAudit(t.Context()); err != nil || rep.Problem != "" {
		t.Fatalf("chain: %+v %v", rep, err)
	}
}
