package twiliotest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/twilio/twilio-go/client"
)

// twilioGoChecks is a server that accepts only what twilio-go's validator
// accepts for its public URL: signed webhooks answered with TwiML, and a
// signed relay upgrade that echoes one message.
func twilioGoChecks(t *testing.T, token string, public *string) *httptest.Server {
	v := client.NewRequestValidator(token)
	up := websocket.Upgrader{}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if !v.Validate("ws"+strings.TrimPrefix(*public, "http")+r.URL.RequestURI(), map[string]string{}, r.Header.Get("X-Twilio-Signature")) {
				http.Error(w, "forged", http.StatusForbidden)
				return
			}
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			var m map[string]string
			if ws.ReadJSON(&m) == nil {
				ws.WriteJSON(map[string]string{"type": "text", "token": m["type"]})
			}
			return
		}
		r.ParseForm()
		params := map[string]string{}
		for k := range r.PostForm {
			params[k] = r.PostForm.Get(k)
		}
		if !v.Validate(*public+r.URL.RequestURI(), params, r.Header.Get("X-Twilio-Signature")) {
			http.Error(w, "forged", http.StatusForbidden)
			return
		}
		if r.URL.Path == "/plain" {
			w.Write([]byte("not twiml"))
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/twilio/gather?turn=1" input="dtmf speech"><Say language="en-US">` +
			r.PostForm.Get("Idem") + r.Header.Get("I-Twilio-Idempotency-Token") + `</Say></Gather></Response>`))
	}))
}

// The phone's webhooks and relay handshakes pass twilio-go's validation,
// also behind a proxy (Target differs from the signed PublicURL); with
// the wrong token they do not; ReadTwiML reads what the service said and
// refuses what is not TwiML.
func TestPhoneAgainstTwilioGo(t *testing.T) {
	ctx := context.Background()
	public := "https://voice.example.test"
	srv := twilioGoChecks(t, "tok", &public)
	defer srv.Close()
	for _, tc := range []struct {
		name      string
		phone     Phone
		wantValid bool
	}{
		{"direct", Phone{PublicURL: srv.URL, AuthToken: "tok"}, true},
		{"behind a proxy", Phone{PublicURL: public, Target: srv.URL, AuthToken: "tok"}, true},
		{"wrong token", Phone{PublicURL: public, Target: srv.URL, AuthToken: "other"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			public = tc.phone.PublicURL
			resp, err := tc.phone.Post(ctx, "/twilio/voice?x=1", url.Values{"CallSid": {"CA1"}, "SpeechResult": {"Zoë"}},
				http.Header{"I-Twilio-Idempotency-Token": {"-idem"}})
			if err != nil {
				t.Fatal(err)
			}
			doc, err := ReadTwiML(resp)
			if !tc.wantValid {
				if err == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("wrong token: status %d, err %v; want 403", resp.StatusCode, err)
				}
			} else {
				g, ok := doc.Find("Gather")
				say, sayOK := doc.Find("Say")
				if err != nil || !ok || g.Attr("action") != "/twilio/gather?turn=1" || !sayOK || say.Text != "-idem" || say.Attr("language") != "en-US" {
					t.Fatalf("TwiML %+v, err %v", doc, err)
				}
			}

			ws, resp, err := tc.phone.DialRelay(ctx, tc.phone.WebsocketURL("/twilio/relay"))
			if !tc.wantValid {
				if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("wrong token: relay dial err %v; want 403", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("relay dial: %v", err)
			}
			defer ws.Close()
			ws.WriteJSON(map[string]string{"type": "setup"})
			var m map[string]string
			if err := ws.ReadJSON(&m); err != nil || m["token"] != "setup" {
				t.Fatalf("relay echo %v, %v", m, err)
			}
		})
	}

	public = srv.URL
	p := Phone{PublicURL: srv.URL, AuthToken: "tok"}
	resp, err := p.Post(ctx, "/plain", url.Values{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTwiML(resp); err == nil || !strings.Contains(err.Error(), "content type") {
		t.Fatalf("plain text read as TwiML: %v", err)
	}
}
