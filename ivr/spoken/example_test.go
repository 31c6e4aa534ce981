package spoken_test

import (
	"fmt"
	"time"

	"github.com/voiceauth/voiceauth/ivr/spoken"
)

func ExampleDate() {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, in := range []string{"March third nineteen eighty", "3/3/80", "tres de marzo de mil novecientos ochenta", "March third", "February thirtieth 1980"} {
		lang := spoken.English
		if in[0] == 't' {
			lang = spoken.Spanish
		}
		d, why := spoken.Date(in, lang, now)
		fmt.Printf("%q %q\n", d, why)
	}
	// Output:
	// "1980-03-03" ""
	// "1980-03-03" ""
	// "1980-03-03" ""
	// "" "need_month_day_year"
	// "" "invalid_date"
}

func ExampleDigits() {
	for _, in := range []string{"forty five sixty seven", "for five six seven", "double five six seven", "4 5 6"} {
		d, why := spoken.Digits(in, 4, spoken.English)
		fmt.Printf("%q %q\n", d, why)
	}
	// Output:
	// "4567" ""
	// "4567" ""
	// "5567" ""
	// "" "need_digits"
}

func ExampleName() {
	for _, in := range []string{"my name is uh Maria Garcia", "M A R I A   G A R C I A", "1234"} {
		n, why := spoken.Name(in, spoken.English)
		fmt.Printf("%q %q\n", n, why)
	}
	// Output:
	// "Maria Garcia" ""
	// "Maria Garcia" ""
	// "" "need_name"
}

func ExampleDetectIntent() {
	fmt.Println(spoken.DetectIntent("I need a refill on my medication", spoken.English))
	fmt.Println(spoken.DetectIntent("no me llegó", spoken.Spanish))
	// Output:
	// refill
	// no_code
}
