package mcpclient

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// everythingJS locates @modelcontextprotocol/server-everything's entry point:
// $MCP_EVERYTHING_JS, or an npm install under $MCP_EVERYTHING_DIR (default
// /tmp/mcp-everything: `npm install @modelcontextprotocol/server-everything`).
func everythingJS() string {
	if p := os.Getenv("MCP_EVERYTHING_JS"); p != "" {
		return p
	}
	dir := os.Getenv("MCP_EVERYTHING_DIR")
	if dir == "" {
		dir = "/tmp/mcp-everything"
	}
	return filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
}

// TestInteropEverything runs the reference TypeScript server and this client
// together inside a fresh network namespace (`unshare -n`, loopback only:
// server-everything binds all interfaces). The test re-executes its own
// binary in the namespace; the child does the MCP work.
func TestInteropEverything(t *testing.T) {
	if os.Getenv("MCPCLIENT_INTEROP_CHILD") == "1" {
		interopChild(t)
		return
	}
	js := everythingJS()
	if _, err := os.Stat(js); err != nil {
		t.Skipf("server-everything not installed at %s (npm install @modelcontextprotocol/server-everything in /tmp/mcp-everything, or set MCP_EVERYTHING_JS)", js)
	}
	for _, bin := range []string{"node", "unshare", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not found", bin)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("unshare -n needs root here")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", os.Args[0], "-test.run=^TestInteropEverything$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "MCPCLIENT_INTEROP_CHILD=1", "MCP_EVERYTHING_JS="+js)
	out, err := cmd.CombinedOutput()
	t.Logf("child output:\n%s", out)
	if err != nil {
		t.Fatalf("interop child: %v", err)
	}
	for _, want := range []string{"interop: 2025-11-25 ok", "interop: negotiated ok", "interop: negotiated again ok", "interop: pinned refused"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("child did not report %q", want)
		}
	}
	if !strings.Contains(string(out), "interop: unsigned-allowed ok") {
		t.Fatal("child did not run both checks")
	}
}

func interopChild(t *testing.T) {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	srv := exec.Command("node", os.Getenv("MCP_EVERYTHING_JS"), "streamableHttp")
	// A minimal environment: get-env would echo whatever is here.
	srv.Env = []string{"PORT=3101", "PATH=" + os.Getenv("PATH")}
	stderr, _ := srv.StderrPipe()
	srv.Stdout = nil
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = srv.Process.Kill() // our own child, by its pid
		_ = srv.Wait()
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "listening on port") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("server-everything did not start")
	}
	url := "http://127.0.0.1:3101/mcp"

	// Both revisions: 2025-11-25 asked for directly, and the default
	// negotiation (2026-07-28 first), which server-everything answers with
	// HTTP 400; the client falls back once and then remembers.
	probes := &probeCounter{base: http.DefaultTransport}
	negotiating := New(Config{Policy: Policy{Mode: PolicyUnsignedAllowed}, HTTPClient: &http.Client{Transport: probes}})
	for _, c := range []struct {
		name   string
		cl     *Client
		probes int // server/discover requests so far
	}{
		{"2025-11-25", New(Config{Policy: Policy{Mode: PolicyUnsignedAllowed}, ProtocolVersion: Version20251125}), 0},
		{"negotiated", negotiating, 1},
		{"negotiated again", negotiating, 1},
	} {
		interopCalls(ctx, t, c.cl, url)
		if n := probes.count(); n != c.probes {
			t.Fatalf("%s: %d server/discover probes, want %d", c.name, n, c.probes)
		}
		t.Logf("interop: %s ok", c.name)
	}

	_, err := New(Config{Pins: newMemPins()}).Connect(ctx, url, &staticTokens{tokens: []string{"unused"}})
	if !errors.Is(err, ErrIdentity) {
		t.Fatalf("pinned policy: err %v, want ErrIdentity", err)
	}
	t.Log("interop: pinned refused")
}

// probeCounter counts the server/discover requests it carries.
type probeCounter struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    int
}

func (p *probeCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.GetBody != nil {
		if b, err := r.GetBody(); err == nil {
			body, _ := io.ReadAll(b)
			if strings.Contains(string(body), `"method":"server/discover"`) {
				p.mu.Lock()
				p.n++
				p.mu.Unlock()
			}
		}
	}
	return p.base.RoundTrip(r)
}

func (p *probeCounter) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// interopCalls connects with cl, which must land on 2025-11-25 (the
// revision server-everything speaks), and runs echo and get-sum.
func interopCalls(ctx context.Context, t *testing.T, cl *Client, url string) {
	t.Helper()
	s, err := cl.Connect(ctx, url, &staticTokens{tokens: []string{"unused"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := s.ProtocolVersion(); v != Version20251125 {
		t.Fatalf("version %q", v)
	}
	var names []string
	for _, tl := range s.Tools() {
		names = append(names, tl.Name)
	}
	if !strings.Contains(","+strings.Join(names, ",")+",", ",echo,") {
		t.Fatalf("tools %v", names)
	}
	res, err := s.CallTool(ctx, "echo", map[string]any{"message": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if txt := res.Content[0].(*mcp.TextContent).Text; txt != "Echo: hi" {
		t.Fatalf("echo %q", txt)
	}
	res, err = s.CallTool(ctx, "get-sum", map[string]any{"a": 2, "b": 3})
	if err != nil || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "5") {
		t.Fatalf("get-sum %v %v", res, err)
	}
	t.Logf("interop: unsigned-allowed ok (%d tools)", len(names))
}
