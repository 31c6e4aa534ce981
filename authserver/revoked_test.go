package authserver

import (
	"net/url"
	"testing"

	"github.com/voiceauth/voiceauth/challenge"
)

// TestRevocationReachesTheStore: every way the AS revokes an access token
// (revocation endpoint, hang-up's refresh-token revocation after a rotation,
// code reuse, refresh-token reuse) writes the shared record resource servers
// check, and an access token nobody revoked has none.
func TestRevocationReachesTheStore(t *testing.T) {
	revoked := func(t *testing.T, e *env, access string) bool {
		t.Helper()
		r, err := e.st.TokenRevoked(t.Context(), e.claims(access).ID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	issue := func(e *env) challenge.TokenResponse {
		code, v := e.codeFor("")
		var tok challenge.TokenResponse
		e.redeem(code, v).json(&tok)
		return tok
	}
	refresh := func(e *env, rt string) (challenge.TokenResponse, reply) {
		var tok challenge.TokenResponse
		r := e.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		r.json(&tok)
		return tok, r
	}

	t.Run("revocation endpoint", func(t *testing.T) {
		e := newEnv(t, nil)
		tok, other := issue(e), issue(e)
		if e.claims(tok.AccessToken).ID == "" || revoked(t, e, tok.AccessToken) {
			t.Fatal("fresh token has no jti or is already revoked")
		}
		if r := e.post("/revoke", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if !revoked(t, e, tok.AccessToken) {
			t.Fatal("revoked access token has no revocation record")
		}
		if revoked(t, e, other.AccessToken) {
			t.Fatal("another token was revoked too")
		}
	})
	t.Run("refresh revocation after rotation", func(t *testing.T) {
		e := newEnv(t, nil)
		t1 := issue(e)
		t2, r := refresh(e, t1.RefreshToken)
		if r.status != 200 {
			t.Fatalf("rotate: %d %s", r.status, r.body)
		}
		if r := e.post("/revoke", url.Values{"token": {t2.RefreshToken}, "token_type_hint": {"refresh_token"}}); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if !revoked(t, e, t2.AccessToken) {
			t.Fatal("the family's rotated access token has no revocation record")
		}
	})
	t.Run("code reuse", func(t *testing.T) {
		e := newEnv(t, nil)
		code, v := e.codeFor("")
		var tok challenge.TokenResponse
		e.redeem(code, v).json(&tok)
		if revoked(t, e, tok.AccessToken) {
			t.Fatal("revoked before the reuse")
		}
		e.redeem(code, v)
		if !revoked(t, e, tok.AccessToken) {
			t.Fatal("code reuse left the access token without a revocation record")
		}
	})
	t.Run("refresh reuse", func(t *testing.T) {
		e := newEnv(t, nil)
		t1 := issue(e)
		t2, _ := refresh(e, t1.RefreshToken)
		if _, r := refresh(e, t1.RefreshToken); r.err.Error != "invalid_grant" {
			t.Fatalf("reuse: %s", r.body)
		}
		if !revoked(t, e, t2.AccessToken) {
			t.Fatal("refresh reuse left the family's access token without a revocation record")
		}
	})
}
