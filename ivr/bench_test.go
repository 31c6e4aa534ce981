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
	for _, calls := range []int{1, 300, 1000} {
		for _, kind := range []string{"reprompt", "tool"} {
			b.Run(fmt.Sprintf("calls=%d/%s", calls, kind), func(b *testing.B) { benchRelay(b, calls, kind) })
		}
	}
}

func benchRelay(b *testing.B, calls int, kind string) {
	f := newFixture(b, FrontendRelay, nil)
	conns := make([]*websocket.Conn, calls)
	for i := range conns {
		sid := fmt.Sprintf("CA%032x", i+1)
		f.be.preauth[sid] = true // start at the menu
		nonce := announce(b, f, sid)
		ws, _, err := dialRelay(b, f, "")
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		ws.WriteJSON(setupMsg(sid, "VX"+sid, nonce))
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

	var lat []time.Duration
	if calls == 1 {
		// Uncontended: one call, turns back to back.
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			d, err := turn(conns[0])
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, d)
		}
		b.StopTimer()
		report(b, "turn", lat)
		return
	}
	// Paced: every call sends one caller event per second (staggered); after
	// one second of warm-up, latencies are recorded until b.N turns are in.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	warm := time.Now().Add(time.Second)
	enough := make(chan struct{})
	var once sync.Once
	b.ResetTimer()
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func(i int, ws *websocket.Conn) {
			defer wg.Done()
			t := time.NewTimer(time.Duration(i) * time.Second / time.Duration(calls))
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
		}(i, conns[i])
	}
	<-enough
	b.StopTimer()
	close(stop)
	wg.Wait()
	report(b, "turn", lat)
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
