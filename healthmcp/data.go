package healthmcp

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // ClinicZone must load on minimal images
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

// ClinicZone is the demo clinic's time zone. "Today", appointment times and
// refill dates are read on its local calendar, so the demo says the same
// thing whatever zone the server runs in.
const ClinicZone = "America/New_York"

// ClinicLocation is ClinicZone, loaded from the embedded tz database
// (time/tzdata) so it exists on a minimal container too.
func ClinicLocation() *time.Location { return clinicLocation() }

// clinicLocation loads the zone once: every tool call reads the calendar, and
// LoadLocation parses the zone data anew on each call.
var clinicLocation = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation(ClinicZone)
	if err != nil {
		panic("healthmcp: " + err.Error()) // unreachable: time/tzdata is linked in
	}
	return loc
})

// slot is an appointment time relative to "today" on the clinic's calendar:
// Days after today at Hour:Minute local time. Demo data is written this way so
// that it is upcoming on any date, across month and year ends, leap days and
// DST changes (time.Date normalizes the day and applies that day's offset).
type slot struct{ Days, Hour, Minute int }

func (sl slot) at(now time.Time, loc *time.Location) string {
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d+sl.Days, sl.Hour, sl.Minute, 0, 0, loc).Format(time.RFC3339)
}

// apptDef is an appointment of the demo data, its time relative to today.
type apptDef struct {
	ID                              string
	When                            slot
	Clinician, Department, Location string
}

type recordDef struct {
	Appointments []apptDef
	Medications  []Medication
}

// demoRecords follow DEMO-DATA.md: Maria Garcia (pt-0001) has 2 upcoming
// appointments and 3 medications of which 1 is refillable; the others have
// 1 appointment and 1–2 medications.
var demoRecords = map[string]recordDef{
	"pt-0001": {
		Appointments: []apptDef{
			{ID: "ap-1", When: slot{2, 9, 30}, Clinician: "Dr. Lee", Department: "Cardiology", Location: "Main Street Clinic"},
			{ID: "ap-2", When: slot{15, 14, 0}, Clinician: "Dr. Patel", Department: "Primary Care", Location: "Riverside Health Center"},
		},
		Medications: []Medication{
			{ID: "rx-1", Name: "Lisinopril", Dose: "10 mg once daily", Refillable: true, RefillsLeft: 2},
			{ID: "rx-2", Name: "Atorvastatin", Dose: "20 mg at bedtime", Refillable: false, RefillsLeft: 0},
			{ID: "rx-3", Name: "Amoxicillin", Dose: "500 mg three times daily", Refillable: false, RefillsLeft: 0},
		},
	},
	"pt-0002": {
		Appointments: []apptDef{{ID: "ap-1", When: slot{4, 10, 0}, Clinician: "Dr. Okafor", Department: "Geriatrics", Location: "Main Street Clinic"}},
		Medications: []Medication{
			{ID: "rx-1", Name: "Metformin", Dose: "500 mg twice daily", Refillable: true, RefillsLeft: 3},
			{ID: "rx-2", Name: "Aspirin", Dose: "81 mg once daily", Refillable: false, RefillsLeft: 0},
		},
	},
	"pt-0003": {
		Appointments: []apptDef{{ID: "ap-1", When: slot{8, 8, 45}, Clinician: "Dr. Kim", Department: "Dermatology", Location: "Riverside Health Center"}},
		Medications:  []Medication{{ID: "rx-1", Name: "Cetirizine", Dose: "10 mg once daily", Refillable: true, RefillsLeft: 1}},
	},
	"pt-0004": {
		Appointments: []apptDef{{ID: "ap-1", When: slot{3, 11, 15}, Clinician: "Dr. Lee", Department: "Cardiology", Location: "Main Street Clinic"}},
		Medications:  []Medication{{ID: "rx-1", Name: "Amlodipine", Dose: "5 mg once daily", Refillable: true, RefillsLeft: 2}},
	},
	"pt-0005": {
		Appointments: []apptDef{{ID: "ap-1", When: slot{10, 13, 30}, Clinician: "Dr. Alvarez", Department: "Orthopedics", Location: "Westside Specialty Clinic"}},
		Medications: []Medication{
			{ID: "rx-1", Name: "Ibuprofen", Dose: "400 mg as needed", Refillable: false, RefillsLeft: 0},
			{ID: "rx-2", Name: "Omeprazole", Dose: "20 mg once daily", Refillable: true, RefillsLeft: 4},
		},
	},
	"pt-0006": {
		Appointments: []apptDef{{ID: "ap-1", When: slot{18, 15, 0}, Clinician: "Dr. Novak", Department: "Endocrinology", Location: "Riverside Health Center"}},
		Medications:  []Medication{{ID: "rx-1", Name: "Levothyroxine", Dose: "50 mcg once daily", Refillable: true, RefillsLeft: 5}},
	},
	"pt-0007": {
		Appointments: []apptDef{{ID: "ap-1", When: slot{1, 9, 0}, Clinician: "Dr. Patel", Department: "Primary Care", Location: "Main Street Clinic"}},
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

// RecordFor returns the patient's synthetic record as of now on loc's calendar
// (nil loc: ClinicLocation): the fixed demo rows, or for generated ids (pt-g…)
// a record derived deterministically from the id. Unknown ids get no record.
func RecordFor(patientID string, now time.Time, loc *time.Location) (Record, bool) {
	def, ok := recordDefFor(patientID)
	if !ok {
		return Record{}, false
	}
	if loc == nil {
		loc = ClinicLocation()
	}
	r := Record{Medications: def.Medications}
	for _, a := range def.Appointments {
		r.Appointments = append(r.Appointments, Appointment{ID: a.ID, Start: a.When.at(now, loc),
			Clinician: a.Clinician, Department: a.Department, Location: a.Location})
	}
	return r, true
}

// ReadyOn is the date a refill requested now is ready: two days later on
// loc's calendar (nil loc: ClinicLocation), as YYYY-MM-DD.
func ReadyOn(now time.Time, loc *time.Location) string {
	if loc == nil {
		loc = ClinicLocation()
	}
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d+2, 12, 0, 0, 0, loc).Format(time.DateOnly)
}

func recordDefFor(patientID string) (recordDef, bool) {
	if r, ok := demoRecords[patientID]; ok {
		return r, true
	}
	if !strings.HasPrefix(patientID, "pt-g") || len(patientID) > 32 {
		return recordDef{}, false
	}
	h := sha256.Sum256([]byte("healthmcp/v1|" + patientID))
	n := func(i, mod int) int { return int(binary.BigEndian.Uint16(h[2*i:]) % uint16(mod)) }
	r := recordDef{Appointments: []apptDef{{
		ID:         "ap-1",
		When:       slot{Days: 1 + n(0, 27), Hour: 8 + n(1, 9), Minute: 15 * n(2, 4)},
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
