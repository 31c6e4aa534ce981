package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/fhirimport"
)

// BenchmarkPatientsImport imports a generated Bulk Data export into a fresh
// SQLite store through the real command. Size: VOICEAUTH_BENCH_PATIENTS
// (default 2,000; the target is 100,000 in ≤ 60 s on 2 cores):
//
//	VOICEAUTH_BENCH_PATIENTS=100000 go test -run '^$' -bench PatientsImport -benchtime 1x ./cmd/voiceauth/
//
// It reports patients/s and the peak Go heap while importing (flat memory
// means the peak does not grow with the export's size).
func BenchmarkPatientsImport(b *testing.B) {
	n := 2000
	if v := os.Getenv("VOICEAUTH_BENCH_PATIENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("VOICEAUTH_BENCH_PATIENTS=%q", v)
		}
	}
	src := filepath.Join(b.TempDir(), "Patient.ndjson")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := fhirimport.WriteGenerated(f, n, 99, false); err != nil {
		b.Fatal(err)
	}
	f.Close()
	saved := progressEvery
	progressEvery = 0
	defer func() { progressEvery = saved }()
	var peak uint64
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		if code, _, errOut := runCLIb(b, "secrets", "init", "--data-dir", dir); code != 0 {
			b.Fatal(errOut)
		}
		runtime.GC()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // sample the heap for the report only
			defer wg.Done()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		b.StartTimer()
		code, out, errOut := runCLIb(b, "patients", "import", "--data-dir", dir, src)
		b.StopTimer()
		close(stop)
		wg.Wait()
		if want := fmt.Sprintf("imported %d, updated 0, skipped 0", n); code != 0 || lastLine(out) != want {
			b.Fatalf("import: %d %q %s", code, lastLine(out), errOut)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "patients/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

func runCLIb(tb testing.TB, args ...string) (int, string, string) {
	tb.Helper()
	var out, errOut strings.Builder
	code := run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}
