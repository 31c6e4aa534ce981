package authserver

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/voiceauth/voiceauth/challenge"
)

// TestCodeResponseNamesIssuer: the metadata promises RFC 9207 iss and every
// code the challenge endpoint issues comes with iss equal to the issuer
// byte for byte; an error response is unchanged (no iss member).
func TestCodeResponseNamesIssuer(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := http.Get(e.ts.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var md challenge.ASMetadata
	err = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if err != nil || !md.AuthorizationResponseISSSupported {
		t.Fatalf("metadata does not advertise authorization_response_iss_parameter_supported: %+v %v", md, err)
	}

	p := demo("pt-0001")
	_, c := pkce()
	r := e.post("/challenge", kba(c, p.Name, p.Birthdate, p.SSNLast4, p.Phone, stirA, ""))
	var ok challenge.ChallengeSuccess
	if r.status != 200 || r.json(&ok) != nil || ok.AuthorizationCode == "" {
		t.Fatalf("challenge: %d %s", r.status, r.body)
	}
	if ok.Iss != e.ts.URL || ok.Iss != md.Issuer {
		t.Fatalf("code response iss %q, want %q", ok.Iss, md.Issuer)
	}

	_, c = pkce()
	r = e.post("/challenge", kba(c, p.Name, "", "", p.Phone, stirA, ""))
	var m map[string]any
	if r.status != 400 || json.Unmarshal(r.body, &m) != nil {
		t.Fatalf("partial answers: %d %s", r.status, r.body)
	}
	if _, has := m["iss"]; has {
		t.Fatalf("error response carries iss: %s", r.body)
	}
}
