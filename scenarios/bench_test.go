package scenarios

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/ivr/twiliotest"
)

func BenchmarkSign(b *testing.B) {
	form := url.Values{"CallSid": {NewCallSid()}, "AccountSid": {"AC1"}, "From": {"+15555550101"}, "To": {"+15555550199"},
		"CallStatus": {"in-progress"}, "Direction": {"inbound"}, "SpeechResult": {"Maria Garcia"}, "Confidence": {"0.91"}}
	for b.Loop() {
		twiliotest.Sign("token", "http://127.0.0.1:8080/twilio/gather", form)
	}
}

func BenchmarkParseTwiML(b *testing.B) {
	doc := []byte(`<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/twilio/gather" input="dtmf speech" actionOnEmptyResult="true" hints="$OOV_CLASS_DATE"><Say language="en-US">What is your date of birth? You can say it, or enter it on the keypad as month, day, and year.</Say></Gather><Redirect>/twilio/gather</Redirect></Response>`)
	for b.Loop() {
		if _, err := ParseTwiML(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// The harness's own cost of one signed turn against a trivial server on
// loopback (what `voiceauth load` adds on the client side).
func BenchmarkFakeTurn(b *testing.B) {
	for _, tr := range []string{TransportWebhook, TransportRelay} {
		b.Run(tr, func(b *testing.B) {
			f := newFakeIVR(b, tr == TransportRelay)
			ctx := context.Background()
			phone := Dial(f.target(), PhoneConfig{Caller: Caller{From: "+15555550101"}, Timeout: 5 * time.Second})
			defer phone.Close()
			for _, t := range []Turn{{Answer: true}, {Say: "Maria Garcia"}, {Press: "03031980"}, {Press: "4567", Expect: []string{"verified"}}} {
				if _, err := phone.Do(ctx, &t); err != nil {
					b.Fatal(err)
				}
			}
			say := &Turn{Say: "appointments", Expect: []string{"dr. lee"}} // the fake's menu repeats forever
			for b.Loop() {
				if _, err := phone.Do(ctx, say); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
