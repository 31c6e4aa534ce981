package scenarios

import "testing"

func TestCheckExpect(t *testing.T) {
	tests := []struct {
		text      string
		expect    []string
		expectNot []string
		fails     int
	}{
		{"Please say your full NAME.", []string{"name"}, nil, 0},
		{"Please say your full name.", []string{"birth"}, nil, 1},
		{"What is your date of birth?", []string{"/date of (birth|nacimiento)/"}, nil, 0},
		{"¿Cuál es su fecha de nacimiento?", []string{"/fecha de nacimiento/"}, nil, 0},
		{"Thanks, James O’Brien.", []string{"o'brien"}, nil, 0},
		{"Your appointment is with Dr. Lee", nil, []string{"dr. lee"}, 1},
		{"Say it\nagain   please", []string{"it again please"}, nil, 0},
		{"abc", []string{"/[/"}, nil, 1},
	}
	for _, tt := range tests {
		if got := checkExpect(tt.text, tt.expect, tt.expectNot); len(got) != tt.fails {
			t.Errorf("checkExpect(%q, %v, %v) = %v, want %d failures", tt.text, tt.expect, tt.expectNot, got, tt.fails)
		}
	}
}

func TestContainsWord(t *testing.T) {
	tests := []struct {
		text, canary string
		want         bool
	}{
		{`{"msg":"kba","ssn":"4567"}`, "4567", true},
		{`{"caller":"num:ab4567cd01ef2345"}`, "4567", false},
		{`dob=1980-03-03 x`, "1980-03-03", true},
		{`t=11980-03-034`, "1980-03-03", false},
		{`code 123456.`, "123456", true},
		{``, "123456", false},
	}
	for _, tt := range tests {
		if got := containsWord(tt.text, tt.canary); got != tt.want {
			t.Errorf("containsWord(%q, %q) = %v", tt.text, tt.canary, got)
		}
	}
}

func TestPercentile(t *testing.T) {
	ds := []timeDur{5, 1, 4, 2, 3}
	var in []durT
	for _, d := range ds {
		in = append(in, durT(d))
	}
	if got := percentile(in, 50); got != 3 {
		t.Errorf("p50 = %d", got)
	}
	if got := percentile(in, 100); got != 5 {
		t.Errorf("max = %d", got)
	}
	if got := percentile(in, 1); got != 1 {
		t.Errorf("p1 = %d", got)
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("empty = %d", got)
	}
}
