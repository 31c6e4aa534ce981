package canary

import "testing"

func TestLeaks(t *testing.T) {
	cases := []struct {
		text, v string
		want    bool
	}{
		{`"ssn":"4567"`, "4567", true},
		{"code 123456 sent", "123456", true},
		{"4567", "4567", true},
		{`"time":"2026-11-25T20:33:27.845671234Z"`, "4567", false},
		{"process_resident_memory_bytes 45678592", "4567", false},
		{`"subject":"patient:9fe4567ab01c"`, "4567", false}, // inside a hex pseudonym or key
		{"ssn=4567;", "4567", true},
		{"SSN-4: 4567.", "4567", true},
		{"dob 1980-03-03", "1980-03-03", true},
		{"Maria Garcia called", "Maria Garcia", true},
		{"nothing here", "Maria", false},
		{"anything", "", false},
	}
	for _, c := range cases {
		if got := Leaks(c.text, c.v); got != c.want {
			t.Errorf("Leaks(%q, %q) = %v, want %v", c.text, c.v, got, c.want)
		}
	}
}
