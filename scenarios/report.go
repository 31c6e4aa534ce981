package scenarios

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary counts results.
type Summary struct {
	Passed        int `json:"passed"`
	Failed        int `json:"failed"`
	Skipped       int `json:"skipped"`
	PendingFailed int `json:"pending_failed"`
}

// Summarize counts results; a failing pending scenario counts as PendingFailed.
func Summarize(rs []Result) Summary {
	var s Summary
	for _, r := range rs {
		switch {
		case r.Skipped:
			s.Skipped++
		case r.Passed:
			s.Passed++
		case r.Pending:
			s.PendingFailed++
		default:
			s.Failed++
		}
	}
	return s
}

// WriteTable prints one row per result, then the failures.
func WriteTable(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tSCENARIO\tTRANSPORT\tCALLS\tTURNS\tFIRST WORDS p50\tMAX\tTALK→VERIFIED\tTALK→END\tOUTCOME")
	for _, r := range rs {
		status := "PASS"
		switch {
		case r.Skipped:
			status = "SKIP"
		case !r.Passed && r.Pending:
			status = "PEND"
		case !r.Passed:
			status = "FAIL"
		}
		lat := turnLatencies(r)
		var outcomes []string
		turns := 0
		for _, c := range r.Calls {
			outcomes = append(outcomes, c.Outcome)
			turns += len(c.Turns)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", status, r.Scenario, r.Transport, len(r.Calls), turns,
			fmtDur(percentile(lat, 50)), fmtDur(percentile(lat, 100)), fmtTalk(r.Talk.ToVerified), fmtTalk(r.Talk.ToEnd), compact(outcomes))
	}
	tw.Flush()
	for _, r := range rs {
		if r.Skipped {
			fmt.Fprintf(w, "\n%s [%s] skipped: %s\n", r.Scenario, r.Transport, r.SkipReason)
			continue
		}
		if len(r.Failures) > 0 {
			fmt.Fprintf(w, "\n%s [%s] (%s):\n", r.Scenario, r.Transport, r.File)
			for _, f := range r.Failures {
				fmt.Fprintf(w, "  - %s\n", f)
			}
		}
		if len(r.Unchecked) > 0 {
			fmt.Fprintf(w, "\n%s [%s] not checked against this target: %s\n", r.Scenario, r.Transport, strings.Join(dedupe(r.Unchecked), ", "))
		}
	}
	fmt.Fprintln(w)
	writeTalkSummary(w, rs)
	s := Summarize(rs)
	fmt.Fprintf(w, "\n%d passed, %d failed, %d pending (failing as expected), %d skipped\n", s.Passed, s.Failed, s.PendingFailed, s.Skipped)
}

// WriteJSON prints results as one JSON document.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Summary Summary       `json:"summary"`
		Talk    []TalkSummary `json:"talk_time"`
		Results []Result      `json:"results"`
	}{Summarize(rs), SummarizeTalk(rs), rs})
}

func turnLatencies(r Result) []time.Duration {
	var out []time.Duration
	for _, c := range r.Calls {
		for _, t := range c.Turns {
			if t.FirstWords > 0 {
				out = append(out, t.FirstWords)
			}
		}
	}
	return out
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(float64(len(s))*p/100+0.999999) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(s) {
		rank = len(s) - 1
	}
	return s[rank]
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return d.Round(time.Millisecond).String()
}

func compact(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	counts := map[string]int{}
	var order []string
	for _, x := range xs {
		if counts[x] == 0 {
			order = append(order, x)
		}
		counts[x]++
	}
	var parts []string
	for _, x := range order {
		if counts[x] > 1 {
			parts = append(parts, fmt.Sprintf("%s×%d", x, counts[x]))
		} else {
			parts = append(parts, x)
		}
	}
	return strings.Join(parts, ",")
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
