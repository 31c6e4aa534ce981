package mcpclient

import (
	"strconv"
	"strings"
)

// AuthChallenge is a Bearer challenge from a 401/403 WWW-Authenticate header
// (RFC 6750 §3, RFC 9470 §3, RFC 9728 §5.1).
type AuthChallenge struct {
	Status           int
	Error            string // invalid_token | insufficient_scope | insufficient_user_authentication | …
	Scope            string
	ACRValues        string
	ResourceMetadata string
	Raw              string // the header as received (never contains a token)
	MaxAge           int    // -1 when absent
}

// ParseChallenge reads the first Bearer challenge out of the given
// WWW-Authenticate header values. Unknown parameters and other schemes are
// ignored; a malformed header yields a challenge with only Status and Raw.
func ParseChallenge(status int, headers []string) AuthChallenge {
	ch := AuthChallenge{Status: status, MaxAge: -1, Raw: strings.Join(headers, ", ")}
	if len(ch.Raw) > 4096 {
		ch.Raw = ch.Raw[:4096]
	}
	for _, h := range headers {
		if params, ok := bearerParams(h); ok {
			ch.Error = params["error"]
			ch.Scope = params["scope"]
			ch.ACRValues = params["acr_values"]
			ch.ResourceMetadata = params["resource_metadata"]
			if v, ok := params["max_age"]; ok {
				if n, err := strconv.Atoi(v); err == nil && n >= 0 {
					ch.MaxAge = n
				}
			}
			return ch
		}
	}
	return ch
}

// bearerParams finds a "Bearer" challenge in one header value and returns its
// auth-params. It is a small tokenizer for RFC 9110 §11.6.1 syntax:
// scheme [ 1*SP auth-param *( OWS "," OWS auth-param ) ], several challenges
// separated by commas.
func bearerParams(h string) (map[string]string, bool) {
	p := &authParser{s: h}
	for !p.eof() {
		p.skipSep()
		scheme := p.token()
		if scheme == "" {
			return nil, false
		}
		params := map[string]string{}
		for {
			p.skipSpace()
			save := p.i
			name := p.token()
			p.skipSpace()
			if name == "" || p.eof() || p.s[p.i] != '=' {
				// Not an auth-param: the start of the next challenge.
				p.i = save
				break
			}
			p.i++ // '='
			p.skipSpace()
			var val string
			if !p.eof() && p.s[p.i] == '"' {
				v, ok := p.quoted()
				if !ok {
					return nil, false
				}
				val = v
			} else {
				val = p.token68()
			}
			name = strings.ToLower(name)
			if _, dup := params[name]; !dup { // first value wins
				params[name] = val
			}
			p.skipSpace()
			if p.eof() || p.s[p.i] != ',' {
				break
			}
			p.i++ // ','
		}
		if strings.EqualFold(scheme, "Bearer") {
			return params, true
		}
		if p.i == 0 {
			return nil, false
		}
	}
	return nil, false
}

type authParser struct {
	s string
	i int
}

func (p *authParser) eof() bool { return p.i >= len(p.s) }

func (p *authParser) skipSpace() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *authParser) skipSep() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func isTchar(c byte) bool {
	return c > 0x20 && c < 0x7f && !strings.ContainsRune("\"(),/:;<=>?@[\\]{}", rune(c))
}

func (p *authParser) token() string {
	start := p.i
	for !p.eof() && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// token68 also accepts "/" ":" and trailing "=" that unquoted values use in practice.
func (p *authParser) token68() string {
	start := p.i
	for !p.eof() && (isTchar(p.s[p.i]) || p.s[p.i] == '/' || p.s[p.i] == ':' || p.s[p.i] == '=') {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *authParser) quoted() (string, bool) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		switch c {
		case '\\':
			p.i++
			if p.eof() {
				return "", false
			}
			b.WriteByte(p.s[p.i])
		case '"':
			p.i++
			return b.String(), true
		default:
			b.WriteByte(c)
		}
		p.i++
	}
	return "", false
}
