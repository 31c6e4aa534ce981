package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/voiceauth/voiceauth/internal/app"
)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// registerSubject posts a subject token for callSid as host user:pass.
func registerSubject(t *testing.T, voiceURL, callSid, user, pass, token string) int {
	t.Helper()
	form := url.Values{"subject_token": {token}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}}
	req, _ := http.NewRequest(http.MethodPost, voiceURL+"/v1/calls/"+callSid+"/subject-token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestClientsAddHostExchangesToken is the scenario "token exchange with a
// host client created by clients add": a running instance, an operator adds
// a host client from the shell, the host registers a dev-token for a call,
// and the caller goes straight to the menu. Rotation keeps the old secret
// for its grace period; removal cuts the client off at once.
func TestClientsAddHostExchangesToken(t *testing.T) {
	dir := t.TempDir()
	st, err := app.Start(context.Background(), app.Config{DataDir: dir, Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0", MCPAddr: "127.0.0.1:0", LogWriter: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())

	code, out, errOut := runCLI(t, "clients", "add", "portal-host", "--kind", "host", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("clients add: %d %s %s", code, out, errOut)
	}
	secret := lastLine(out)
	if len(secret) < 40 || strings.Contains(secret, " ") {
		t.Fatalf("the last line of clients add is not a secret: %q", out)
	}
	if code, out, _ = runCLI(t, "clients", "list", "--data-dir", dir); code != 0 || !strings.Contains(out, "portal-host") || !strings.Contains(out, "host") || strings.Contains(out, secret) {
		t.Fatalf("clients list: %d %s", code, out)
	}
	if code, _, errOut = runCLI(t, "clients", "add", "portal-host", "--kind", "exchange", "--data-dir", dir); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate add: %d %s", code, errOut)
	}
	if code, _, _ = runCLI(t, "clients", "add", "x1", "--kind", "admin", "--data-dir", dir); code != 2 {
		t.Fatalf("bad kind: exit %d, want 2", code)
	}
	if code, _, errOut = runCLI(t, "clients", "add", "x2", "--kind", "host", "--auth", "private_key_jwt", "--jwks", dir+"/missing.json", "--data-dir", dir); code == 0 || !strings.Contains(errOut, "--jwks") {
		t.Fatalf("missing jwks file: %d %s", code, errOut)
	}

	code, out, errOut = runCLI(t, "dev-token", "--sub", "pt-0001", "--data-dir", dir, "--aud", st.ASURL)
	if code != 0 {
		t.Fatalf("dev-token: %d %s", code, errOut)
	}
	upstream := lastLine(out)
	if strings.Count(upstream, ".") != 2 {
		t.Fatalf("dev-token did not print a JWT: %q", out)
	}
	if code, _, errOut = runCLI(t, "dev-token", "--sub", "pt-0001", "--data-dir", dir, "--env", "production"); code != 1 || !strings.Contains(errOut, "production") {
		t.Fatalf("dev-token in production: %d %s", code, errOut)
	}

	if c := registerSubject(t, st.VoiceURL, "CAhost0001", "portal-host", secret+"x", upstream); c != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", c)
	}
	if c := registerSubject(t, st.VoiceURL, "CAhost0001", "portal-host", secret, upstream); c/100 != 2 {
		t.Fatalf("registration with the added client: %d", c)
	}
	voice := strings.TrimPrefix(st.VoiceURL, "http://")
	c := &caller{t: t, token: st.TwilioAuthToken, publicURL: st.PublicURL, callSid: "CAhost0001", from: "+15555550101"}
	h := c.post(voice, "/twilio/voice", url.Values{"CallStatus": {"ringing"}})
	if !strings.Contains(strings.ToLower(h.said), "verified") || strings.Contains(strings.ToLower(h.said), "your name") {
		t.Fatalf("a caller registered by the added host was not pre-authenticated: %q", h.said)
	}
	h = c.answer(voice, h, speech("appointments"))
	if !strings.Contains(h.said, "Dr. ") {
		t.Fatalf("expected appointments, heard %q", h.said)
	}

	code, out, _ = runCLI(t, "clients", "rotate-secret", "portal-host", "--data-dir", dir)
	newSecret := lastLine(out)
	if code != 0 || newSecret == secret || len(newSecret) < 40 {
		t.Fatalf("rotate-secret: %d %s", code, out)
	}
	tok2, _ := st.MintUpstreamToken("pt-0002", 5*60e9)
	tok3, _ := st.MintUpstreamToken("pt-0003", 5*60e9)
	if c := registerSubject(t, st.VoiceURL, "CAhost0002", "portal-host", secret, tok2); c/100 != 2 {
		t.Fatalf("old secret in its grace period: %d", c)
	}
	if c := registerSubject(t, st.VoiceURL, "CAhost0003", "portal-host", newSecret, tok3); c/100 != 2 {
		t.Fatalf("new secret: %d", c)
	}
	if code, out, _ = runCLI(t, "clients", "remove", "portal-host", "--data-dir", dir); code != 0 {
		t.Fatalf("remove: %d %s", code, out)
	}
	tok4, _ := st.MintUpstreamToken("pt-0003", 5*60e9)
	if c := registerSubject(t, st.VoiceURL, "CAhost0004", "portal-host", newSecret, tok4); c != http.StatusUnauthorized {
		t.Fatalf("removed client: %d, want 401", c)
	}
	if code, _, errOut = runCLI(t, "clients", "remove", "portal-host", "--data-dir", dir); code != 1 || !strings.Contains(errOut, "no such client") {
		t.Fatalf("second remove: %d %s", code, errOut)
	}
}

// TestClientsAddPrivateKeyJWT: a key-based client is registered from a
// JWKS file of public keys; a file holding a private key is refused.
func TestClientsAddPrivateKeyJWT(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, "secrets", "init", "--data-dir", dir); code != 0 {
		t.Fatal(errOut)
	}
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key := jose.JSONWebKey{Key: pk, KeyID: "partner-1", Algorithm: "ES256"}
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key}})
	os.WriteFile(filepath.Join(dir, "pub.json"), pub, 0o600)
	os.WriteFile(filepath.Join(dir, "priv.json"), priv, 0o600)
	code, out, errOut := runCLI(t, "clients", "add", "partner", "--kind", "exchange", "--auth", "private_key_jwt", "--jwks", filepath.Join(dir, "priv.json"), "--data-dir", dir)
	if code != 2 || !strings.Contains(errOut, "private key") {
		t.Fatalf("private JWKS: %d %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "clients", "add", "partner", "--kind", "exchange", "--auth", "private_key_jwt", "--jwks", filepath.Join(dir, "pub.json"), "--data-dir", dir)
	if code != 0 || lastLine(out) != "added client partner (kind exchange, private_key_jwt)" {
		t.Fatalf("public JWKS: %d %s %s", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, "clients", "rotate-secret", "partner", "--data-dir", dir); code != 2 || !strings.Contains(errOut, "no secret to rotate") {
		t.Fatalf("rotate a key client: %d %s", code, errOut)
	}
	if code, out, _ = runCLI(t, "clients", "list", "--data-dir", dir); code != 0 || !strings.Contains(out, "private_key_jwt") {
		t.Fatalf("list: %s", out)
	}
}
