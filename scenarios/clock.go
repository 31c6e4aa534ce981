package scenarios

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voiceauth/voiceauth/healthmcp"
	"github.com/voiceauth/voiceauth/ivr"
)

// DefaultClock is the instant the embedded stack believes it is at the start of
// a scenario that names no clock: a fixed date, so that no scenario depends on
// the day it runs. Expectations that mention dates are written relative to the
// stack's clock ({{date +2d}}), so the suite passes under any clock
// (TestScenariosUnderClocks runs it under several).
const DefaultClock = "2027-06-15 10:00"

// ParseClock reads a scenario clock: RFC 3339 ("2028-02-29T23:59:00-05:00"),
// or "YYYY-MM-DD HH:MM" on the clinic's local calendar (healthmcp.ClinicZone).
func ParseClock(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02 15:04", s, healthmcp.ClinicLocation())
	if err != nil {
		return time.Time{}, fmt.Errorf("clock %q: want RFC 3339 or \"YYYY-MM-DD HH:MM\" (clinic time)", s)
	}
	return t, nil
}

// mustClock is ParseClock for constants.
func mustClock(s string) time.Time {
	t, err := ParseClock(s)
	if err != nil {
		panic(err)
	}
	return t
}

// runningClock starts at base and advances with the monotonic clock, so the
// stack sees a fixed date but real elapsed time (hold phrases and give-up
// timers measure durations with it).
func runningClock(base time.Time) func() time.Time {
	start := time.Now()
	return func() time.Time { return base.Add(time.Since(start)) }
}

// clockFor is the clock a scenario runs under: its own clock: if it names one,
// else the suite's.
func clockFor(sc *Scenario, suite time.Time) time.Time {
	if sc != nil && sc.Clock != "" {
		if t, err := ParseClock(sc.Clock); err == nil { // validated at Parse
			return t
		}
	}
	return suite
}

// dateRef is {{date}}, {{date +2d}} or {{date -1d}}.
var dateRef = regexp.MustCompile(`\{\{\s*date\s*(?:([+-]\d{1,4})d)?\s*\}\}`)

// expandDates renders every {{date ±Nd}} in expectations as the agent would
// say that date (now's date on the clinic's calendar, N days on), in lang.
// Inside a /regex/ the rendering is quoted.
func expandDates(exps []string, now time.Time, lang string) []string {
	if lang == "" {
		lang = "en"
	}
	var out []string // a copy, made at the first reference
	for i, e := range exps {
		if !dateRef.MatchString(e) {
			continue
		}
		if out == nil {
			out = slices.Clone(exps)
		}
		isRE := len(e) >= 2 && strings.HasPrefix(e, "/") && strings.HasSuffix(e, "/")
		out[i] = dateRef.ReplaceAllStringFunc(e, func(ref string) string {
			n := 0
			if m := dateRef.FindStringSubmatch(ref); m[1] != "" {
				n, _ = strconv.Atoi(m[1])
			}
			y, mo, d := now.In(healthmcp.ClinicLocation()).Date()
			s := ivr.SpokenDate(time.Date(y, mo, d+n, 12, 0, 0, 0, time.UTC), lang)
			if isRE {
				s = regexp.QuoteMeta(s)
			}
			return s
		})
	}
	if out == nil {
		return exps
	}
	return out
}
