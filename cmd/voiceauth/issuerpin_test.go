package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An external MCP server without an AS issuer pin is refused at startup,
// however the MCP URL was configured (flag, environment, config file), and
// the error names the flag to set.
func TestMCPURLRequiresASIssuer(t *testing.T) {
	file := filepath.Join(t.TempDir(), "voiceauth.yaml")
	if err := os.WriteFile(file, []byte("mcp_url: https://mcp.example/mcp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"flag":   {args: []string{"--mcp-url", "https://mcp.example/mcp"}},
		"env":    {env: map[string]string{"VOICEAUTH_MCP_URL": "https://mcp.example/mcp"}},
		"config": {args: []string{"--config", file}},
	} {
		t.Run(name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			v, err := resolve(fs, tc.args, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.appConfig()
			if err == nil || !strings.Contains(err.Error(), "--as-issuer") || !strings.Contains(err.Error(), "VOICEAUTH_AS_ISSUER") {
				t.Fatalf("appConfig: %v, want an error naming --as-issuer", err)
			}
		})
	}

	// The serve command stops before opening anything and says why.
	var out, errOut strings.Builder
	dir := t.TempDir()
	code := run([]string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--mcp-url", "https://mcp.example/mcp"},
		strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--as-issuer") {
		t.Fatalf("serve exit %d, stderr %q; want 2 and a message naming --as-issuer", code, errOut.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("serve created %d files before refusing", len(entries))
	}
}

func TestASIssuerMustBeAnIssuerURL(t *testing.T) {
	for _, issuer := range []string{"as.example", "ftp://as.example", "https://", "https://as.example/?x=1", "https://as.example/#f"} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		v, err := resolve(fs, []string{"--mcp-url", "https://mcp.example/mcp", "--as-issuer", issuer}, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.appConfig(); err == nil || !strings.Contains(err.Error(), "--as-issuer") {
			t.Errorf("--as-issuer %q: %v, want refused", issuer, err)
		}
	}
	for _, args := range [][]string{
		{"--mcp-url", "https://mcp.example/mcp", "--as-issuer", "https://as.example"},
		{"--mcp-url", "https://mcp.example/mcp", "--as-issuer", "https://as.example/tenant1"},
		{}, // embedded stack: it pins its own AS
	} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		v, err := resolve(fs, args, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.appConfig(); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}
