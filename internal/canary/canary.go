// Package canary is the one matcher the PHI tests use to grep logs, metrics,
// audit records and files for seeded values.
package canary

import (
	"regexp"
	"strings"
)

// Leaks reports whether the canary v occurs in text. Short digit canaries
// (an SSN-4, a one-time code) must stand alone, between characters that are
// neither digits nor letters: a timestamp's nanoseconds, a metric value, a
// hex or base64 key (keyed directory keys, pseudonyms) or a run of random
// bytes in a sealed file would otherwise match by chance, and a test that
// fails by chance is not a test.
func Leaks(text, v string) bool {
	if v == "" {
		return false
	}
	if len(v) > 8 || strings.Trim(v, "0123456789") != "" {
		return strings.Contains(text, v)
	}
	return regexp.MustCompile(`(^|[^0-9A-Za-z])` + regexp.QuoteMeta(v) + `([^0-9A-Za-z]|$)`).MatchString(text)
}
