package healthmcp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is the one reader of a POSTed JSON-RPC body. The gate decides on
// what it parsed here and hands the MCP SDK a canonical re-encoding of that
// parse (never the client's bytes), so the gate and the dispatcher cannot
// read the same request two ways. Anything that a lenient decoder and the
// SDK's case-sensitive one could disagree on is refused, not skipped:
// duplicate member names (also when they differ only in case), a batch,
// bytes after the value, invalid UTF-8, lone surrogates, a byte-order mark,
// wrong-typed envelope fields, unknown envelope members.

// errBody is a body the gate refuses; its text is safe to show the client
// (it never quotes the body).
type errBody struct{ reason string }

func (e *errBody) Error() string { return "unreadable JSON-RPC body: " + e.reason }

func bodyErr(format string, args ...any) error {
	return &errBody{reason: fmt.Sprintf(format, args...)}
}

// maxDepth bounds nesting; MCP requests nest a handful of levels.
const maxDepth = 64

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

// jvalue is one parsed JSON value. Objects keep their members in order.
type jvalue struct {
	kind    jkind
	text    string // string value; number literal; "true"/"false"
	elems   []jvalue
	members []jmember
}

type jmember struct {
	key string
	val jvalue
}

func (v *jvalue) get(key string) (*jvalue, bool) {
	for i := range v.members {
		if v.members[i].key == key {
			return &v.members[i].val, true
		}
	}
	return nil, false
}

// parseJSON reads exactly one JSON value (RFC 8259) from b, with optional
// surrounding whitespace, and refuses everything the gate must not guess at.
func parseJSON(b []byte) (jvalue, error) {
	if !utf8.Valid(b) {
		return jvalue{}, bodyErr("invalid UTF-8")
	}
	p := &jparser{b: b}
	p.ws()
	v, err := p.value(0)
	if err != nil {
		return jvalue{}, err
	}
	p.ws()
	if p.i != len(p.b) {
		return jvalue{}, bodyErr("bytes after the JSON value at offset %d", p.i)
	}
	return v, nil
}

type jparser struct {
	b []byte
	i int
}

func (p *jparser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jparser) value(depth int) (jvalue, error) {
	if depth > maxDepth {
		return jvalue{}, bodyErr("nested deeper than %d", maxDepth)
	}
	if p.i >= len(p.b) {
		return jvalue{}, bodyErr("unexpected end of input")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		return jvalue{kind: jString, text: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.lit("true"):
		return jvalue{kind: jBool, text: "true"}, nil
	case p.lit("false"):
		return jvalue{kind: jBool, text: "false"}, nil
	case p.lit("null"):
		return jvalue{kind: jNull}, nil
	}
	return jvalue{}, bodyErr("unexpected character at offset %d", p.i)
}

func (p *jparser) lit(s string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.i += len(s)
		return true
	}
	return false
}

func (p *jparser) object(depth int) (jvalue, error) {
	p.i++ // {
	v := jvalue{kind: jObject}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return v, nil
	}
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return jvalue{}, bodyErr("expected a member name at offset %d", p.i)
		}
		k, err := p.str()
		if err != nil {
			return jvalue{}, err
		}
		if !plainKey(k) {
			return jvalue{}, bodyErr("member name needs escaping")
		}
		for _, m := range v.members {
			// EqualFold is Unicode case folding: "Name", "NAME" and "name"
			// (and the Kelvin sign beside "k") are one name to a lenient
			// decoder, so any two of them are ambiguous.
			if strings.EqualFold(m.key, k) {
				return jvalue{}, bodyErr("duplicate member name")
			}
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return jvalue{}, bodyErr("expected ':' at offset %d", p.i)
		}
		p.i++
		p.ws()
		val, err := p.value(depth + 1)
		if err != nil {
			return jvalue{}, err
		}
		v.members = append(v.members, jmember{key: k, val: val})
		if done, err := p.afterElement('}'); err != nil {
			return jvalue{}, err
		} else if done {
			return v, nil
		}
	}
}

// afterElement reads what follows an object member or array element: a ','
// (more to come) or the closing byte (done).
func (p *jparser) afterElement(closing byte) (done bool, err error) {
	p.ws()
	if p.i >= len(p.b) {
		return false, bodyErr("unexpected end of input")
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		return false, nil
	case closing:
		p.i++
		return true, nil
	}
	return false, bodyErr("expected ',' or '%c' at offset %d", closing, p.i)
}

