package challenge

import (
	"net/http"
	"strings"
	"testing"
)

func FuzzParseWWWAuthenticate(f *testing.F) {
	for _, s := range []string{
		`Bearer resource_metadata="http://127.0.0.1:8082/.well-known/oauth-protected-resource/mcp", scope="appointments:read"`,
		`Bearer error="insufficient_user_authentication", acr_values="urn:voiceauth:acr:kba-otp", max_age=0`,
		`Basic realm="x", Bearer scope="s"`, `Negotiate YWJjZA==`, `Bearer scope="a\"b"`, ``, `,,,`, `Bearer x=`,
	} {
		f.Add(s)
	}
	c := New(Config{})
	f.Fuzz(func(t *testing.T, h string) {
		scheme, params, err := ParseWWWAuthenticate(h)
		if err != nil {
			return
		}
		if scheme == "" || scheme != strings.ToLower(scheme) {
			t.Fatalf("scheme %q", scheme)
		}
		for k := range params {
			if k != strings.ToLower(k) {
				t.Fatalf("param name %q not lower-cased", k)
			}
		}
		fl := &Flow{Scope: "appointments:read"}
		c.StepUp(fl, h) // must not panic
	})
}

// FuzzDecodeResponses feeds arbitrary bodies and statuses through every
// decoder of outside input: challenge results, OAuth errors, PRM and AS
// metadata validation. None may panic; a classified result is always one of
// the closed set, and Error() never echoes the body.
func FuzzDecodeResponses(f *testing.F) {
	for _, s := range []string{
		`{"authorization_code":"abc"}`,
		`{"error":"insufficient_authorization","auth_session":"s","kba_required":["kba_birthdate"]}`,
		`{"error":"insufficient_authorization","auth_session":"s","otp_required":true,"otp_retry":true}`,
		`{"error":"access_denied"}`, `{"error":"redirect_to_web","request_uri":"urn:x","expires_in":60}`,
		`{"issuer":"http://127.0.0.1:8081","authorization_challenge_endpoint":"http://127.0.0.1:8081/c","token_endpoint":"http://127.0.0.1:8081/t","code_challenge_methods_supported":["S256"]}`,
		`{"resource":"http://127.0.0.1:8082/mcp","authorization_servers":["http://127.0.0.1:8081"]}`,
		`{"error":`, `[]`, `null`, `{"error":"x"} trailing`, "{\"error\":\"\xff\"}",
	} {
		f.Add(200, []byte(s))
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		fl := &Flow{AuthSession: "old"}
		res := (&Client{}).classify(fl, &response{status: status, header: http.Header{}, body: body})
		if res.Outcome < Code || res.Outcome > TransportFailure {
			t.Fatalf("outcome %v", res.Outcome)
		}
		if res.Outcome == Code && res.Code == "" {
			t.Fatal("Code without a code")
		}
		if res.Err != nil {
			msg := res.Err.Error()
			if res.Err.AuthSession != "" && strings.Contains(msg, res.Err.AuthSession) && len(res.Err.AuthSession) > 8 {
				t.Fatalf("auth_session in error string %q", msg)
			}
		}
		_ = wireError("token", &response{status: status, body: body})
		var as ASMetadata
		if decodeJSON(body, &as) == nil {
			_ = validateAS(&as, "http://127.0.0.1:8081")
		}
		var prm ProtectedResourceMetadata
		if decodeJSON(body, &prm) == nil {
			_ = sameResource(prm.Resource, "http://127.0.0.1:8082/mcp")
		}
		_ = checkAudience(string(body), "http://127.0.0.1:8081", "http://127.0.0.1:8082/mcp")
	})
}
