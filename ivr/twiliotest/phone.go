package twiliotest

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"
)

// Phone is Twilio's side of calls into one voice service: every request it
// makes is signed the way Twilio signs it, over the service's public URL.
type Phone struct {
	PublicURL string // the service's configured public URL (signatures cover PublicURL + path and query)
	AuthToken string
	// Target is where requests are sent when it differs from PublicURL
	// (a proxy in front of the service); "" sends them to PublicURL.
	Target string
	Client *http.Client      // nil: http.DefaultClient
	Dialer *websocket.Dialer // nil: websocket.DefaultDialer
}

// Post sends form as a signed webhook to pathQuery (a path, optionally
// with a query), with any extra headers (e.g. I-Twilio-Idempotency-Token).
func (p *Phone) Post(ctx context.Context, pathQuery string, form url.Values, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.target()+pathQuery, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", Sign(p.AuthToken, p.PublicURL+pathQuery, form))
	c := p.Client
	if c == nil {
		c = http.DefaultClient
	}
	return c.Do(req)
}

// WebsocketURL is the ws(s) URL of pathQuery on the service's public URL,
// as a <ConversationRelay url> names it.
func (p *Phone) WebsocketURL(pathQuery string) string {
	return "ws" + strings.TrimPrefix(p.PublicURL, "http") + pathQuery
}

// DialRelay opens the ConversationRelay socket at wsURL (on the public URL,
// usually taken from the TwiML) the way Twilio does: a GET upgrade whose
// signature covers wsURL and no parameters. The caller then sends the
// setup message and reads the service's messages.
func (p *Phone) DialRelay(ctx context.Context, wsURL string) (*websocket.Conn, *http.Response, error) {
	target := wsURL
	if p.Target != "" && strings.HasPrefix(wsURL, p.WebsocketURL("")) {
		target = "ws" + strings.TrimPrefix(p.Target, "http") + strings.TrimPrefix(wsURL, p.WebsocketURL(""))
	}
	d := p.Dialer
	if d == nil {
		d = websocket.DefaultDialer
	}
	return d.DialContext(ctx, target, http.Header{"X-Twilio-Signature": {Sign(p.AuthToken, wsURL, nil)}})
}

func (p *Phone) target() string {
	if p.Target != "" {
		return p.Target
	}
	return p.PublicURL
}
