package scenarios

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// registerSubjectToken plays the host application that authenticated the
// caller elsewhere: it registers a token for the CallSid before the call is
// connected (POST /v1/calls/{CallSid}/subject-token, host client credentials).
func registerSubjectToken(ctx context.Context, target *Target, callSid string, ut *UpstreamToken) error {
	if target.Backend == nil {
		return fmt.Errorf("upstream_token needs the embedded stack (the dev partner issuer)")
	}
	ttl := time.Duration(ut.TTL)
	if ttl == 0 {
		ttl = 5 * time.Minute
	}
	tok, err := target.Backend.MintUpstreamToken(ut.Sub, ttl)
	if err != nil {
		return fmt.Errorf("mint upstream token: %w", err)
	}
	if ut.Tampered {
		tok = tamperJWT(tok)
	}
	form := url.Values{}
	form.Set("subject_token", tok)
	form.Set("subject_token_type", "urn:ietf:params:oauth:token-type:jwt")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		strings.TrimRight(target.VoiceURL, "/")+"/v1/calls/"+url.PathEscape(callSid)+"/subject-token",
		strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	id, secret := target.Backend.HostCredentials()
	req.SetBasicAuth(id, secret)
	resp, err := target.client().Do(req)
	if err != nil {
		return fmt.Errorf("register subject token: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if ut.ExpectStatus != 0 {
		if resp.StatusCode != ut.ExpectStatus {
			return fmt.Errorf("register subject token: HTTP %d, want %d", resp.StatusCode, ut.ExpectStatus)
		}
		return nil
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("register subject token: HTTP %d", resp.StatusCode)
	}
	return nil
}

// tamperJWT changes one character of the signature segment.
func tamperJWT(tok string) string {
	i := strings.LastIndex(tok, ".")
	if i < 0 || i+2 >= len(tok) {
		return tok + "x"
	}
	b := []byte(tok)
	j := i + 1 + (len(tok)-i-1)/2
	if b[j] == 'A' {
		b[j] = 'B'
	} else {
		b[j] = 'A'
	}
	return string(b)
}
