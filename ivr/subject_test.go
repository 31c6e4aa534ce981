package ivr

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const accessTokenType = "urn:ietf:params:oauth:token-type:access_token"

// registerHost posts a subject token for sid as client user.
func registerHost(t *testing.T, f *fixture, sid, user, pass string) (int, map[string]string) {
	t.Helper()
	form := url.Values{"subject_token": {"good-subject-token"}, "subject_token_type": {accessTokenType}}
	req, _ := http.NewRequest(http.MethodPost, f.base+"/v1/calls/"+sid+"/subject-token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp := mustDo(t, req)
	b := body(t, resp)
	var e map[string]string
	if resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal([]byte(b), &e); err != nil {
			t.Errorf("error body %q", b) // not Fatal: also called off the test goroutine
		}
	}
	return resp.StatusCode, e
}

func (f *fixture) preauthorized(sid string) bool {
	f.be.mu.Lock()
	defer f.be.mu.Unlock()
	return f.be.preauth[sid]
}

// A subject token can only be registered for a call not yet seen, once: a
// call that exists in any state (new, verified, ended) is refused with 409
// and keeps its caller.
func TestSubjectTokenOnlyForNewCalls(t *testing.T) {
	f := newFixture(t, FrontendGather, func(c *Config) { c.HoldAfter, c.GiveUpAfter = 5e9, 10e9 })

	fresh := "CA0000000000000000000000000000a001"
	body(t, f.post("/twilio/voice", callForm(fresh, "CallStatus", "ringing"), nil))

	verified := "CA0000000000000000000000000000a002"
	w := &webhookRunner{f: f}
	w.start(verified)
	w.do(step{speech: "Maria Garcia"})
	w.do(step{digits: "03031980"})
	if got := w.do(step{digits: "4567"}); !strings.Contains(got.text, "verified") {
		t.Fatalf("KBA: %q", got.text)
	}

	ended := "CA0000000000000000000000000000a003"
	body(t, f.post("/twilio/voice", callForm(ended, "CallStatus", "ringing"), nil))
	body(t, f.post("/twilio/status", callForm(ended, "CallStatus", "completed"), nil))

	for name, sid := range map[string]string{"new": fresh, "verified": verified, "ended": ended} {
		_, before := f.state(sid)
		code, e := registerHost(t, f, sid, "host-app", "host-secret")
		if code != http.StatusConflict || !strings.Contains(e["error_description"], "exists") {
			t.Errorf("%s call: %d %v, want 409", name, code, e)
		}
		if f.preauthorized(sid) {
			t.Errorf("%s call: the registration reached the AS", name)
		}
		if _, after := f.state(sid); after.Turn != before.Turn || after.Authenticated != before.Authenticated {
			t.Errorf("%s call changed", name)
		}
	}

	// Once per CallSid, even when hosts race.
	sid := "CA0000000000000000000000000000a004"
	codes := make([]int, 8)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = registerHost(t, f, sid, "host-app", "host-secret")
		}()
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusNoContent:
			ok++
		case http.StatusConflict:
			conflict++
		}
	}
	if ok != 1 || conflict != len(codes)-1 {
		t.Fatalf("racing registrations: %v", codes)
	}
}

// Only clients the host policy names may register, however well the AS
// authenticates them; with no policy nobody may.
func TestSubjectTokenHostsOnly(t *testing.T) {
	for name, hosts := range map[string]HostPolicy{"other host listed": HostList{"partner-portal"}, "no policy": nil, "empty list": HostList{}} {
		policy := &switchHosts{p: hosts}
		f := newFixture(t, FrontendGather, func(c *Config) { c.Hosts = policy })
		sid := "CA0000000000000000000000000000b001"
		if code, e := registerHost(t, f, sid, "host-app", "host-secret"); code != http.StatusUnauthorized || e["error"] != "invalid_client" {
			t.Errorf("%s: %d %v, want 401 invalid_client", name, code, e)
		}
		if f.preauthorized(sid) {
			t.Errorf("%s: a client that is not a host registered a token", name)
		}
		// The refusal leaves nothing behind: a host can still register.
		policy.set(HostList{"host-app"})
		if code, _ := registerHost(t, f, sid, "host-app", "host-secret"); code != http.StatusNoContent {
			t.Errorf("%s: host after refusal: %d", name, code)
		}
	}
}

func TestHostList(t *testing.T) {
	l := HostList{"a", "b"}
	if !l.IsHost("a") || !l.IsHost("b") || l.IsHost("") || l.IsHost("A") || l.IsHost("c") || (HostList{""}).IsHost("") {
		t.Fatal("HostList.IsHost")
	}
}

// switchHosts is a HostPolicy a test can change while the server runs.
type switchHosts struct {
	mu sync.Mutex
	p  HostPolicy
}

func (h *switchHosts) IsHost(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.p != nil && h.p.IsHost(id)
}

func (h *switchHosts) set(p HostPolicy) {
	h.mu.Lock()
	h.p = p
	h.mu.Unlock()
}

// A registration still being exchanged when the call arrives: the call waits
// up to HoldAfter for it, then goes on without it, and the registration is
// undone (409, its token revoked). Finished in time, the call is
// preauthorized.
func TestSubjectTokenRacesTheCall(t *testing.T) {
	for _, finishInTime := range []bool{false, true} {
		f := newFixture(t, FrontendGather, func(c *Config) { c.HoldAfter, c.GiveUpAfter = 200*time.Millisecond, 10*time.Second })
		f.be.regHeld, f.be.regRelease = make(chan struct{}), make(chan struct{})
		sid := "CA0000000000000000000000000000c001"
		code := make(chan int, 1)
		go func() {
			c, _ := registerHost(t, f, sid, "host-app", "host-secret")
			code <- c
		}()
		<-f.be.regHeld // the claim is pending, the exchange in flight
		if finishInTime {
			f.be.regRelease <- struct{}{}
			if c := <-code; c != http.StatusNoContent {
				t.Fatalf("registration: %d", c)
			}
		}
		greeting := body(t, f.post("/twilio/voice", callForm(sid, "CallStatus", "ringing"), nil))
		if finishInTime {
			if !strings.Contains(greeting, "already verified") {
				t.Errorf("registered call greeted with %s", greeting)
			}
			continue
		}
		if !strings.Contains(greeting, "first and last name") {
			t.Errorf("call that did not wait greeted with %s", greeting)
		}
		f.be.regRelease <- struct{}{}
		if c := <-code; c != http.StatusConflict {
			t.Errorf("late registration: %d, want 409", c)
		}
		f.waitEnded(sid) // the late token was revoked
		if _, st := f.state(sid); st.Authenticated {
			t.Error("the late registration authenticated the call")
		}
		if c, _ := registerHost(t, f, sid, "host-app", "host-secret"); c != http.StatusConflict {
			t.Errorf("registration after the call: %d", c)
		}
	}
}
