package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type checkedMark struct{}

// Admission checks a webhook once, through the voice service's check, and
// hands the voice handler the request that carries the outcome (so the
// handler does not parse and check it again); a request the check refuses
// goes to the handler uncounted, for it to refuse.
func TestAdmissionHandsOnTheCheckedRequest(t *testing.T) {
	checks := 0
	check := func(w http.ResponseWriter, r *http.Request) (*http.Request, url.Values) {
		checks++
		r = r.WithContext(context.WithValue(r.Context(), checkedMark{}, true))
		if r.Header.Get("X-Twilio-Signature") != "good" {
			return r, nil
		}
		return r, url.Values{"CallSid": {r.URL.Query().Get("sid")}}
	}
	a := newAdmission(1, check, "+15555550100", newOpsMetrics(prometheus.NewRegistry()), time.Now)
	var handed []bool
	h := a.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handed = append(handed, r.Context().Value(checkedMark{}) != nil)
		w.Write([]byte("<Response><Gather/></Response>"))
	}))
	post := func(sid, sig string) string {
		req := httptest.NewRequest(http.MethodPost, "/twilio/voice?sid="+sid, strings.NewReader("x=1"))
		req.Header.Set("X-Twilio-Signature", sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	post("CA1", "good")
	post("CA2", "forged") // not counted: the cap of 1 is not reached by it
	if b := post("CA3", "good"); !strings.Contains(b, "All our lines are busy") {
		t.Fatalf("second signed call over a cap of 1: %s", b)
	}
	if checks != 3 {
		t.Fatalf("%d checks for 3 requests", checks)
	}
	if len(handed) != 2 || !handed[0] || !handed[1] {
		t.Fatalf("handler got the checked request: %v", handed)
	}
}
