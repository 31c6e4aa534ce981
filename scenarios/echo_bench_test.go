package scenarios

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkRelayTurnVsEcho measures, in one run, (a) a relay turn on the
// embedded stack — a caller DTMF "*" event in, the first text token out (the
// agent repeats its question: one sealed SQLite state write, no AS or MCP) —
// and (b) the same frame bounced by a bare gorilla/websocket echo server on
// loopback, so the relay figure can be given as a multiple of the transport's
// own round trip. With calls=N, N sockets each send one event per second
// (staggered); b.N turns are recorded per phase after one second of warm-up.
// The generator shares the process (and the 2 cores) with both servers.
func BenchmarkRelayTurnVsEcho(b *testing.B) {
	for _, calls := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("calls=%d", calls), func(b *testing.B) { benchRelayVsEcho(b, calls) })
	}
}

var echoUpgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}

func echoServer(tb testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := echoUpgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			kind, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(kind, data); err != nil {
				return
			}
		}
	}))
	tb.Cleanup(srv.Close)
	return "ws://" + strings.TrimPrefix(srv.URL, "http://")
}

func benchRelayVsEcho(b *testing.B, calls int) {
	ctx := context.Background()
	target, stop, err := startUncappedStack(ctx, TransportRelay) // 1,000 calls: past the default cap
	if err != nil {
		b.Fatal(err)
	}
	defer stop(context.Background())
	target.HTTPClient = idleHTTPClient(20)
	echoURL := echoServer(b)

	relay := make([]*websocket.Conn, calls)
	echo := make([]*websocket.Conn, calls)
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	sem := make(chan struct{}, 20)
	for i := range calls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ws, _, err := openRelaySession(ctx, target, fmt.Sprintf("+1555%07d", 3000000+i), 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			relay[i] = ws
			if echo[i], _, err = websocket.DefaultDialer.Dial(echoURL, nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	defer func() {
		for i := range calls {
			relay[i].Close()
			echo[i].Close()
		}
	}()

	frame := []byte(`{"type":"dtmf","digit":"*"}`)
	turn := func(ws *websocket.Conn) (time.Duration, error) {
		start := time.Now()
		ws.SetWriteDeadline(start.Add(10 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			return 0, err
		}
		ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		var m relayMsg
		if err := ws.ReadJSON(&m); err != nil {
			return 0, err
		}
		d := time.Since(start)
		if m.Type == "text" && !m.Last { // drain the rest of the utterance
			for !m.Last {
				if err := ws.ReadJSON(&m); err != nil {
					return d, err
				}
			}
		}
		return d, nil
	}
	b.ResetTimer()
	relayLat := pacedTurns(b, relay, turn)
	echoLat := pacedTurns(b, echo, turn)
	b.StopTimer()
	rp50, rp99 := benchQuantiles(relayLat)
	ep50, ep99 := benchQuantiles(echoLat)
	b.ReportMetric(ms(rp50), "relay-p50-ms")
	b.ReportMetric(ms(rp99), "relay-p99-ms")
	b.ReportMetric(ms(ep50), "echo-p50-ms")
	b.ReportMetric(ms(ep99), "echo-p99-ms")
	b.ReportMetric(float64(rp99)/float64(ep99), "p99-relay/echo")
	b.ReportMetric(float64(rp50)/float64(ep50), "p50-relay/echo")
}

// pacedTurns runs b.N turns: back to back on one socket, or with several
// sockets one turn per socket per second, staggered, after 1 s of warm-up.
func pacedTurns(b *testing.B, conns []*websocket.Conn, turn func(*websocket.Conn) (time.Duration, error)) []time.Duration {
	lat := make([]time.Duration, 0, b.N)
	if len(conns) == 1 {
		for range b.N {
			d, err := turn(conns[0])
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, d)
		}
		return lat
	}
	stop := make(chan struct{})
	enough := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := make(chan error, 1)
	warm := time.Now().Add(time.Second)
	for i, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTimer(time.Duration(i) * time.Second / time.Duration(len(conns)))
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				t.Reset(time.Second)
				sent := time.Now()
				d, err := turn(ws)
				if err != nil {
					select {
					case failed <- err:
					default:
					}
					once.Do(func() { close(enough) })
					return
				}
				if sent.Before(warm) {
					continue
				}
				mu.Lock()
				lat = append(lat, d)
				if len(lat) >= b.N {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	<-enough
	close(stop)
	wg.Wait()
	select {
	case err := <-failed:
		b.Fatal(err)
	default:
	}
	return lat
}

func benchQuantiles(lat []time.Duration) (p50, p99 time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[(len(lat)-1)*50/100], lat[(len(lat)-1)*99/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
