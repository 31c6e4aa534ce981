package session

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const crashChildEnv = "VOICEAUTH_SESSION_CRASH_CHILD"

// TestCrashChild is the child half of TestSQLiteSurvivesSIGKILL: it updates
// a call forever, printing each version after UpdateCall returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestSQLiteSurvivesSIGKILL")
	}
	ctx := context.Background()
	st, err := Open(ctx, path, Options{Sealer: testSealer(t)})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	c := &Call{ID: "CA-crash", State: []byte("0")}
	if err := st.CreateCall(ctx, c); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for {
		c.State = []byte(strconv.FormatInt(c.Version+1, 10))
		if err := st.UpdateCall(ctx, c); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("committed", c.Version)
	}
}

// TestSQLiteSurvivesSIGKILL kills a writer process with SIGKILL and checks
// that every update it had reported as committed is still there (WAL with
// synchronous=NORMAL is durable against process crashes).
func TestSQLiteSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var last int64
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "error") {
			t.Fatalf("child: %s", line)
		}
		if v, ok := strings.CutPrefix(line, "committed "); ok {
			last, _ = strconv.ParseInt(v, 10, 64)
			if last >= 300 {
				break
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
	if last < 300 {
		t.Fatalf("child stopped early at version %d", last)
	}
	st, err := Open(context.Background(), path, Options{Sealer: testSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetCall(context.Background(), "CA-crash")
	if err != nil {
		t.Fatal(err)
	}
	if c.Version < last || string(c.State) != strconv.FormatInt(c.Version, 10) {
		t.Fatalf("after SIGKILL: version %d state %q; child had reported version %d committed", c.Version, c.State, last)
	}
}
