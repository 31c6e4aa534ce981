package healthmcp_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voiceauth/voiceauth/healthmcp"
	"github.com/voiceauth/voiceauth/mcpclient"
	"github.com/voiceauth/voiceauth/session"
)

// openPostgres opens a store in a schema of its own on
// $VOICEAUTH_TEST_POSTGRES (dropped at cleanup); skips when it is unset.
func openPostgres(t *testing.T) *auditLog {
	t.Helper()
	base := os.Getenv("VOICEAUTH_TEST_POSTGRES")
	if base == "" {
		t.Skip("VOICEAUTH_TEST_POSTGRES not set: PostgreSQL run skipped")
	}
	ctx := context.Background()
	schema := "hm_" + strings.ToLower(rand.Text()[:12])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), base); err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	sealer, err := session.NewSealer(map[uint32][]byte{1: make([]byte, 32)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := session.Open(ctx, u.String(), session.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &auditLog{Store: st}
}

// TestRevokedTokenRefusedAtNextRequest: once the store holds a revocation
// record for a token's jti, the very next MCP request with it is 401
// invalid_token — although the token verified (and was cached) a moment
// before and its signature and expiry are still good. Another token of the
// same patient keeps working.
func TestRevokedTokenRefusedAtNextRequest(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testRevokedAtNextRequest(t, newStack(t)) })
	t.Run("postgres", func(t *testing.T) { testRevokedAtNextRequest(t, newStackOn(t, openPostgres(t))) })
}

func testRevokedAtNextRequest(t *testing.T, st *stack) {
	jti := "jti-" + rand.Text()
	tok := st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBAOTP, jti: jti})
	other := st.mint(t, tokenOpts{sub: "pt-0001", scope: allScopes, acr: healthmcp.ACRKBAOTP})
	s := connect(t, st, &tokens{list: []string{tok}})
	if _, err := s.CallTool(t.Context(), "list_appointments", nil); err != nil {
		t.Fatal(err)
	}
	if err := st.audit.RevokeToken(t.Context(), jti, fixedNow.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, err := s.CallTool(t.Context(), "list_medications", nil)
	var ae *mcpclient.AuthError
	if !errors.As(err, &ae) || ae.Challenge.Status != http.StatusUnauthorized || ae.Challenge.Error != "invalid_token" {
		t.Fatalf("call after revocation: err %v, want 401 invalid_token", err)
	}
	resp := rawCall(t, st, tok, "list_appointments", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("raw call after revocation: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	s2 := connect(t, st, &tokens{list: []string{other}})
	if _, err := s2.CallTool(t.Context(), "list_appointments", nil); err != nil {
		t.Fatalf("an unrevoked token of the same patient: %v", err)
	}
}

// TestTokenWithoutJTIRefused: a token that cannot be revoked (no jti) is
// not accepted by a server that checks revocation.
func TestTokenWithoutJTIRefused(t *testing.T) {
	st := newStack(t)
	tok := st.mintClaims(t, map[string]any{"iss": issuer, "aud": st.url, "sub": "pt-0001", "scope": allScopes,
		"acr": healthmcp.ACRKBAOTP, "exp": later(time.Now(), fixedNow).Add(10 * time.Minute).Unix()})
	if resp := rawCall(t, st, tok, "list_appointments", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token without jti: status %d, want 401", resp.StatusCode)
	}
}
