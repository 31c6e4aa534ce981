package ivr

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// The webhook signature check, once per request and without twilio-go's
// per-request overhead. twilio-go's RequestValidator.Validate stays the
// reference (TestSignatureMatchesTwilio, FuzzSignatureMatchesTwilio): the
// same HMAC-SHA1 over the URL (with and without the default port) followed
// by the sorted keys, each with its first value. What is saved: the URL
// variants are computed once per request URI (three url.Parse and two
// String calls per request and token in twilio-go), the parameters are
// written straight into a pooled HMAC (no map copy, no fmt.Sprintf, no
// string concatenation), and a request that admission already checked is
// not checked again (CheckSigned).

// sigKey is one auth token's HMAC, pooled: hmac.New derives the pads on
// every call, Reset reuses them.
type sigKey struct{ pool sync.Pool } // of *sigMAC

// sigMAC is a keyed HMAC with the buffer the signed text is assembled in:
// written piece by piece, each string became a []byte allocation (the HMAC
// has no WriteString), about 25 per webhook.
type sigMAC struct {
	h   hash.Hash
	buf []byte
	sum [sha1.Size]byte
}

func newSigKey(token string) *sigKey {
	k := []byte(token)
	return &sigKey{pool: sync.Pool{New: func() any {
		return &sigMAC{h: hmac.New(sha1.New, k), buf: make([]byte, 0, 2048)}
	}}}
}

// sigURLs caches a request URI's two signed URL variants.
type sigURLs struct {
	mu   sync.RWMutex
	urls map[string][2]string
}

// sigURLCacheMax bounds the cache: request URIs come from outside. Twilio
// only ever sends the few this service hands out (/twilio/voice,
// /twilio/gather?turn=N, …); anything past the bound is computed per
// request.
const sigURLCacheMax = 512

func (c *sigURLs) get(full string) [2]string {
	c.mu.RLock()
	v, ok := c.urls[full]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = [2]string{twilioAddPort(full), twilioRemovePort(full)}
	c.mu.Lock()
	if c.urls == nil || len(c.urls) >= sigURLCacheMax {
		c.urls = make(map[string][2]string)
	}
	c.urls[full] = v
	c.mu.Unlock()
	return v
}

// signedBy reports whether sig is a valid X-Twilio-Signature of fullURL and
// form by any configured token, exactly as twilio-go's
// RequestValidator.Validate(fullURL, {k: form[k][0]}, sig) does for each.
func (s *Server) signedBy(fullURL string, form url.Values, sig string) bool {
	if sig == "" {
		return false
	}
	var kbuf [48]string // Twilio's voice webhooks carry 20–30 keys
	keys := kbuf[:0]
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	urls := s.sigURLs.get(fullURL)
	var b64 [28]byte // base64 of 20 bytes
	for _, key := range s.sigKeys {
		for i, u := range urls {
			if i == 1 && u == urls[0] {
				break // the same text signs the same
			}
			m := key.pool.Get().(*sigMAC)
			b := append(m.buf[:0], u...)
			for _, k := range keys {
				b = append(b, k...)
				if v := form[k]; len(v) > 0 {
					b = append(b, v[0]...)
				}
			}
			m.h.Reset()
			m.h.Write(b)
			base64.StdEncoding.Encode(b64[:], m.h.Sum(m.sum[:0]))
			clear(b) // the form holds the caller's answers: nothing of it stays in the pool
			if cap(b) <= 2*maxBody {
				m.buf = b[:0]
			}
			key.pool.Put(m)
			if subtle.ConstantTimeCompare(b64[:], []byte(sig)) == 1 {
				return true
			}
		}
	}
	return false
}

// formCheck is the outcome of reading and checking one request.
type formCheck struct {
	form   url.Values // r.PostForm
	err    error      // ParseForm's error, if any
	signed bool
}

type formCheckKey struct{}

// CheckSigned reads r's form and checks its X-Twilio-Signature, once: the
// request it returns carries the outcome, and the webhook handlers use it
// instead of reading and checking again. form is the posted form when the
// signature is valid, nil otherwise (the handler then refuses the request
// as it would have). Meant for a wrapper in front of Handler (admission);
// only this package can attach an outcome, so nothing else can skip the
// check.
func (s *Server) CheckSigned(w http.ResponseWriter, r *http.Request) (*http.Request, url.Values) {
	c := s.checkForm(w, r)
	r = r.WithContext(context.WithValue(r.Context(), formCheckKey{}, c))
	if !c.signed {
		return r, nil
	}
	return r, c.form
}

// checkForm returns the outcome attached by CheckSigned or works it out.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) *formCheck {
	if c, ok := r.Context().Value(formCheckKey{}).(*formCheck); ok {
		return c
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	form, err := readForm(r) // formparse.go: ParseForm's result, read once
	if err != nil {
		return &formCheck{err: err}
	}
	return &formCheck{form: form,
		signed: s.signedBy(s.publicURL+r.URL.RequestURI(), form, r.Header.Get("X-Twilio-Signature"))}
}

// twilioAddPort and twilioRemovePort are twilio-go v1.31.0's addPort and
// removePort (client/request_validator.go, MIT): the signature is checked
// over both, byte for byte as twilio-go builds them.
func twilioAddPort(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	if len(parsed.Port()) != 0 {
		return u
	}
	if parsed.Scheme == "https" {
		return twilioUpdatePort(u, 443)
	}
	return twilioUpdatePort(u, 80)
}

func twilioUpdatePort(u string, newPort int) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	var newHost string
	if len(parsed.Port()) == 0 {
		newHost = fmt.Sprintf("%s:%d", parsed.Host, newPort)
	} else {
		oldHost := strings.Split(parsed.Host, ":")[0]
		newHost = fmt.Sprintf("%s:%d", oldHost, newPort)
	}
	parsed.Host = newHost
	return parsed.String()
}

func twilioRemovePort(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	if len(parsed.Port()) == 0 {
		return u
	}
	parsed.Host = strings.Split(parsed.Host, ":")[0]
	return parsed.String()
}
