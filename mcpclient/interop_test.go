package mcpclient

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	if !strings.Contains(string(out), "interop: unsigned-allowed ok") || !strings.Contains(string(out), "interop: pinned refused") {
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

	s, err := New(Config{Policy: Policy{Mode: PolicyUnsignedAllowed}}).Connect(ctx, url, &staticTokens{tokens: []string{"unused"}})
	if err != nil {
		t.Fatal(err)
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
	_ = s.Close()
	t.Logf("interop: unsigned-allowed ok (%d tools)", len(names))

	_, err = New(Config{Pins: newMemPins()}).Connect(ctx, url, &staticTokens{tokens: []string{"unused"}})
	if !errors.Is(err, ErrIdentity) {
		t.Fatalf("pinned policy: err %v, want ErrIdentity", err)
	}
	t.Log("interop: pinned refused")
}
