package scenarios

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// LoadCount is the "nothing lost" check of a load run against an embedded
// stack: what the AS answered (seen on the wire by the Observer) against
// what its audit trail recorded, and every token issued against the
// revocations recorded once the calls ended.
type LoadCount struct {
	Checked          bool `json:"checked"`
	TokensObserved   int  `json:"tokens_observed"`   // AS replies carrying an access token
	TokensAudited    int  `json:"tokens_audited"`    // token.issued records
	CodesAudited     int  `json:"codes_audited"`     // code.issued records
	Revoked          int  `json:"revoked"`           // token.revoked records for access tokens
	AuditLost        int  `json:"audit_lost"`        // tokens observed without their record
	RevocationsLost  int  `json:"revocations_lost"`  // tokens issued and never revoked
	AuthenticatedLow int  `json:"authenticated_low"` // calls authenticated beyond the tokens audited
	ErrorLogs        int  `json:"error_logs"`        // ERROR records (voiceauth_errors_total)
	Rejected         int  `json:"rejected"`          // calls told "all lines are busy"
	IdentityRefused  int  `json:"identity_refused"`  // tool calls refused for server identity
	// Transfers counts the server's transfers by reason (voiceauth_ivr_calls_total).
	Transfers map[string]int `json:"transfers,omitempty"`
	// ErrorKinds counts ERROR records by component/err_kind; Revocations by result.
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	Revocations map[string]int `json:"revocations,omitempty"`
}

// Lost reports whether the run lost anything.
func (c LoadCount) Lost() bool {
	return c.Checked && (c.AuditLost > 0 || c.RevocationsLost > 0 || c.AuthenticatedLow > 0 || c.IdentityRefused > 0)
}

func (c LoadCount) String() string {
	if !c.Checked {
		return "not checked (remote target)"
	}
	return fmt.Sprintf("%d tokens seen at the AS, %d audited (%d codes), %d revoked; lost: %d audit, %d revocations; "+
		"%d ERROR logs, %d busy rejections, %d identity refusals; transfers by reason %v; errors %v; revocations %v", c.TokensObserved, c.TokensAudited, c.CodesAudited,
		c.Revoked, c.AuditLost, c.RevocationsLost, c.ErrorLogs, c.Rejected, c.IdentityRefused, c.Transfers, c.ErrorKinds, c.Revocations)
}

// countLoad waits (up to settle) for the revocations of ended calls to be
// recorded, then counts.
func countLoad(ctx context.Context, target *Target, rep LoadReport, start time.Time, settle time.Duration) LoadCount {
	var c LoadCount
	if target.Backend == nil || target.Observer == nil {
		return c
	}
	c.Checked = true
	for _, e := range target.Observer.ASEvents(start, time.Time{}) {
		if e.TokenIssued {
			c.TokensObserved++
		}
	}
	deadline := time.Now().Add(settle)
	for {
		evs, err := target.Backend.Audit(ctx)
		if err != nil {
			c.AuditLost = -1
			return c
		}
		c.TokensAudited, c.CodesAudited, c.Revoked = 0, 0, 0
		for _, e := range evs {
			switch {
			case e.Type == "token.issued":
				c.TokensAudited++
			case e.Type == "code.issued":
				c.CodesAudited++
			case e.Type == "token.revoked" && e.Detail["type"] == "access_token":
				c.Revoked++
			}
		}
		if c.Revoked >= c.TokensAudited || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.AuditLost = max(0, c.TokensObserved-c.TokensAudited)
	c.RevocationsLost = max(0, c.TokensAudited-c.Revoked)
	c.AuthenticatedLow = max(0, rep.Outcomes[OutcomeAuthenticated]-c.TokensAudited)
	if text, err := target.Backend.MetricsText(); err == nil {
		c.ErrorLogs = sumMetric(text, "voiceauth_errors_total", "")
		c.Rejected = sumMetric(text, "voiceauth_admission_rejected_total", "")
		c.IdentityRefused = sumMetric(text, "voiceauth_mcp_tool_calls_total", `outcome="identity_refused"`)
		c.Transfers = map[string]int{}
		re := regexp.MustCompile(`(?m)^voiceauth_ivr_transfers_total\{[^}]*reason="([^"]*)"[^}]*\} ([0-9.e+]+)$`)
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			v, _ := strconv.ParseFloat(m[2], 64)
			c.Transfers[m[1]] += int(v)
		}
		c.ErrorKinds = labelCounts(text, "voiceauth_errors_total")
		c.Revocations = labelCounts(text, "voiceauth_revocations_total")
	}
	return c
}

// sumMetric adds up every sample of name whose labels contain match.
func sumMetric(text, name, match string) int {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+]+)$`)
	n := 0.0
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if match != "" && !regexp.MustCompile(regexp.QuoteMeta(match)).MatchString(m[1]) {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		n += v
	}
	return int(n)
}

// labelCounts maps each sample's label text of name to its value.
func labelCounts(text, name string) map[string]int {
	out := map[string]int{}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} ([0-9.e+]+)$`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] += int(v)
	}
	return out
}
