package ivr

import "regexp"

// e164 is the caller_phone shape the AS accepts (authserver reE164).
var e164 = regexp.MustCompile(`^\+[1-9]\d{6,14}$`)

// callerPhone returns from when it is an E.164 number and "" otherwise.
// SIP and Client legs (sip:alice@example.com, client:bob), "anonymous" and
// empty From have no number: the AS then simply has no caller_phone (its
// risk rule asks for the one-time code) instead of refusing the request.
func callerPhone(from string) string {
	if e164.MatchString(from) {
		return from
	}
	return ""
}