// plainKey: a member name the canonical encoding writes without escapes,
// so that no decoder has to unescape a name before matching it.
func plainKey(k string) bool {
	for _, r := range k {
		if r < 0x20 || r == '"' || r == '\\' || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func (p *jparser) array(depth int) (jvalue, error) {
	p.i++ // [
	v := jvalue{kind: jArray}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return v, nil
	}
	for {
		p.ws()
		e, err := p.value(depth + 1)
		if err != nil {
			return jvalue{}, err
		}
		v.elems = append(v.elems, e)
		if done, err := p.afterElement(']'); err != nil {
			return jvalue{}, err
		} else if done {
			return v, nil
		}
	}
}

func (p *jparser) number() (jvalue, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.b) && p.b[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return jvalue{}, bodyErr("bad number at offset %d", start)
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return jvalue{}, bodyErr("bad number at offset %d", start)
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return jvalue{}, bodyErr("bad number at offset %d", start)
		}
	}
	lit := string(p.b[start:p.i])
	// A number no float64 holds is read differently by different decoders.
	if f, err := strconv.ParseFloat(lit, 64); err != nil || f != f {
		return jvalue{}, bodyErr("number out of range at offset %d", start)
	}
	return jvalue{kind: jNumber, text: lit}, nil
}

// str reads a string starting at the opening quote and returns its value.
func (p *jparser) str() (string, error) {
	start := p.i
	p.i++ // "
	var sb strings.Builder
	for {
		if p.i >= len(p.b) {
			return "", bodyErr("unterminated string at offset %d", start)
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return sb.String(), nil
		case c < 0x20:
			return "", bodyErr("control character in string at offset %d", p.i)
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				return "", bodyErr("unterminated string at offset %d", start)
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				sb.WriteByte(e)
			case 'b':
				sb.WriteByte('\b')
			case 'f':
				sb.WriteByte('\f')
			case 'n':
				sb.WriteByte('\n')
			case 'r':
				sb.WriteByte('\r')
			case 't':
				sb.WriteByte('\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", bodyErr("bad \\u escape at offset %d", p.i)
				}
				if utf16.IsSurrogate(r) {
					// Only a high surrogate followed by an escaped low one is a
					// character; a lone half is decoded differently by
					// different decoders (U+FFFD, error, or raw bytes).
					if r >= 0xdc00 || !p.lit(`\u`) {
						return "", bodyErr("lone surrogate in string")
					}
					r2, ok := p.hex4()
					if !ok || r2 < 0xdc00 || r2 > 0xdfff {
						return "", bodyErr("lone surrogate in string")
					}
					r = utf16.DecodeRune(r, r2)
				}
				sb.WriteRune(r)
			default:
				return "", bodyErr("bad escape at offset %d", p.i-1)
			}
		default:
			// Raw bytes: the body is valid UTF-8 (checked up front).
			sb.WriteByte(c)
			p.i++
		}
	}
}

func (p *jparser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.i += 4
	return r, true
}

// encode writes v canonically: no insignificant whitespace, member order
// kept, number literals as parsed, strings escaped only where JSON must.
func (v *jvalue) encode(buf *bytes.Buffer) {
	switch v.kind {
	case jNull:
		buf.WriteString("null")
	case jBool, jNumber:
		buf.WriteString(v.text)
	case jString:
		encodeString(buf, v.text)
	case jArray:
		buf.WriteByte('[')
		for i := range v.elems {
			if i > 0 {
				buf.WriteByte(',')
			}
			v.elems[i].encode(buf)
		}
		buf.WriteByte(']')
	case jObject:
		buf.WriteByte('{')
		for i := range v.members {
			if i > 0 {
				buf.WriteByte(',')
			}
			encodeString(buf, v.members[i].key)
			buf.WriteByte(':')
			v.members[i].val.encode(buf)
		}
		buf.WriteByte('}')
	}
}

func encodeString(buf *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	buf.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf.WriteByte('\\')
			buf.WriteByte(c)
		case c < 0x20:
			buf.WriteString(`\u00`)
			buf.WriteByte(hex[c>>4])
			buf.WriteByte(hex[c&0xf])
		default:
			buf.WriteByte(c)
		}
	}
	buf.WriteByte('"')
}

// rpcMsg is the gate's reading of one JSON-RPC message.
type rpcMsg struct {
	ID     []byte // canonical JSON of the id; nil when absent (a notification)
	Method string // "" for a response
	Tool   string // params.name of a tools/call
	Args   []string
	// MetaVersion is params._meta["io.modelcontextprotocol/protocolVersion"]
	// (2026-07-28 requests carry it; the gate holds it to the
	// Mcp-Protocol-Version header); HasMetaVersion tells "" from absent.
	MetaVersion    string
	HasMetaVersion bool
	Body           []byte // canonical re-encoding: the bytes the SDK is given
}

