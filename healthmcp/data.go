package healthmcp

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// Appointment is one row of list_appointments (the JSON shape ivr decodes).
type Appointment struct {
	ID         string `json:"id"`
	Start      string `json:"start"`
	Clinician  string `json:"clinician"`
	Department string `json:"department"`
	Location   string `json:"location"`
}

// Medication is one row of list_medications.
type Medication struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Dose        string `json:"dose"`
	Refillable  bool   `json:"refillable"`
	RefillsLeft int    `json:"refills_left"`
}

// Record is everything the demo server knows about one patient. All synthetic.
type Record struct {
	Appointments []Appointment
	Medications  []Medication
}

// demoRecords follow DEMO-DATA.md: Maria Garcia (pt-0001) has 2 upcoming
// appointments and 3 medications of which 1 is refillable; the others have
// 1 appointment and 1–2 medications.
var demoRecords = map[string]Record{
	"pt-0001": {
		Appointments: []Appointment{
			{ID: "ap-1", Start: "2026-12-02T09:30:00-05:00", Clinician: "Dr. Lee", Department: "Cardiology", Location: "Main Street Clinic"},
			{ID: "ap-2", Start: "2026-12-15T14:00:00-05:00", Clinician: "Dr. Patel", Department: "Primary Care", Location: "Riverside Health Center"},
		},
		Medications: []Medication{
			{ID: "rx-1", Name: "Lisinopril", Dose: "10 mg once daily", Refillable: true, RefillsLeft: 2},
			{ID: "rx-2", Name: "Atorvastatin", Dose: "20 mg at bedtime", Refillable: false, RefillsLeft: 0},
			{ID: "rx-3", Name: "Amoxicillin", Dose: "500 mg three times daily", Refillable: false, RefillsLeft: 0},
		},
	},
	"pt-0002": {
		Appointments: []Appointment{{ID: "ap-1", Start: "2026-12-04T10:00:00-05:00", Clinician: "Dr. Okafor", Department: "Geriatrics", Location: "Main Street Clinic"}},
		Medications: []Medication{
			{ID: "rx-1", Name: "Metformin", Dose: "500 mg twice daily", Refillable: true, RefillsLeft: 3},
			{ID: "rx-2", Name: "Aspirin", Dose: "81 mg once daily", Refillable: false, RefillsLeft: 0},
		},
	},
	"pt-0003": {
		Appointments: []Appointment{{ID: "ap-1", Start: "2026-12-08T08:45:00-05:00", Clinician: "Dr. Kim", Department: "Dermatology", Location: "Riverside Health Center"}},
		Medications:  []Medication{{ID: "rx-1", Name: "Cetirizine", Dose: "10 mg once daily", Refillable: true, RefillsLeft: 1}},
	},
	"pt-0004": {
		Appointments: []Appointment{{ID: "ap-1", Start: "2026-12-03T11:15:00-05:00", Clinician: "Dr. Lee", Department: "Cardiology", Location: "Main Street Clinic"}},
		Medications:  []Medication{{ID: "rx-1", Name: "Amlodipine", Dose: "5 mg once daily", Refillable: true, RefillsLeft: 2}},
	},
	"pt-0005": {
		Appointments: []Appointment{{ID: "ap-1", Start: "2026-12-10T13:30:00-05:00", Clinician: "Dr. Alvarez", Department: "Orthopedics", Location: "Westside Specialty Clinic"}},
		Medications: []Medication{
			{ID: "rx-1", Name: "Ibuprofen", Dose: "400 mg as needed", Refillable: false, RefillsLeft: 0},
			{ID: "rx-2", Name: "Omeprazole", Dose: "20 mg once daily", Refillable: true, RefillsLeft: 4},
		},
	},
	"pt-0006": {
		Appointments: []Appointment{{ID: "ap-1", Start: "2026-12-18T15:00:00-05:00", Clinician: "Dr. Novak", Department: "Endocrinology", Location: "Riverside Health Center"}},
		Medications:  []Medication{{ID: "rx-1", Name: "Levothyroxine", Dose: "50 mcg once daily", Refillable: true, RefillsLeft: 5}},
	},
	"pt-0007": {
		Appointments: []Appointment{{ID: "ap-1", Start: "2026-12-01T09:00:00-05:00", Clinician: "Dr. Patel", Department: "Primary Care", Location: "Main Street Clinic"}},
		Medications: []Medication{
			{ID: "rx-1", Name: "Warfarin", Dose: "5 mg once daily", Refillable: true, RefillsLeft: 1},
			{ID: "rx-2", Name: "Furosemide", Dose: "20 mg once daily", Refillable: false, RefillsLeft: 0},
		},
	},
}

var (
	genClinicians  = []string{"Dr. Lee", "Dr. Patel", "Dr. Kim", "Dr. Okafor", "Dr. Alvarez", "Dr. Novak"}
	genDepartments = []string{"Cardiology", "Primary Care", "Dermatology", "Geriatrics", "Orthopedics", "Endocrinology"}
	genLocations   = []string{"Main Street Clinic", "Riverside Health Center", "Westside Specialty Clinic"}
	genDrugs       = []struct{ name, dose string }{
		{"Lisinopril", "10 mg once daily"}, {"Metformin", "500 mg twice daily"}, {"Atorvastatin", "20 mg at bedtime"},
		{"Levothyroxine", "50 mcg once daily"}, {"Amlodipine", "5 mg once daily"}, {"Omeprazole", "20 mg once daily"},
	}
)

// RecordFor returns the patient's synthetic record: the fixed demo rows, or
// for generated ids (pt-g…) a record derived deterministically from the id.
// Unknown ids get no record.
func RecordFor(patientID string) (Record, bool) {
	if r, ok := demoRecords[patientID]; ok {
		return r, true
	}
	if !strings.HasPrefix(patientID, "pt-g") || len(patientID) > 32 {
		return Record{}, false
	}
	h := sha256.Sum256([]byte("healthmcp/v1|" + patientID))
	n := func(i, mod int) int { return int(binary.BigEndian.Uint16(h[2*i:]) % uint16(mod)) }
	day := 1 + n(0, 27)
	hour := 8 + n(1, 9)
	r := Record{Appointments: []Appointment{{
		ID:         "ap-1",
		Start:      fmt.Sprintf("2026-12-%02dT%02d:%02d:00-05:00", day, hour, 15*n(2, 4)),
		Clinician:  genClinicians[n(3, len(genClinicians))],
		Department: genDepartments[n(4, len(genDepartments))],
		Location:   genLocations[n(5, len(genLocations))],
	}}}
	meds := 1 + n(6, 2)
	first := n(7, len(genDrugs))
	for i := 0; i < meds; i++ {
		d := genDrugs[(first+i)%len(genDrugs)]
		refills := n(8+i, 4)
		r.Medications = append(r.Medications, Medication{
			ID: fmt.Sprintf("rx-%d", i+1), Name: d.name, Dose: d.dose, Refillable: refills > 0, RefillsLeft: refills,
		})
	}
	return r, true
}
