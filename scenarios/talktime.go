package scenarios

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The talk-time model (docs/PERFORMANCE.md "Caller experience"): how long a
// real call following a scenario's script would take on the phone line. It is
// computed from the words and TwiML the runner saw, never from the wall
// clock, so it is the same on every machine and on every run.
const (
	// perWord: prompts and the caller's speech at 150 words per minute.
	perWord = time.Minute / 150
	// perKey: one keypad press, at the same pace as a spoken word.
	perKey = perWord
	// endOfSpeech: end-of-speech detection after the caller stops talking
	// (<Gather speechTimeout="auto">, ConversationRelay's end of utterance).
	endOfSpeech = time.Second
	// gatherTimeout: <Gather timeout> when the TwiML names none (Twilio's
	// default), and the silence a caller sits through before a no-input
	// re-prompt on either transport.
	gatherTimeout = 5 * time.Second
)

// TalkTotals are a call's (or a scenario run's) estimates: ToVerified is 0
// when the caller never got verified.
type TalkTotals struct {
	ToVerified time.Duration `json:"to_verified_ns,omitempty"`
	ToEnd      time.Duration `json:"to_end_ns"`
}

// TalkEstimate is one turn under the talk-time model.
type TalkEstimate struct {
	Caller time.Duration `json:"caller_ns"` // caller speaking or keying
	Wait   time.Duration `json:"wait_ns"`   // end-of-speech detection, timeouts, silence
	Agent  time.Duration `json:"agent_ns"`  // the agent's words
}

// Total is the turn's length on the line.
func (e TalkEstimate) Total() time.Duration { return e.Caller + e.Wait + e.Agent }

// listening returns the <Gather> the caller is answering (webhook), nil on
// the relay, where no digit count or timeout is on the wire.
func listening(p Phone) *Gather {
	if w, ok := p.(*webhookPhone); ok && w.gather != nil {
		g := *w.gather
		return &g
	}
	return nil
}

// estimateTurn prices one caller action and the agent's reply.
//
// Keypad entry ends at the Gather's numDigits, at an explicit "#" (the
// finishOnKey), or else at the Gather timeout. On the relay the runner's
// phone ends every entry with "#" (one more key).
func estimateTurn(t *Turn, rep Reply, g *Gather, transport string) TalkEstimate {
	var e TalkEstimate
	switch {
	case t.Say != "":
		e.Caller = time.Duration(len(strings.Fields(t.Say))) * perWord
		e.Wait = endOfSpeech
	case t.Press != "":
		keys := t.Press
		e.Caller = time.Duration(len(keys)) * perKey
		if transport == TransportRelay {
			if !strings.HasSuffix(keys, "#") && keys != "*" {
				e.Caller += perKey
			}
			break
		}
		digits := strings.TrimSuffix(keys, "#")
		n := 0
		finish := "#"
		timeout := gatherTimeout
		if g != nil {
			n, _ = strconv.Atoi(g.NumDigits)
			finish = g.FinishOnKey
			if s, err := strconv.Atoi(g.Timeout); err == nil && s >= 0 {
				timeout = time.Duration(s) * time.Second
			}
		}
		switch {
		case n > 0 && len(digits) >= n:
		case finish != "" && strings.HasSuffix(keys, finish):
		default:
			e.Wait = timeout
		}
	case t.Silence:
		e.Wait = gatherTimeout
		if g != nil {
			if s, err := strconv.Atoi(g.Timeout); err == nil && s >= 0 {
				e.Wait = time.Duration(s) * time.Second
			}
		}
	}
	e.Agent = speakTime(rep.Late) + speakTime(rep.Text)
	return e
}

func speakTime(s string) time.Duration {
	return time.Duration(len(strings.Fields(s))) * perWord
}

// verifiedRE finds the sentence that tells the caller they are verified.
var verifiedRE = regexp.MustCompile(`(?i)\bverif`)

