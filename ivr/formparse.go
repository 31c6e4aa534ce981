package ivr

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// readForm reads a webhook's posted form as r.ParseForm would and returns
// r.PostForm, with fewer allocations: the body is read into a pooled buffer
// and becomes one string, keys and values without escapes are slices of
// it, and the first values of all keys share one backing array. The result
// is the form both the signature check and the handler use (one reading of
// one body). Anything but a POST of exactly "application/x-www-form-
// urlencoded" (what Twilio sends), and bodies with more pairs than
// url.ParseQuery allows, go to r.ParseForm itself, so the result and the
// error always agree with it (FuzzReadFormMatchesParseForm).
//
// r.Body must be an http.MaxBytesReader: like ParseForm, readForm then
// applies no size limit of its own.
func readForm(r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost || r.Body == nil || r.PostForm != nil || r.Form != nil ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		return parseFormSlow(r)
	}
	body, err := readBody(r.Body)
	if err != nil {
		// ParseForm: the read error; the query is not looked at.
		return nil, err
	}
	if strings.Count(body, "&") >= maxFastPairs || strings.Count(r.URL.RawQuery, "&") >= maxFastPairs {
		// url.ParseQuery's pair limit (GODEBUG urlmaxqueryparams): let it decide.
		return slowFromBody(r, body)
	}
	form := make(url.Values, strings.Count(body, "&")+1)
	err = parseForm(form, body)
	if e := parseForm(nil, r.URL.RawQuery); err == nil {
		err = e // ParseForm refuses a malformed query string too
	}
	if err != nil {
		return nil, err
	}
	r.PostForm = form // r.FormValue and friends still work, without reading again
	return form, nil
}

// maxFastPairs keeps readForm well below url.ParseQuery's default limit of
// 10,000 pairs; longer forms are parsed by url.ParseQuery itself.
const maxFastPairs = 1000

func parseFormSlow(r *http.Request) (url.Values, error) {
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

// slowFromBody hands an already read body to ParseForm.
func slowFromBody(r *http.Request, body string) (url.Values, error) {
	r.Body = io.NopCloser(strings.NewReader(body))
	return parseFormSlow(r)
}

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// readBody reads all of rd into a pooled buffer and returns it as a string.
func readBody(rd io.Reader) (string, error) {
	bp := bodyBufs.Get().(*[]byte)
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			clear(b)
			*bp = b[:0]
			bodyBufs.Put(bp)
			return "", err
		}
	}
	s := string(b)
	clear(b) // the body holds the caller's answers: nothing of it stays in the pool
	if cap(b) <= maxBody+1024 {
		*bp = b[:0]
		bodyBufs.Put(bp)
	}
	return s, nil
}

// parseForm is url.ParseQuery's loop (net/url parseQuery, Go 1.27) adding
// to m, or only checking when m is nil. Parts without '%' or '+' are used
// as they are, slices of s, since QueryUnescape would return them unchanged;
// a key's first value is placed in a shared array with room for one, so a
// second value of the same key copies it out instead of overwriting a
// neighbour.
func parseForm(m url.Values, s string) (err error) {
	var firsts []string
	if m != nil {
		firsts = make([]string, 0, strings.Count(s, "&")+1)
	}
	for s != "" {
		var key string
		key, s, _ = strings.Cut(s, "&")
		if strings.Contains(key, ";") {
			err = errSemicolon
			continue
		}
		if key == "" {
			continue
		}
		key, value, _ := strings.Cut(key, "=")
		key, err1 := unescape(key)
		if err1 != nil {
			if err == nil {
				err = err1
			}
			continue
		}
		value, err1 = unescape(value)
		if err1 != nil {
			if err == nil {
				err = err1
			}
			continue
		}
		if m == nil {
			continue
		}
		if v, ok := m[key]; ok {
			m[key] = append(v, value)
			continue
		}
		firsts = append(firsts, value)
		n := len(firsts)
		m[key] = firsts[n-1 : n : n]
	}
	return err
}

// errSemicolon is url.ParseQuery's error text for a ';' in a pair.
var errSemicolon = errors.New("invalid semicolon separator in query")

func unescape(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// queryGet is url.ParseQuery(raw).Get(key) without building the map: the
// first value of key among the pairs ParseQuery would keep.
func queryGet(raw, key string) string {
	if strings.Count(raw, "&") >= maxFastPairs {
		q, _ := url.ParseQuery(raw)
		return q.Get(key)
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if k, err := unescape(k); err != nil || k != key {
			continue
		}
		if v, err := unescape(v); err == nil {
			return v
		}
	}
	return ""
}
