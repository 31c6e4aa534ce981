package scenarios

import (
	"strings"
	"testing"
	"time"
)

func TestExpandDates(t *testing.T) {
	leapNight := mustClock("2028-02-29 23:59")
	tests := []struct {
		name string
		now  time.Time
		lang string
		in   []string
		want []string
	}{
		{"today and after", leapNight, "en", []string{"{{date}}", "ready on {{date +2d}}.", "{{ date -1d }}"},
			[]string{"February 29th, 2028", "ready on March 2nd, 2028.", "February 28th, 2028"}},
		{"year end", mustClock("2031-12-31 17:30"), "en", []string{"{{date +1d}}"}, []string{"January 1st, 2032"}},
		// 03:30 UTC on Jan 1 is still Dec 31 at the clinic.
		{"clinic calendar, not UTC", time.Date(2027, 1, 1, 3, 30, 0, 0, time.UTC), "", []string{"{{date}}"}, []string{"December 31st, 2026"}},
		{"spanish", leapNight, "es", []string{"{{date +2d}}"}, []string{"2 de marzo de 2028"}},
		{"regex is quoted", leapNight, "en", []string{"/ready on {{date +2d}}$/"}, []string{`/ready on March 2nd, 2028$/`}},
		{"untouched", leapNight, "en", []string{"verified", "/x{2}/"}, []string{"verified", "/x{2}/"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := strings.Join(tc.in, "|")
			got := expandDates(tc.in, tc.now, tc.lang)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if strings.Join(tc.in, "|") != orig {
				t.Errorf("expandDates changed its input: %q", tc.in)
			}
		})
	}
	// A rendered regex still matches what the agent says.
	if fails := checkExpect("It should be ready on March 2nd, 2028.", expandDates([]string{"/ready on {{date +2d}}\\.$/"}, leapNight, "en"), nil); len(fails) != 0 {
		t.Errorf("rendered regex: %v", fails)
	}
}

func TestScenarioClockField(t *testing.T) {
	base := "name: c\ncaller: {from: \"+15555550101\"}\nturns:\n  - say: hi\n"
	sc, err := Parse([]byte(base+"clock: \"2028-02-29 23:59\"\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := clockFor(sc, mustClock(DefaultClock)); !got.Equal(time.Date(2028, 3, 1, 4, 59, 0, 0, time.UTC)) {
		t.Errorf("clinic-time clock parsed as %s", got.UTC())
	}
	if got := clockFor(&Scenario{}, mustClock(DefaultClock)); !got.Equal(mustClock(DefaultClock)) {
		t.Errorf("scenario without clock: %s, want the suite's", got)
	}
	for _, bad := range []string{"clock: tomorrow\n", "clock: \"2028-02-30 10:00\"\n", "clock: \"2028-01-01 10:00\"\nshared: true\n"} {
		if _, err := Parse([]byte(base+bad), "c.yaml"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Parse([]byte(base+"clock: \"2028-02-29T23:59:00-05:00\"\n"), "c.yaml"); err != nil {
		t.Errorf("RFC 3339 clock refused: %v", err)
	}
}

// The stack's clock starts at the scenario clock and then follows elapsed time.
func TestRunningClock(t *testing.T) {
	base := mustClock("2031-12-31 23:59")
	now := runningClock(base)
	a := now()
	if a.Before(base) || a.Sub(base) > time.Minute {
		t.Fatalf("first reading %s, base %s", a, base)
	}
	time.Sleep(2 * time.Millisecond)
	if b := now(); !b.After(a) {
		t.Fatalf("clock did not advance: %s then %s", a, b)
	}
}
