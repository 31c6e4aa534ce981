package healthmcp_test

import (
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/healthmcp"
)

// The demo data is relative to "today" on the clinic's calendar: on any date
// (month and year ends, leap days, both DST changes, a UTC instant whose date
// differs from the clinic's) every appointment is upcoming, falls on its
// day offset at its local wall time with that day's UTC offset, and a refill is
// ready two clinic days later.
func TestRecordsRelativeToToday(t *testing.T) {
	ny := healthmcp.ClinicLocation()
	tests := []struct {
		name    string
		now     time.Time
		today   string // the clinic's date at now
		readyOn string
	}{
		{"year end", time.Date(2031, 12, 31, 16, 0, 0, 0, ny), "2031-12-31", "2032-01-02"},
		{"leap day 23:59", time.Date(2028, 2, 29, 23, 59, 0, 0, ny), "2028-02-29", "2028-03-02"},
		{"feb 28 of a common year", time.Date(2027, 2, 28, 9, 0, 0, 0, ny), "2027-02-28", "2027-03-02"},
		{"spring forward eve", time.Date(2027, 3, 13, 12, 0, 0, 0, ny), "2027-03-13", "2027-03-15"},
		{"fall back eve", time.Date(2027, 11, 6, 12, 0, 0, 0, ny), "2027-11-06", "2027-11-08"},
		{"UTC already tomorrow", time.Date(2027, 1, 1, 3, 0, 0, 0, time.UTC), "2026-12-31", "2027-01-02"},
	}
	ids := []string{"pt-0001", "pt-0002", "pt-0003", "pt-0004", "pt-0005", "pt-0006", "pt-0007", "pt-g000042", "pt-g009999"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.now.In(ny).Format(time.DateOnly); got != tc.today {
				t.Fatalf("test table: clinic date %s, want %s", got, tc.today)
			}
			if got := healthmcp.ReadyOn(tc.now, nil); got != tc.readyOn {
				t.Errorf("ReadyOn = %s, want %s", got, tc.readyOn)
			}
			today, _ := time.ParseInLocation(time.DateOnly, tc.today, ny)
			for _, id := range ids {
				r, ok := healthmcp.RecordFor(id, tc.now, nil)
				if !ok || len(r.Appointments) == 0 {
					t.Fatalf("%s: no appointments", id)
				}
				for _, a := range r.Appointments {
					at, err := time.Parse(time.RFC3339, a.Start)
					if err != nil {
						t.Fatalf("%s %s: %v", id, a.Start, err)
					}
					if !at.After(tc.now) {
						t.Errorf("%s: appointment %s is not after now %s", id, a.Start, tc.now)
					}
					local := at.In(ny)
					if at.Format("-07:00") != local.Format("-07:00") {
						t.Errorf("%s: %s carries offset %s, the clinic's that day is %s", id, a.Start, at.Format("-07:00"), local.Format("-07:00"))
					}
					days := int(time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC).Sub(
						time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)).Hours() / 24)
					if days < 1 || days > 28 {
						t.Errorf("%s: %s is %d clinic days from %s", id, a.Start, days, tc.today)
					}
					if h := local.Hour(); h < 8 || h > 17 {
						t.Errorf("%s: %s outside clinic hours", id, a.Start)
					}
				}
			}
			// Maria's first appointment is two clinic days ahead at 9:30 local.
			r, _ := healthmcp.RecordFor("pt-0001", tc.now, nil)
			want := time.Date(today.Year(), today.Month(), today.Day()+2, 9, 30, 0, 0, ny).Format(time.RFC3339)
			if r.Appointments[0].Start != want {
				t.Errorf("Maria's first appointment %s, want %s", r.Appointments[0].Start, want)
			}
		})
	}
}

// The zone passed in is the calendar used: the same instant is a different
// "today" in Tokyo.
func TestRecordsFollowConfiguredZone(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 6, 30, 20, 0, 0, 0, time.UTC) // July 1 05:00 in Tokyo, June 30 16:00 in New York
	if got := healthmcp.ReadyOn(now, tokyo); got != "2027-07-03" {
		t.Errorf("Tokyo ReadyOn %s", got)
	}
	if got := healthmcp.ReadyOn(now, nil); got != "2027-07-02" {
		t.Errorf("clinic ReadyOn %s", got)
	}
	r, _ := healthmcp.RecordFor("pt-0001", now, tokyo)
	if r.Appointments[0].Start != "2027-07-03T09:30:00+09:00" {
		t.Errorf("Tokyo appointment %s", r.Appointments[0].Start)
	}
}
