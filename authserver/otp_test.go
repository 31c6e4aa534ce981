package authserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTwilio speaks the Messages and Verify v2 REST shapes on loopback.
type fakeTwilio struct {
	mu       sync.Mutex
	messages []map[string]string
	verify   map[string]string // verification sid → code
	to       map[string]string
}

func (f *fakeTwilio) handler(t *testing.T, sid, token string) http.Handler {
	mux := http.NewServeMux()
	auth := func(w http.ResponseWriter, r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		if !ok || u != sid || p != token || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(401)
			w.Write([]byte(`{"code":20003,"message":"Authenticate","status":401}`))
			return false
		}
		r.ParseForm()
		return true
	}
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", func(w http.ResponseWriter, r *http.Request) {
		if !auth(w, r) || r.PathValue("sid") != sid {
			return
		}
		f.mu.Lock()
		f.messages = append(f.messages, map[string]string{"To": r.Form.Get("To"), "From": r.Form.Get("From"), "Body": r.Form.Get("Body")})
		f.mu.Unlock()
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(map[string]string{"sid": "SM" + randomToken(8), "status": "queued"})
	})
	mux.HandleFunc("POST /v2/Services/{svc}/Verifications", func(w http.ResponseWriter, r *http.Request) {
		if !auth(w, r) || r.Form.Get("Channel") != "sms" {
			return
		}
		f.mu.Lock()
		vsid := "VE" + randomToken(8)
		f.verify[vsid] = "424242"
		f.to[vsid] = r.Form.Get("To")
		f.mu.Unlock()
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(map[string]string{"sid": vsid, "status": "pending", "to": r.Form.Get("To")})
	})
	mux.HandleFunc("POST /v2/Services/{svc}/VerificationCheck", func(w http.ResponseWriter, r *http.Request) {
		if !auth(w, r) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		code, ok := f.verify[r.Form.Get("VerificationSid")]
		if !ok {
			w.WriteHeader(404)
			w.Write([]byte(`{"code":20404,"status":404}`))
			return
		}
		st := "pending"
		if r.Form.Get("Code") == code {
			st = "approved"
			delete(f.verify, r.Form.Get("VerificationSid"))
		}
		json.NewEncoder(w).Encode(map[string]any{"status": st, "valid": st == "approved"})
	})
	return mux
}

func TestTwilioChannels(t *testing.T) {
	ft := &fakeTwilio{verify: map[string]string{}, to: map[string]string{}}
	srv := httptest.NewServer(ft.handler(t, "AC123", "tok"))
	defer srv.Close()
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	st := openStore(t, clk.Now)

	t.Run("messaging", func(t *testing.T) {
		m := &TwilioMessaging{BaseURL: srv.URL, AccountSID: "AC123", From: "+15555550000", AuthToken: "tok", HTTPClient: srv.Client(), Store: st, Now: clk.Now}
		ref, err := m.Send(ctx, "+15555550101")
		if err != nil {
			t.Fatal(err)
		}
		code := regexp.MustCompile(`\d{6}`).FindString(ft.messages[0]["Body"])
		if ft.messages[0]["To"] != "+15555550101" || ft.messages[0]["From"] != "+15555550000" || code == "" {
			t.Fatalf("message %v", ft.messages[0])
		}
		if ok, _ := m.Check(ctx, ref, "999999"); ok && code != "999999" {
			t.Fatal("wrong code accepted")
		}
		if ok, err := m.Check(ctx, ref, code); !ok || err != nil {
			t.Fatalf("right code: %v %v", ok, err)
		}
		if ok, _ := m.Check(ctx, ref, code); ok {
			t.Fatal("code reused")
		}
		ref, _ = m.Send(ctx, "+15555550101")
		code = regexp.MustCompile(`\d{6}`).FindString(ft.messages[1]["Body"])
		clk.Add(10*time.Minute + time.Second)
		if ok, _ := m.Check(ctx, ref, code); ok {
			t.Fatal("expired code accepted")
		}
		bad := &TwilioMessaging{BaseURL: srv.URL, AccountSID: "AC123", AuthToken: "wrong", HTTPClient: srv.Client(), Store: st}
		if _, err := bad.Send(ctx, "+15555550101"); err == nil || strings.Contains(err.Error(), "wrong") {
			t.Fatalf("bad credentials: %v", err)
		}
	})
	t.Run("verify", func(t *testing.T) {
		v := &TwilioVerify{BaseURL: srv.URL, AccountSID: "AC123", ServiceSID: "VA1", AuthToken: "tok", HTTPClient: srv.Client()}
		ref, err := v.Send(ctx, "+15555550102")
		if err != nil || ft.to[ref] != "+15555550102" {
			t.Fatalf("send: %q %v", ref, err)
		}
		if ok, err := v.Check(ctx, ref, "000000"); ok || err != nil {
			t.Fatalf("wrong: %v %v", ok, err)
		}
		if ok, err := v.Check(ctx, ref, "424242"); !ok || err != nil {
			t.Fatalf("right: %v %v", ok, err)
		}
		if ok, err := v.Check(ctx, ref, "424242"); ok || err != nil {
			t.Fatalf("after approval: %v %v", ok, err)
		}
	})
}

func TestOutbox(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	st := openStore(t, clk.Now)
	path := filepath.Join(t.TempDir(), "otp-outbox.jsonl")
	o := &OutboxChannel{Path: path, Store: st, Now: clk.Now}
	ctx := context.Background()
	r1, _ := o.Send(ctx, "+15555550101")
	o.Send(ctx, "+15555550102")
	r3, _ := o.Send(ctx, "+15555550101")
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	var l struct{ Time, To, Code string }
	if err := json.Unmarshal([]byte(lines[0]), &l); err != nil || l.Time != "2026-11-25T12:00:00Z" || l.To != "+15555550101" || len(l.Code) != 6 {
		t.Fatalf("line %q", lines[0])
	}
	latest, err := LatestOutboxCode(path, "+15555550101")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := o.Check(ctx, r3, latest); !ok {
		t.Fatal("latest code rejected")
	}
	if ok, _ := o.Check(ctx, r1, latest); ok && latest != l.Code {
		t.Fatal("code of another send accepted")
	}
	if _, err := LatestOutboxCode(path, "+15555550199"); err == nil {
		t.Fatal("code for a number never texted")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("outbox mode %v", fi.Mode())
	}
}
