package authserver

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
)

// wireClient is the benchmarks' load generator: one keep-alive HTTP/1.1
// connection, one goroutine, requests written by hand. net/http's client
// costs the shared 2 cores three goroutines and two hand-offs per request
// (caller, writeLoop, readLoop); a generator that light is what wrk or hey
// would be, so the server's numbers are less the generator's.
type wireClient struct {
	conn net.Conn
	r    *bufio.Reader
	buf  []byte
	host string
	auth string
}

func newWireClient(tb testing.TB, e *env) *wireClient {
	u, err := url.Parse(e.ts.URL)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &wireClient{conn: c, r: bufio.NewReaderSize(c, 4096), host: u.Host,
		auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(ivrID+":"+ivrSecret))}
}

// post sends one form and returns the status and body.
func (c *wireClient) post(path string, form url.Values) (int, []byte, error) {
	body := form.Encode()
	c.buf = fmt.Appendf(c.buf[:0], "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
		path, c.host, c.auth, len(body), body)
	if _, err := c.conn.Write(c.buf); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, b, err
}