// metaKeyProtocolVersion is the 2026-07-28 per-request revision in _meta.
const metaKeyProtocolVersion = "io.modelcontextprotocol/protocolVersion"

// envelope members of a JSON-RPC 2.0 message; anything else is refused so
// that no case-variant or look-alike member reaches the SDK.
var envelopeMembers = map[string]jkind{"jsonrpc": jString, "id": 0, "method": jString, "params": jObject, "result": 0, "error": jObject}

// callParams are the tools/call params the gate lets through.
var callParams = map[string]jkind{"name": jString, "arguments": jObject, "_meta": jObject}

// readRPC is the gate's strict reader: one JSON-RPC 2.0 request,
// notification or response, read exactly as the SDK will read Body.
func readRPC(body []byte) (*rpcMsg, error) {
	v, err := parseJSON(body)
	if err != nil {
		return nil, err
	}
	switch v.kind {
	case jObject:
	case jArray:
		return nil, bodyErr("JSON-RPC batches are not accepted")
	default:
		return nil, bodyErr("a JSON-RPC message must be an object")
	}
	for _, m := range v.members {
		want, ok := envelopeMembers[m.key]
		if !ok {
			return nil, bodyErr("unknown member %q", m.key)
		}
		if m.key != "id" && m.key != "result" && m.val.kind != want {
			return nil, bodyErr("%s must be a JSON %s, not %s", m.key, want, m.val.kind)
		}
	}
	msg := &rpcMsg{}
	if ver, _ := v.get("jsonrpc"); ver == nil || ver.text != "2.0" {
		return nil, bodyErr(`jsonrpc must be "2.0"`)
	}
	if id, ok := v.get("id"); ok {
		if !validID(id) {
			return nil, bodyErr("id must be a string or an integer")
		}
		var b bytes.Buffer
		id.encode(&b)
		msg.ID = b.Bytes()
	}
	method, isReq := v.get("method")
	_, hasResult := v.get("result")
	_, hasError := v.get("error")
	params, hasParams := v.get("params")
	switch {
	case isReq:
		if hasResult || hasError {
			return nil, bodyErr("a request has no result or error")
		}
		if method.text == "" {
			return nil, bodyErr("method is empty")
		}
		msg.Method = method.text
	default:
		if msg.ID == nil || hasParams || hasResult == hasError {
			return nil, bodyErr("neither a request nor a response")
		}
	}
	if hasParams {
		// _meta is read by the SDK on every request (2026-07-28 puts the
		// revision, client info and capabilities there): one shape only.
		if meta, ok := params.get("_meta"); ok {
			if meta.kind != jObject {
				return nil, bodyErr("params._meta must be a JSON object, not %s", meta.kind)
			}
			if pv, ok := meta.get(metaKeyProtocolVersion); ok {
				if pv.kind != jString {
					return nil, bodyErr("params._meta[%q] must be a JSON string", metaKeyProtocolVersion)
				}
				msg.MetaVersion, msg.HasMetaVersion = pv.text, true
			}
		}
	}
	if msg.Method == "tools/call" {
		if !hasParams {
			return nil, bodyErr("tools/call needs params")
		}
		for _, m := range params.members {
			want, ok := callParams[m.key]
			if !ok {
				return nil, bodyErr("unknown tools/call parameter %q", m.key)
			}
			// "arguments": null is what a client with a nil map sends; it
			// reads as "no arguments" to the gate and to the tool handler.
			if m.val.kind != want && (m.key != "arguments" || m.val.kind != jNull) {
				return nil, bodyErr("params.%s must be a JSON %s, not %s", m.key, want, m.val.kind)
			}
		}
		name, ok := params.get("name")
		if !ok || name.text == "" {
			return nil, bodyErr("tools/call needs params.name")
		}
		msg.Tool = name.text
		if args, ok := params.get("arguments"); ok {
			for _, a := range args.members {
				msg.Args = append(msg.Args, a.key)
			}
		}
	}
	var b bytes.Buffer
	v.encode(&b)
	msg.Body = b.Bytes()
	return msg, nil
}

// validID: a string, or an integer the SDK's float64 reading keeps exact.
func validID(id *jvalue) bool {
	switch id.kind {
	case jString:
		return true
	case jNumber:
		n, err := strconv.ParseInt(id.text, 10, 64)
		return err == nil && n > -(1<<53) && n < 1<<53
	}
	return false
}

// isBodyErr reports whether err is a refusal of the body itself.
func isBodyErr(err error) bool {
	var e *errBody
	return errors.As(err, &e)
}
