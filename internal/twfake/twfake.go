// Package twfake is a loopback stand-in for the parts of Twilio's REST
// API voiceauth calls — Api v2010 Messages and IncomingPhoneNumbers, Verify
// v2 Verifications and VerificationCheck — speaking their wire format:
// form-encoded requests with HTTP Basic (account SID and auth token, or an
// API key pair), JSON resources, JSON error objects with code, message,
// more_info and status, and 429 with Retry-After. Tests and scenarios point
// twilio-go at it; it is never part of a running service.
package twfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
)

// Failure is an error answer the fake gives instead of doing the work.
type Failure struct {
	Status     int // HTTP status, e.g. 400, 429, 500
	Code       int // Twilio error code, e.g. 21211, 21614, 20429
	Message    string
	RetryAfter int // seconds, sent as Retry-After when > 0
}

// Message is one text the fake "delivered".
type Message struct {
	SID, To, From, MessagingServiceSID, Body string
}

// Number is an IncomingPhoneNumber of the account.
type Number struct {
	SID, PhoneNumber, FriendlyName       string
	VoiceURL, VoiceMethod                string
	StatusCallback, StatusCallbackMethod string
}

type verification struct {
	sid, service, to, code, status string
	checks                         int
}

// Server is the fake. Its zero value is not usable: call New.
type Server struct {
	URL        string
	AccountSID string
	AuthToken  string
	VerifySID  string // the one Verify service that exists

	mu       sync.Mutex
	keys     map[string]string // API key SID → secret
	messages []Message
	verifs   map[string]*verification
	order    []string // verification SIDs, oldest first
	numbers  map[string]*Number
	// Fail, when set, is asked before each operation ("message", "verify",
	// "check", "list_numbers", "update_number") with the destination or
	// number; a non-nil Failure is answered instead.
	fail     func(op, to string) *Failure
	requests []string // "METHOD path" of every authenticated request
	ts       *httptest.Server
}

// New starts a fake for one account on loopback; Close stops it.
func New(accountSID, authToken string) *Server {
	s := &Server{AccountSID: accountSID, AuthToken: authToken, VerifySID: "VA" + hex32(),
		keys: map[string]string{}, verifs: map[string]*verification{}, numbers: map[string]*Number{}}
	s.ts = httptest.NewServer(s.handler())
	s.URL = s.ts.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// AddAPIKey lets requests authenticate as an API key pair.
func (s *Server) AddAPIKey(sid, secret string) {
	s.mu.Lock()
	s.keys[sid] = secret
	s.mu.Unlock()
}

// AddNumber puts a phone number in the account and returns its SID.
func (s *Server) AddNumber(e164 string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sid := "PN" + hex32()
	s.numbers[sid] = &Number{SID: sid, PhoneNumber: e164, FriendlyName: e164, VoiceMethod: "POST", StatusCallbackMethod: "POST"}
	return sid
}

// Number returns the account's number by E.164, if any.
func (s *Server) Number(e164 string) (Number, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.numbers {
		if n.PhoneNumber == e164 {
			return *n, true
		}
	}
	return Number{}, false
}

// SetFail installs (or, with nil, removes) the failure injector.
func (s *Server) SetFail(f func(op, to string) *Failure) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

// Messages returns every text delivered so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Requests returns "METHOD path" of every authenticated request.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// LatestCode is the newest code texted to `to` by either product: the six
// digits of the last message body, or the pending Verify code.
func (s *Server) LatestCode(to string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.messages) - 1; i >= 0; i-- {
		if m := s.messages[i]; m.To == to {
			for _, f := range strings.Fields(m.Body) {
				f = strings.TrimRight(f, ".")
				if len(f) == 6 && strings.Trim(f, "0123456789") == "" {
					return f, true
				}
			}
		}
	}
	for i := len(s.order) - 1; i >= 0; i-- { // newest first
		if v := s.verifs[s.order[i]]; v.to == to && v.status == "pending" {
			return v.code, true
		}
	}
	return "", false
}

func hex32() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers in Twilio's error shape.
func writeError(w http.ResponseWriter, f Failure) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	if f.Message == "" {
		f.Message = http.StatusText(f.Status)
	}
	writeJSON(w, f.Status, map[string]any{
		"code": f.Code, "message": f.Message, "status": f.Status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", f.Code),
	})
}

