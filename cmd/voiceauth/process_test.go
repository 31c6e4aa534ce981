package main

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/internal/canary"
	"github.com/voiceauth/voiceauth/ivr/twiliotest"
)

// The test binary doubles as the voiceauth binary: with VOICEAUTH_TEST_EXEC
// set it runs the command line it was given, so these tests drive real
// `voiceauth serve` processes (signals, restarts, shared stores).
func TestMain(m *testing.M) {
	if os.Getenv("VOICEAUTH_TEST_EXEC") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd  *exec.Cmd
	out  *os.File
	logs string
}

// startServe runs `voiceauth serve` with args and waits for /readyz.
func startServe(t *testing.T, voiceAddr string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", voiceAddr, "--generated-patients", "0"}, args...)...)
	cmd.Env = append(append(os.Environ(), "VOICEAUTH_TEST_EXEC=1"), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: f, logs: logPath}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + voiceAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(logPath)
	t.Fatalf("serve on %s never became ready:\n%s", voiceAddr, b)
	return nil
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.logs)
	return string(b)
}

// caller drives webhook turns against one or more voice instances.
type caller struct {
	t         *testing.T
	token     string
	publicURL string
	callSid   string
	from      string
}

type heard struct{ said, action, redirect string }

// post sends one signed webhook to the instance at voiceAddr.
func (c *caller) post(voiceAddr, pathQuery string, form url.Values) heard {
	c.t.Helper()
	form.Set("CallSid", c.callSid)
	form.Set("AccountSid", "AC0000")
	form.Set("From", c.from)
	form.Set("To", "+15555550000")
	form.Set("StirVerstat", "TN-Validation-Passed-A")
	phone := twiliotest.Phone{PublicURL: c.publicURL, Target: "http://" + voiceAddr, AuthToken: c.token}
	resp, err := phone.Post(context.Background(), pathQuery, form, nil)
	if err != nil {
		c.t.Fatalf("POST %s: %v", pathQuery, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("POST %s: %d %s", pathQuery, resp.StatusCode, body)
	}
	return parseTwiML(c.t, body)
}

var sayRE = regexp.MustCompile(`(?s)<Say[^>]*>(.*?)</Say>`)

func parseTwiML(t *testing.T, body []byte) heard {
	var doc struct {
		Gather []struct {
			Action string `xml:"action,attr"`
		} `xml:"Gather"`
		Redirect []string `xml:"Redirect"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not TwiML: %v\n%s", err, body)
	}
	var h heard
	var says []string
	for _, m := range sayRE.FindAllSubmatch(body, -1) {
		says = append(says, string(m[1]))
	}
	h.said = strings.Join(says, " ")
	if len(doc.Gather) > 0 {
		h.action = doc.Gather[0].Action
	}
	if len(doc.Redirect) > 0 {
		h.redirect = strings.TrimSpace(doc.Redirect[0])
	}
	return h
}

func (c *caller) relative(u string) string {
	if strings.HasPrefix(u, c.publicURL) {
		return strings.TrimPrefix(u, c.publicURL)
	}
	return u
}

// answer posts an answer to the last Gather, following hold redirects.
func (c *caller) answer(voiceAddr string, h heard, form url.Values) heard {
	c.t.Helper()
	if h.action == "" {
		c.t.Fatalf("not listening; last heard %q", h.said)
	}
	h = c.post(voiceAddr, c.relative(h.action), form)
	for i := 0; h.action == "" && h.redirect != "" && i < 20; i++ {
		h = c.post(voiceAddr, c.relative(h.redirect), url.Values{})
	}
	return h
}

func speech(s string) url.Values { return url.Values{"SpeechResult": {s}, "Confidence": {"0.9"}} }
func keys4(s string) url.Values  { return url.Values{"Digits": {s}} }

func readSecrets(t *testing.T, path string) (twilioToken string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		TwilioAuthToken string `json:"twilio_auth_token"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.TwilioAuthToken
}

// TestCrashMidCallResumes: SIGKILL in the middle of a webhook conversation,
// restart on the same data dir, and the next webhook of the call continues
// where it left off.
func TestCrashMidCallResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real serve processes")
	}
	dir := t.TempDir()
	voice, as, mcp := freePort(t), freePort(t), freePort(t)
	public := "http://" + voice
	args := []string{"--data-dir", dir, "--as-addr", as, "--mcp-addr", mcp}
	p1 := startServe(t, voice, nil, args...)
	c := &caller{t: t, token: readSecrets(t, filepath.Join(dir, "secrets.json")), publicURL: public, callSid: "CAcrash0001", from: "+15555550101"}

	h := c.post(voice, "/twilio/voice", url.Values{"CallStatus": {"ringing"}})
	h = c.answer(voice, h, speech("Maria Garcia"))
	h = c.answer(voice, h, speech("March 3rd 1980"))
	if !strings.Contains(strings.ToLower(h.said), "last four") {
		t.Fatalf("expected the SSN-4 question before the crash, heard %q", h.said)
	}

	// Crash: no graceful shutdown, no flush.
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p1.cmd.Wait()

	p2 := startServe(t, voice, nil, args...)
	h = c.answer(voice, h, keys4("4567"))
	if !strings.Contains(strings.ToLower(h.said), "verified") {
		t.Fatalf("after restart the call did not continue to authentication: %q\n%s", h.said, p2.output())
	}
	h = c.answer(voice, h, speech("appointments"))
	if !strings.Contains(h.said, "Dr. ") {
		t.Fatalf("expected appointments after the restart, heard %q", h.said)
	}
	for _, v := range []string{"1980-03-03", "4567"} {
		if canary.Leaks(p2.output(), v) {
			t.Errorf("serve output leaks %q", v)
		}
	}
}

// TestServeGracefulShutdown: SIGTERM ends serve cleanly with exit code 0.
func TestServeGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real serve process")
	}
	dir := t.TempDir()
	voice := freePort(t)
	p := startServe(t, voice, nil, "--data-dir", dir, "--as-addr", freePort(t), "--mcp-addr", freePort(t))
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v:\n%s", err, p.output())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop within 40 s of SIGTERM")
	}
	out := p.output()
	if !strings.Contains(out, "shutting down") || !strings.Contains(out, "TWILIO_AUTH_TOKEN") {
		t.Errorf("banner or shutdown notice missing:\n%s", out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "{") && !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
}

// TestSIGHUPReloadsRotatedSecrets: `secrets rotate` next to a running
// `voiceauth serve`, then SIGHUP: the process loads the new sealing key and
// signing key without a restart and stays ready.
func TestSIGHUPReloadsRotatedSecrets(t *testing.T) {
	dir := t.TempDir()
	voice := freePort(t)
	p := startServe(t, voice, nil, "--data-dir", dir, "--as-addr", freePort(t), "--mcp-addr", freePort(t))
	for _, what := range []string{"sealing", "signing"} {
		if code, out, errOut := runCLI(t, "secrets", "rotate", "--what", what, "--data-dir", dir, "--reload-wait", "0s"); code != 0 {
			t.Fatalf("secrets rotate --what %s: %d %s %s", what, code, out, errOut)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloaded := regexp.MustCompile(`"msg":"secrets reloaded".*"sealing_current":2`)
	deadline := time.Now().Add(30 * time.Second)
	for !reloaded.MatchString(p.output()) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload with sealing key 2 after SIGHUP:\n%s", p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + voice + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("not ready after the reload: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(p.output(), `"level":"ERROR"`) {
		t.Errorf("errors logged around the rotation:\n%s", p.output())
	}
}
