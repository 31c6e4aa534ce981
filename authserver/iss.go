package authserver

import (
	"context"
	"net/http"
	"net/url"

	"github.com/voiceauth/voiceauth/challenge"
)

// withIss names this issuer (RFC 9207 iss) in every authorization code the
// challenge endpoint issues, as the metadata's
// authorization_response_iss_parameter_supported promises, so a client can
// tell which AS issued a code before it redeems it anywhere. FiPA error
// responses are not RFC 9207 authorization responses (they carry no code),
// and their bodies stay byte-identical across failure causes (no oracle), so
// they are left as they are; a client checks iss on them only when present.
func (s *Server) withIss(h formHandler) formHandler {
	return func(ctx context.Context, r *http.Request, f url.Values) (any, error) {
		out, err := h(ctx, r, f)
		if cs, ok := out.(challenge.ChallengeSuccess); ok {
			cs.Iss = s.cfg.Issuer
			out = cs
		}
		return out, err
	}
}
