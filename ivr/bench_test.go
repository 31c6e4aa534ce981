package ivr

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkRelayTurn measures one relay turn — a caller message in, the
// first text token out — over a real websocket with the real SQLite store
// and the fake backend (AS excluded). With calls=1000, 999 background calls
// each send one caller event per second (ARCHITECTURE.md's definition) while
// the measured call sends turns back to back.
func BenchmarkRelayTurn(b *testing.B) {
	for _, calls := range []int{1, 1000} {
		for _, kind := range []string{"reprompt", "tool"} {
			b.Run(fmt.Sprintf("calls=%d/%s", calls, kind), func(b *testing.B) { benchRelay(b, calls, kind) })
		}
	}
}

func benchRelay(b *testing.B, calls int, kind string) {
	f := newFixture(&testing.T{}, FrontendRelay, nil)
	conns := make([]*websocket.Conn, calls)
	for i := range conns {
		sid := fmt.Sprintf("CA%032x", i+1)
		f.be.preauth[sid] = true // start at the menu
		ws, _, err := dialRelay(&testing.T{}, f, "")
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		ws.WriteJSON(map[string]any{"type": "setup", "callSid": sid})
		if _, err := readUtterance(ws); err != nil {
			b.Fatal(err)
		}
		conns[i] = ws
	}
	// "help" re-asks the menu (one state write); "appointments" runs a tool
	// job (three state writes and the fake MCP call).
	say := "help"
	if kind == "tool" {
		say = "appointments"
	}
	turn := func(ws *websocket.Conn) (time.Duration, error) {
		start := time.Now()
		if err := ws.WriteJSON(map[string]any{"type": "prompt", "voicePrompt": say, "last": true}); err != nil {
			return 0, err
		}
		var m outMsg
		ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := ws.ReadJSON(&m); err != nil {
			return 0, err
		}
		d := time.Since(start)
		if !m.Last {
			_, err := readUtterance(ws)
			return d, err
		}
		return d, nil
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var background []time.Duration
	for i := 1; i < calls; i++ {
		wg.Add(1)
		go func(i int, ws *websocket.Conn) {
			defer wg.Done()
			offset := time.Duration(i) * time.Second / time.Duration(calls)
			t := time.NewTimer(offset)
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				t.Reset(time.Second)
				d, err := turn(ws)
				if err != nil {
					return
				}
				mu.Lock()
				background = append(background, d)
				mu.Unlock()
			}
		}(i, conns[i])
	}
	if calls > 1 {
		time.Sleep(time.Second) // let the background reach its steady rate
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := turn(conns[0])
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, d)
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	report(b, "measured", lat)
	if len(background) > 0 {
		report(b, "bg", background)
	}
}

func report(b *testing.B, name string, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), name+"-p50-ms")
	b.ReportMetric(q(0.99), name+"-p99-ms")
	b.ReportMetric(float64(len(lat)), name+"-turns")
}

func readUtterance(ws *websocket.Conn) (string, error) {
	var s string
	for {
		ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		var m outMsg
		if err := ws.ReadJSON(&m); err != nil {
			return s, err
		}
		s += m.Token
		if m.Last || m.Type != "text" {
			return s, nil
		}
	}
}
