package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// freshPostgresSchema makes an empty schema on the CI PostgreSQL and returns
// a DSN whose connections use it, so runs never see each other's rows.
func freshPostgresSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("VOICEAUTH_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("VOICEAUTH_TEST_POSTGRES not set: PostgreSQL scale-out test skipped")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := fmt.Sprintf("scaleout_%x", b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

// TestScaleOutOnPostgres runs three `voiceauth serve` processes on one
// PostgreSQL with one secrets file: A (voice + embedded AS + MCP server),
// B (voice only, using A's MCP server and AS), C (another full stack).
// The webhooks of one call alternate between A and B and end authenticated;
// KBA failures at A's AS lock the identity at C's AS.
func TestScaleOutOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real serve processes")
	}
	store := freshPostgresSchema(t)
	shared := t.TempDir()
	secretsFile := filepath.Join(shared, "secrets.json")
	public := "https://voice.example.test" // the load balancer Twilio signs against
	env := []string{"VOICEAUTH_STORE=" + store, "VOICEAUTH_SECRETS_FILE=" + secretsFile, "VOICEAUTH_PUBLIC_URL=" + public}

	voiceA, asA, mcpA := freePort(t), freePort(t), freePort(t)
	startServe(t, voiceA, env, "--data-dir", t.TempDir(), "--as-addr", asA, "--mcp-addr", mcpA)
	voiceB := freePort(t)
	startServe(t, voiceB, env, "--data-dir", t.TempDir(), "--mcp-url", "http://"+mcpA+"/mcp", "--as-issuer", "http://"+asA)
	voiceC, asC, mcpC := freePort(t), freePort(t), freePort(t)
	startServe(t, voiceC, env, "--data-dir", t.TempDir(), "--as-addr", asC, "--mcp-addr", mcpC)

	c := &caller{t: t, token: readSecrets(t, secretsFile), publicURL: public, callSid: "CAscaleout01", from: "+15555550101"}
	h := c.post(voiceA, "/twilio/voice", url.Values{"CallStatus": {"ringing"}})
	h = c.answer(voiceB, h, speech("Maria Garcia"))
	h = c.answer(voiceA, h, speech("March 3rd 1980"))
	h = c.answer(voiceB, h, keys4("4567"))
	if !strings.Contains(strings.ToLower(h.said), "verified") {
		t.Fatalf("alternating instances did not authenticate the caller: %q", h.said)
	}
	h = c.answer(voiceA, h, speech("appointments"))
	if !strings.Contains(h.said, "Dr. ") {
		t.Fatalf("expected appointments, heard %q", h.said)
	}

	// Shared lockout counters: a control patient authenticates at C; Maria,
	// after three failures at A, is refused at C with the mismatch body.
	secret := readClientSecret(t, secretsFile)
	ok := kba(t, "http://"+asC, "http://"+mcpC+"/mcp", secret, "+15555550102", "James O'Brien", "1955-11-30", "0912")
	if _, issued := ok["authorization_code"]; !issued {
		t.Fatalf("control: correct answers at C gave %v", ok)
	}
	for i := 0; i < 3; i++ {
		bad := kba(t, "http://"+asA, "http://"+mcpA+"/mcp", secret, "+15555550101", "Maria Garcia", "1980-03-03", "0000")
		if bad["kba_retry"] != true {
			t.Fatalf("wrong answer %d at A: %v", i+1, bad)
		}
	}
	locked := kba(t, "http://"+asC, "http://"+mcpC+"/mcp", secret, "+15555550101", "Maria Garcia", "1980-03-03", "4567")
	if _, issued := locked["authorization_code"]; issued || locked["kba_retry"] != true {
		t.Fatalf("the lock made at A is not enforced at C: %v", locked)
	}
}

func readClientSecret(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		ClientSecret string `json:"client_secret"`
	}
	json.Unmarshal(b, &s)
	return s.ClientSecret
}

// kba posts all three answers in one fresh challenge flow, the way any
// client of the profile may, and returns the decoded answer.
func kba(t *testing.T, issuer, resource, secret, phone, name, dob, ssn4 string) map[string]any {
	t.Helper()
	v := make([]byte, 32)
	rand.Read(v)
	verifier := base64.RawURLEncoding.EncodeToString(v)
	sum := sha256.Sum256([]byte(verifier))
	callRef := base64.RawURLEncoding.EncodeToString(v[:12])
	form := url.Values{
		"response_type": {"code"}, "client_id": {"voiceauth-ivr"}, "scope": {"appointments:read"}, "resource": {resource},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"kba_name": {name}, "kba_birthdate": {dob}, "kba_ssn_last4": {ssn4},
		"caller_phone": {phone}, "stir_verstat": {"TN-Validation-Passed-A"}, "call_ref": {callRef},
	}
	req, _ := http.NewRequest(http.MethodPost, issuer+"/challenge", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("voiceauth-ivr", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("challenge answer is not JSON: %s", body)
	}
	return out
}
