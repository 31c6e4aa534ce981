package twiliotest

import (
	"net/url"
	"testing"

	"github.com/twilio/twilio-go/client"
)

// Vectors from telephony.md §8.1 (official SDK test suites; auth token 12345).
func TestSignVectors(t *testing.T) {
	p5 := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"}, "From": {"+14158675309"}, "To": {"+18005551212"}}
	p7 := url.Values{}
	for k, v := range p5 {
		p7[k] = v
	}
	p7.Set("ReasonConferenceEnded", "test")
	p7.Set("Reason", "Participant")
	p11 := url.Values{}
	for k, v := range p5 {
		p11[k] = v
	}
	p11.Set("Caller", "+12349013030")
	p11.Set("From", "+12349013030")
	multi := url.Values{"Sid": {"CA123"}, "SidAccount": {"AC123"}, "Digits": {"5678", "1234", "1234"}}
	const base = "https://mycompany.com/myapp.php?foo=1&bar=2"
	tests := []struct {
		name   string
		url    string
		params url.Values
		want   string
	}{
		{"1 base+P7", base, p7, "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{"3 http+P7", "http://mycompany.com/myapp.php?foo=1&bar=2", p7, "n2xBNyzSW7rfYStDtOFiFMv7qNo="},
		{"4 base+P5", base, p5, "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"5 base:443+P5", "https://mycompany.com:443/myapp.php?foo=1&bar=2", p5, "kvajT1Ptam85bY51eRf/AJRuM3w="},
		{"6 http:80+P5", "http://mycompany.com:80/myapp.php?foo=1&bar=2", p5, "0ZXoZLH/DfblKGATFgpif+LLRf4="},
		{"7 http:1234+P5", "http://mycompany.com:1234/myapp.php?foo=1&bar=2", p5, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="},
		{"10 repeated names", base, multi, "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
		{"11 README", base, p11, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sign("12345", tt.url, tt.params); got != tt.want {
				t.Fatalf("Sign = %s, want %s", got, tt.want)
			}
		})
	}
	// Vector 2: the wrong sort order must not be what we produce.
	if Sign("12345", base, p7) == "95+Bu0JVPi0r/SsESZCVf0dWAjw=" {
		t.Fatal("signature matches the wrong-sort vector")
	}
}

// The signer agrees with twilio-go's validator on the URLs the runner signs.
func TestSignMatchesTwilioGo(t *testing.T) {
	v := client.NewRequestValidator("tok")
	cases := []struct {
		url    string
		params url.Values
	}{
		{"http://127.0.0.1:8080/twilio/voice", url.Values{"CallSid": {"CA1"}, "From": {"+15555550101"}, "SpeechResult": {"Zoë Müller-Lüdenscheidt"}}},
		{"https://voice.example.com/twilio/gather?step=2", url.Values{"Digits": {"0912"}, "FinishedOnKey": {""}}},
		{"wss://voice.example.com/twilio/relay", nil},
	}
	for _, c := range cases {
		m := map[string]string{}
		for k, vs := range c.params {
			m[k] = vs[0]
		}
		if !v.Validate(c.url, m, Sign("tok", c.url, c.params)) {
			t.Errorf("twilio-go rejects our signature for %s", c.url)
		}
		if v.Validate(c.url, m, Sign("other", c.url, c.params)) {
			t.Errorf("twilio-go accepts a signature made with the wrong token for %s", c.url)
		}
	}
}
