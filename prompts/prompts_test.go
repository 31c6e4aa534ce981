package prompts

import (
	"strings"
	"testing"
)

type option struct {
	Key  int
	Name string
}

// sample holds every field any template may reference.
var sample = map[string]any{
	"Date": "March 3rd, 1980", "N": 2, "When": "Wednesday, December 2nd at 9:30 AM", "Clinician": "Dr. Lee",
	"Department": "Cardiology", "Name": "Lisinopril", "Dose": "10 mg once daily", "ReadyOn": "November 27th",
	"Options": []option{{1, "Lisinopril"}, {2, "Metformin"}},
	"Weekday": "Wednesday", "Month": "December", "Day": 2, "Ordinal": "2nd", "Year": 2026, "Time12": "9:30 AM", "Time24": "09:30",
	"Hour": 9, "Minute": "30", "Names": []string{"Lisinopril", "Atorvastatin"}, "Doses": true,
}

func TestEveryIDInEveryLanguage(t *testing.T) {
	for _, lang := range Languages {
		for _, id := range All {
			if !Has(lang, id) {
				t.Errorf("%s: missing %q", lang, id)
				continue
			}
			s, err := Render(lang, id, sample)
			if err != nil {
				t.Errorf("%s/%s: %v", lang, id, err)
			}
			if strings.TrimSpace(s) == "" || strings.Contains(s, "<no value>") {
				t.Errorf("%s/%s rendered %q", lang, id, s)
			}
		}
	}
}

func TestNoUnlistedTemplates(t *testing.T) {
	known := map[string]bool{}
	for _, id := range All {
		known[id] = true
	}
	loadOnce.Do(load)
	for lang, set := range sets {
		for _, tt := range set.Templates() {
			if name := tt.Name(); name != lang && !strings.HasSuffix(name, ".tmpl") && !known[name] {
				t.Errorf("%s: template %q is not in All", lang, name)
			}
		}
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		lang, id string
		data     any
		want     string
	}{
		{"en", AppointmentCount, map[string]any{"N": 1}, "You have 1 upcoming appointment."},
		{"en-US", AppointmentCount, map[string]any{"N": 2}, "You have 2 upcoming appointments."},
		{"es-US", AppointmentCount, map[string]any{"N": 2}, "Tiene 2 citas próximas."},
		{"fr", AskName, nil, "Your first and last name, please."},
		{"en", RefillPick, map[string]any{"Options": []option{{1, "A"}, {2, "B"}}}, "Which one would you like to refill? Press 1 for A, Press 2 for B."},
	}
	for _, tc := range tests {
		got, err := Render(tc.lang, tc.id, tc.data)
		if err != nil || got != tc.want {
			t.Errorf("Render(%s,%s) = %q, %v; want %q", tc.lang, tc.id, got, err, tc.want)
		}
	}
	if _, err := Render("en", "nope", nil); err == nil {
		t.Error("unknown id rendered")
	}
	if _, err := Render("en", NeedDigits, map[string]any{}); err == nil {
		t.Error("missing data key rendered")
	}
}

// One question per turn: no prompt asks more than one question.
func TestOneQuestionPerPrompt(t *testing.T) {
	for _, lang := range Languages {
		for _, id := range All {
			s, _ := Render(lang, id, sample)
			if n := strings.Count(s, "?"); n > 1 {
				t.Errorf("%s/%s asks %d questions: %q", lang, id, n, s)
			}
		}
	}
}
