package challenge

import (
	"errors"
	"strings"
)

var errBadChallenge = errors.New("malformed WWW-Authenticate header")

// ParseWWWAuthenticate parses an RFC 9110 §11.6.1 WWW-Authenticate value.
// When the header lists several challenges it returns the Bearer one (or the
// first). Scheme is lower-cased; parameter names are lower-cased; a token68
// credential is returned under the empty name. Duplicate parameters are an
// error (RFC 9110: each name at most once).
func ParseWWWAuthenticate(h string) (scheme string, params map[string]string, err error) {
	chs, err := parseChallenges(h)
	if err != nil {
		return "", nil, err
	}
	best := chs[0]
	for _, ch := range chs {
		if ch.scheme == "bearer" {
			best = ch
			break
		}
	}
	return best.scheme, best.params, nil
}

type authChallenge struct {
	scheme string
	params map[string]string
}

func parseChallenges(h string) ([]authChallenge, error) {
	p := &hdrParser{s: h}
	var out []authChallenge
	for {
		p.skipSpaceAndCommas()
		if p.eof() {
			break
		}
		scheme := p.token()
		if scheme == "" {
			return nil, errBadChallenge
		}
		ch := authChallenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
		p.skipSpace()
		if t68, ok := p.token68(); ok {
			ch.params[""] = t68
			out = append(out, ch)
			continue
		}
		// auth-params, until a token not followed by '=' (the next scheme).
		for {
			save := p.i
			p.skipSpaceAndCommas()
			if p.eof() {
				break
			}
			name := p.token()
			if name == "" {
				return nil, errBadChallenge
			}
			p.skipSpace()
			if p.peek() != '=' {
				p.i = save
				break
			}
			p.i++
			p.skipSpace()
			var val string
			if p.peek() == '"' {
				v, ok := p.quoted()
				if !ok {
					return nil, errBadChallenge
				}
				val = v
			} else if val = p.token(); val == "" {
				return nil, errBadChallenge
			}
			key := strings.ToLower(name)
			if _, dup := ch.params[key]; dup {
				return nil, errBadChallenge
			}
			ch.params[key] = val
			p.skipSpace()
			if !p.eof() && p.peek() != ',' {
				return nil, errBadChallenge
			}
		}
		out = append(out, ch)
	}
	if len(out) == 0 {
		return nil, errBadChallenge
	}
	return out, nil
}

type hdrParser struct {
	s string
	i int
}

func (p *hdrParser) eof() bool { return p.i >= len(p.s) }
func (p *hdrParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}
func (p *hdrParser) skipSpace() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}
func (p *hdrParser) skipSpaceAndCommas() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

// token68 consumes a token68 credential if one stands here alone (followed
// by the end or a comma); otherwise it consumes nothing.
func (p *hdrParser) token68() (string, bool) {
	start := p.i
	j := p.i
	for j < len(p.s) && isT68(p.s[j]) {
		j++
	}
	if j == start {
		return "", false
	}
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	k := j
	for k < len(p.s) && (p.s[k] == ' ' || p.s[k] == '\t') {
		k++
	}
	if k < len(p.s) && p.s[k] != ',' {
		return "", false
	}
	p.i = k
	return p.s[start:j], true
}

func isT68(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

// token reads an RFC 9110 token (1*tchar).
func (p *hdrParser) token() string {
	start := p.i
	for !p.eof() && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *hdrParser) quoted() (string, bool) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), true
		case c == '\\':
			p.i++
			if p.eof() {
				return "", false
			}
			b.WriteByte(p.s[p.i])
		case c < 0x20 && c != '\t', c == 0x7f:
			return "", false
		default:
			b.WriteByte(c)
		}
		p.i++
	}
	return "", false
}
