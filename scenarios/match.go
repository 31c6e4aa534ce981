package scenarios

import (
	"fmt"
	"regexp"
	"strings"
)

// matcher is one expect/expect_not entry: a case-insensitive substring, or a
// regular expression written between slashes (/…/, always case-insensitive).
type matcher struct {
	src string
	re  *regexp.Regexp
	sub string
}

func compileMatcher(s string) (*matcher, error) {
	if len(s) >= 2 && strings.HasPrefix(s, "/") && strings.HasSuffix(s, "/") {
		re, err := regexp.Compile("(?i)" + s[1:len(s)-1])
		if err != nil {
			return nil, fmt.Errorf("expect %q: %w", s, err)
		}
		return &matcher{src: s, re: re}, nil
	}
	if strings.HasPrefix(s, "/") != strings.HasSuffix(s, "/") {
		return nil, fmt.Errorf("expect %q: a regular expression is written /…/ (quote entries that contain commas)", s)
	}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("expect: empty string matches everything")
	}
	return &matcher{src: s, sub: foldText(s)}, nil
}

func (m *matcher) match(text string) bool {
	if m.re != nil {
		return m.re.MatchString(text)
	}
	return strings.Contains(foldText(text), m.sub)
}

// foldText lower-cases and folds typographic apostrophes and whitespace so
// that "O’Brien" matches "o'brien" and line breaks in TwiML do not matter.
func foldText(s string) string {
	s = strings.ToLower(s)
	s = strings.NewReplacer("’", "'", "‘", "'", "\u00a0", " ").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// checkExpect returns one message per failed expectation.
func checkExpect(text string, expect, expectNot []string) []string {
	var fails []string
	for _, e := range expect {
		m, err := compileMatcher(e)
		if err != nil {
			fails = append(fails, err.Error())
			continue
		}
		if !m.match(text) {
			fails = append(fails, fmt.Sprintf("expected %q in agent speech", e))
		}
	}
	for _, e := range expectNot {
		m, err := compileMatcher(e)
		if err != nil {
			fails = append(fails, err.Error())
			continue
		}
		if m.match(text) {
			fails = append(fails, fmt.Sprintf("agent said %q, which it must not", e))
		}
	}
	return fails
}

// allMatch reports whether every expectation in expect matches text.
func allMatch(text string, expect []string) bool {
	for _, e := range expect {
		m, err := compileMatcher(e)
		if err != nil || !m.match(text) {
			return false
		}
	}
	return true
}

// containsWord reports whether canary appears in text as a whole word (not
// inside a longer run of letters or digits, e.g. inside a hex hash).
func containsWord(text, canary string) bool {
	if canary == "" {
		return false
	}
	re, err := regexp.Compile(`(^|[^\p{L}\p{N}])` + regexp.QuoteMeta(canary) + `($|[^\p{L}\p{N}])`)
	if err != nil {
		return strings.Contains(text, canary)
	}
	return re.MatchString(text)
}
