package app

import (
	"fmt"
	"net/url"
)

// CheckIssuerPin refuses an external MCP server without an AS issuer pin.
// Without the pin the voice client would send its client secret and the
// caller's KBA answers to whichever authorization server the MCP server's
// protected-resource metadata names, so whoever runs (or impersonates) the
// MCP server would collect them. The embedded stack pins its own AS.
func CheckIssuerPin(mcpURL, asIssuer string) error {
	if mcpURL == "" {
		return nil
	}
	if asIssuer == "" {
		return fmt.Errorf("--mcp-url (VOICEAUTH_MCP_URL) needs --as-issuer (VOICEAUTH_AS_ISSUER): the issuer of the authorization server that the MCP server must name; without it client secrets and KBA answers would go to any AS the MCP server names")
	}
	u, err := url.Parse(asIssuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--as-issuer (VOICEAUTH_AS_ISSUER) must be the issuer URL of the authorization server (http(s)://host[/path], no query or fragment), not %q", asIssuer)
	}
	return nil
}