// untilVerified is the agent's time up to and including the sentence that
// says the caller is verified (the whole reply when none does).
func untilVerified(text string) time.Duration {
	loc := verifiedRE.FindStringIndex(text)
	if loc == nil {
		return speakTime(text)
	}
	end := strings.IndexAny(text[loc[1]:], ".!?")
	if end < 0 {
		return speakTime(text)
	}
	return speakTime(text[:loc[1]+end+1])
}

// estimateCall fills the call's totals from its turns: ToVerified is the
// time to the end of the "verified" sentence of the turn marked
// authenticated (0 when the call never got there).
func estimateCall(cr *CallResult, turns []Turn) {
	var sum time.Duration
	cr.Talk.ToVerified = 0
	for i, tr := range cr.Turns {
		if i < len(turns) && turns[i].Authenticated && cr.Talk.ToVerified == 0 {
			late := tr.Talk.Agent - speakTime(tr.Heard) // words left over from the previous turn
			cr.Talk.ToVerified = sum + tr.Talk.Caller + tr.Talk.Wait + late + untilVerified(tr.Heard)
		}
		sum += tr.Talk.Total()
	}
	cr.Talk.ToEnd = sum
}

// estimateResult sums a scenario run: to end over all its calls, to
// verified from the first call that got there.
func estimateResult(r *Result) {
	r.Talk = TalkTotals{}
	for _, c := range r.Calls {
		if r.Talk.ToVerified == 0 && c.Talk.ToVerified > 0 {
			r.Talk.ToVerified = r.Talk.ToEnd + c.Talk.ToVerified
		}
		r.Talk.ToEnd += c.Talk.ToEnd
	}
}

// TalkSummary is the median and p95 of the estimates over a set of runs.
type TalkSummary struct {
	Group       string        `json:"group"`
	Verified    int           `json:"verified_runs"`
	VerifiedP50 time.Duration `json:"to_verified_p50_ns"`
	VerifiedP95 time.Duration `json:"to_verified_p95_ns"`
	Runs        int           `json:"runs"`
	EndP50      time.Duration `json:"to_end_p50_ns"`
	EndP95      time.Duration `json:"to_end_p95_ns"`
}

// SummarizeTalk groups passed runs by "all", language and language/transport.
// Runs that failed or were skipped say nothing about a working call.
func SummarizeTalk(rs []Result) []TalkSummary {
	groups := map[string][]Result{}
	var order []string
	add := func(k string, r Result) {
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, r := range rs {
		if r.Skipped || !r.Passed || len(r.Calls) == 0 {
			continue
		}
		lang := r.Language
		if lang == "" {
			lang = "en"
		}
		add("all", r)
		add(lang, r)
		add(lang+"/"+r.Transport, r)
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i] == "all" || order[j] == "all" {
			return order[i] == "all"
		}
		return order[i] < order[j]
	})
	var out []TalkSummary
	for _, k := range order {
		var ver, end []time.Duration
		for _, r := range groups[k] {
			if r.Talk.ToVerified > 0 {
				ver = append(ver, r.Talk.ToVerified)
			}
			end = append(end, r.Talk.ToEnd)
		}
		out = append(out, TalkSummary{Group: k, Verified: len(ver), VerifiedP50: median(ver), VerifiedP95: percentile(ver, 95),
			Runs: len(end), EndP50: median(end), EndP95: percentile(end, 95)})
	}
	return out
}

// median is the middle value (mean of the two middle values for an even count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtTalk(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// writeTalkSummary prints the summary lines of the talk-time estimate.
func writeTalkSummary(w io.Writer, rs []Result) {
	for _, s := range SummarizeTalk(rs) {
		fmt.Fprintf(w, "talk time %-12s to verified median %s p95 %s (%d runs) · to end median %s p95 %s (%d runs)\n",
			s.Group+":", fmtTalk(s.VerifiedP50), fmtTalk(s.VerifiedP95), s.Verified, fmtTalk(s.EndP50), fmtTalk(s.EndP95), s.Runs)
	}
}
