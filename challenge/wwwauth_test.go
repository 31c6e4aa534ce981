package challenge

import (
	"maps"
	"testing"
)

func TestParseWWWAuthenticate(t *testing.T) {
	tests := []struct {
		name, in   string
		wantScheme string
		want       map[string]string
		wantErr    bool
	}{
		{"mcp 401", `Bearer resource_metadata="http://127.0.0.1:8082/.well-known/oauth-protected-resource/mcp", scope="appointments:read"`,
			"bearer", map[string]string{"resource_metadata": "http://127.0.0.1:8082/.well-known/oauth-protected-resource/mcp", "scope": "appointments:read"}, false},
		{"step-up", `Bearer error="insufficient_user_authentication", error_description="need otp", acr_values="urn:voiceauth:acr:kba-otp", max_age=0`,
			"bearer", map[string]string{"error": "insufficient_user_authentication", "error_description": "need otp", "acr_values": "urn:voiceauth:acr:kba-otp", "max_age": "0"}, false},
		{"case and spacing", `  bEaReR   Error = "insufficient_scope" ,SCOPE="a b"`, "bearer", map[string]string{"error": "insufficient_scope", "scope": "a b"}, false},
		{"escapes", `Bearer realm="a \"quoted\" \\ value"`, "bearer", map[string]string{"realm": `a "quoted" \ value`}, false},
		{"bare scheme", `Bearer`, "bearer", map[string]string{}, false},
		{"prefers bearer", `Basic realm="x", Bearer scope="s"`, "bearer", map[string]string{"scope": "s"}, false},
		{"bearer first", `Bearer scope="s", Basic realm="x"`, "bearer", map[string]string{"scope": "s"}, false},
		{"token68", `Negotiate YWJjZA==`, "negotiate", map[string]string{"": "YWJjZA=="}, false},
		{"empty commas", `, , Bearer scope="s",,`, "bearer", map[string]string{"scope": "s"}, false},
		{"empty", ``, "", nil, true},
		{"unterminated quote", `Bearer scope="abc`, "", nil, true},
		{"token68 padding, not a param", `Bearer scope=`, "bearer", map[string]string{"": "scope="}, false},
		{"missing value mid-list", `Bearer scope=, error="x"`, "", nil, true},
		{"duplicate param", `Bearer scope="a", scope="b"`, "", nil, true},
		{"garbage after value", `Bearer scope="a" junk`, "", nil, true},
		{"control char", "Bearer scope=\"a\x01\"", "", nil, true},
		{"bad scheme", `"quoted"`, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme, params, err := ParseWWWAuthenticate(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if scheme != tt.wantScheme || !maps.Equal(params, tt.want) {
				t.Fatalf("got %q %v, want %q %v", scheme, params, tt.wantScheme, tt.want)
			}
		})
	}
}