func (s *Server) authed(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	s.mu.Lock()
	good := ok && (user == s.AccountSID && pass == s.AuthToken || s.keys[user] != "" && s.keys[user] == pass)
	if good {
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	}
	s.mu.Unlock()
	if !good {
		writeError(w, Failure{Status: 401, Code: 20003, Message: "Authenticate"})
	}
	return good
}

func (s *Server) injected(w http.ResponseWriter, op, to string) bool {
	s.mu.Lock()
	f := s.fail
	s.mu.Unlock()
	if f == nil {
		return false
	}
	if fl := f(op, to); fl != nil {
		writeError(w, *fl)
		return true
	}
	return false
}

func validE164(n string) bool {
	d, ok := strings.CutPrefix(n, "+")
	return ok && len(d) >= 8 && len(d) <= 15 && strings.Trim(d, "0123456789") == ""
}

// owns authenticates the request and checks that the path's {param} is this
// fake's sid, answering Twilio's 401 or 404 otherwise.
func (s *Server) owns(w http.ResponseWriter, r *http.Request, param, sid string) bool {
	if !s.authed(w, r) {
		return false
	}
	if r.PathValue(param) != sid {
		writeError(w, Failure{Status: 404, Code: 20404, Message: "The requested resource " + r.URL.Path + " was not found"})
		return false
	}
	return true
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	acct := func(w http.ResponseWriter, r *http.Request) bool { return s.owns(w, r, "acct", s.AccountSID) }
	mux.HandleFunc("POST /2010-04-01/Accounts/{acct}/Messages.json", func(w http.ResponseWriter, r *http.Request) {
		if !acct(w, r) {
			return
		}
		r.ParseForm()
		m := Message{To: r.PostForm.Get("To"), From: r.PostForm.Get("From"), MessagingServiceSID: r.PostForm.Get("MessagingServiceSid"), Body: r.PostForm.Get("Body")}
		switch {
		case m.From == "" && m.MessagingServiceSID == "":
			writeError(w, Failure{Status: 400, Code: 21603, Message: "A 'From' or 'MessagingServiceSid' parameter is required to send a message"})
			return
		case m.Body == "":
			writeError(w, Failure{Status: 400, Code: 21602, Message: "Message body is required."})
			return
		case !validE164(m.To):
			writeError(w, Failure{Status: 400, Code: 21211, Message: "The 'To' number is not a valid phone number."})
			return
		}
		if s.injected(w, "message", m.To) {
			return
		}
		m.SID = "SM" + hex32()
		s.mu.Lock()
		s.messages = append(s.messages, m)
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{
			"sid": m.SID, "account_sid": s.AccountSID, "to": m.To, "from": nilIfEmpty(m.From), "body": m.Body,
			"messaging_service_sid": nilIfEmpty(m.MessagingServiceSID), "status": "queued", "direction": "outbound-api",
			"api_version": "2010-04-01", "num_segments": "1", "error_code": nil, "error_message": nil,
			"uri": "/2010-04-01/Accounts/" + s.AccountSID + "/Messages/" + m.SID + ".json",
		})
	})
	service := func(w http.ResponseWriter, r *http.Request) bool { return s.owns(w, r, "svc", s.VerifySID) }
	mux.HandleFunc("POST /v2/Services/{svc}/Verifications", func(w http.ResponseWriter, r *http.Request) {
		if !service(w, r) {
			return
		}
		r.ParseForm()
		to, ch := r.PostForm.Get("To"), r.PostForm.Get("Channel")
		if ch != "sms" && ch != "call" && ch != "email" && ch != "whatsapp" {
			writeError(w, Failure{Status: 400, Code: 60200, Message: "Invalid parameter: Channel"})
			return
		}
		if !validE164(to) {
			writeError(w, Failure{Status: 400, Code: 60200, Message: "Invalid parameter `To`"})
			return
		}
		if s.injected(w, "verify", to) {
			return
		}
		n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
		v := &verification{sid: "VE" + hex32(), service: s.VerifySID, to: to, code: fmt.Sprintf("%06d", n.Int64()), status: "pending"}
		s.mu.Lock()
		s.verifs[v.sid] = v
		s.order = append(s.order, v.sid)
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, s.verifJSON(v))
	})
	mux.HandleFunc("POST /v2/Services/{svc}/VerificationCheck", func(w http.ResponseWriter, r *http.Request) {
		if !service(w, r) {
			return
		}
		r.ParseForm()
		sid, code := r.PostForm.Get("VerificationSid"), r.PostForm.Get("Code")
		if code == "" || sid == "" && r.PostForm.Get("To") == "" {
			writeError(w, Failure{Status: 400, Code: 60200, Message: "Invalid parameter"})
			return
		}
		s.mu.Lock()
		v := s.verifs[sid]
		s.mu.Unlock()
		if v == nil || v.status != "pending" {
			writeError(w, Failure{Status: 404, Code: 20404, Message: "The requested resource " + r.URL.Path + " was not found"})
			return
		}
		if s.injected(w, "check", v.to) {
			return
		}
		s.mu.Lock()
		v.checks++
		if code == v.code {
			v.status = "approved"
		} else if v.checks >= 5 {
			v.status = "max_attempts_reached"
		}
		out := s.verifJSON(v)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /2010-04-01/Accounts/{acct}/IncomingPhoneNumbers.json", func(w http.ResponseWriter, r *http.Request) {
		if !acct(w, r) {
			return
		}
		want := r.URL.Query().Get("PhoneNumber")
		if s.injected(w, "list_numbers", want) {
			return
		}
		s.mu.Lock()
		var list []map[string]any
		for _, n := range s.numbers {
			if want == "" || n.PhoneNumber == want {
				list = append(list, s.numberJSON(n))
			}
		}
		s.mu.Unlock()
		if list == nil {
			list = []map[string]any{}
		}
		uri := r.URL.RequestURI()
		writeJSON(w, http.StatusOK, map[string]any{
			"incoming_phone_numbers": list, "page": 0, "page_size": 50, "start": 0, "end": len(list),
			"first_page_uri": uri, "next_page_uri": nil, "previous_page_uri": nil, "uri": uri,
		})
	})
	mux.HandleFunc("POST /2010-04-01/Accounts/{acct}/IncomingPhoneNumbers/{sid}", func(w http.ResponseWriter, r *http.Request) {
		if !acct(w, r) {
			return
		}
		sid := strings.TrimSuffix(r.PathValue("sid"), ".json")
		s.mu.Lock()
		n := s.numbers[sid]
		s.mu.Unlock()
		if n == nil {
			writeError(w, Failure{Status: 404, Code: 20404, Message: "The requested resource " + r.URL.Path + " was not found"})
			return
		}
		if s.injected(w, "update_number", n.PhoneNumber) {
			return
		}
		r.ParseForm()
		s.mu.Lock()
		set := func(dst *string, k string) {
			if r.PostForm.Has(k) {
				*dst = r.PostForm.Get(k)
			}
		}
		set(&n.VoiceURL, "VoiceUrl")
		set(&n.VoiceMethod, "VoiceMethod")
		set(&n.StatusCallback, "StatusCallback")
		set(&n.StatusCallbackMethod, "StatusCallbackMethod")
		out := s.numberJSON(n)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, Failure{Status: 404, Code: 20404, Message: "The requested resource " + r.URL.Path + " was not found"})
	})
	return mux
}

func (s *Server) verifJSON(v *verification) map[string]any {
	return map[string]any{
		"sid": v.sid, "service_sid": v.service, "account_sid": s.AccountSID, "to": v.to, "channel": "sms",
		"status": v.status, "valid": v.status == "approved", "amount": nil, "payee": nil,
		"url": "https://verify.twilio.com/v2/Services/" + v.service + "/Verifications/" + v.sid,
	}
}

func (s *Server) numberJSON(n *Number) map[string]any {
	return map[string]any{
		"sid": n.SID, "account_sid": s.AccountSID, "phone_number": n.PhoneNumber, "friendly_name": n.FriendlyName,
		"voice_url": n.VoiceURL, "voice_method": n.VoiceMethod, "status_callback": n.StatusCallback,
		"status_callback_method": n.StatusCallbackMethod, "api_version": "2010-04-01",
		"capabilities": map[string]bool{"voice": true, "sms": true, "mms": false, "fax": false},
		"uri":          "/2010-04-01/Accounts/" + s.AccountSID + "/IncomingPhoneNumbers/" + n.SID + ".json",
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
