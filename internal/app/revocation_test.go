package app_test

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/mcpidentity"
)

// TestRevokedPinnedMCPKeyTransfersCaller: a first call pins the demo MCP
// server's identity key; the server then publishes a revocation of that key
// (signed by it, as `keys rotate` publishes rotation records) and is
// restarted at the same URL. The next verified caller is transferred with
// identity_check_failed instead of hearing her appointments, and the pin is
// left for an operator (`voiceauth pins clear`).
func TestRevokedPinnedMCPKeyTransfersCaller(t *testing.T) {
	dir := t.TempDir()
	cfg := app.Config{DataDir: dir}
	st, _ := startStack(t, cfg)
	p := &phone{t: t, st: st, callSid: "CArevoke0000000000000000000000001", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr := authenticate(t, p, "Maria Garcia", "March third nineteen eighty", "4567")
	if tr = p.say(tr, "appointments"); !strings.Contains(tr.said, "Dr. ") {
		t.Fatalf("first call: expected the appointments, heard %q", tr.said)
	}
	mcpURL := st.MCPURL
	pin, err := st.Store().GetPin(context.Background(), mcpURL)
	if err != nil {
		t.Fatalf("the first call pinned nothing: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}

	sec, _, err := app.LoadSecrets(filepath.Join(dir, "secrets.json"), false)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := mcpidentity.SignRevocation(sec.MCPIdentityKey, "key-compromise", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(rev)
	if err := app.AppendAttestation(dir, raw); err != nil {
		t.Fatal(err)
	}

	// Same data dir, same MCP address: the pin applies.
	u, err := url.Parse(mcpURL)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	st2, err := app.Start(context.Background(), app.Config{DataDir: dir, Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0", MCPAddr: u.Host, LogWriter: logs})
	if err != nil {
		t.Fatalf("restart on %s: %v", u.Host, err)
	}
	defer st2.Close(context.Background())
	if st2.MCPURL != mcpURL {
		t.Fatalf("MCP URL moved from %s to %s", mcpURL, st2.MCPURL)
	}
	p2 := &phone{t: t, st: st2, callSid: "CArevoke0000000000000000000000002", from: "+15555550101", verstat: "TN-Validation-Passed-A"}
	tr = authenticate(t, p2, "Maria Garcia", "March third nineteen eighty", "4567")
	for i := 0; i < 3 && !tr.dial && tr.action != ""; i++ {
		tr = p2.say(tr, "appointments")
	}
	all := strings.Join(p2.heard, "\n")
	if strings.Contains(all, "Dr. ") || !tr.dial {
		t.Fatalf("a revoked pinned key still served the caller (dial=%v):\n%s", tr.dial, all)
	}
	if !strings.Contains(logs.String(), "identity_check_failed") {
		t.Fatalf("transfer reason is not identity_check_failed:\n%s", logs.String())
	}
	after, err := st2.Store().GetPin(context.Background(), mcpURL)
	if err != nil || after.Thumbprint != pin.Thumbprint {
		t.Fatalf("pin after the refusal = %+v, %v; want it unchanged", after, err)
	}
}
