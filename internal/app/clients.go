package app

import (
	"context"

	"github.com/voiceauth/voiceauth/authserver"
)

// ClientKind is the kind (voice, host, exchange) of a client of the
// embedded AS — configured or added with `voiceauth clients add` — or ""
// when unknown. The subject-token endpoint's host check asks it
// (IsHost(id) = ClientKind(ctx, id) == authserver.KindHost) after the
// client's credentials were verified. With an external AS (--mcp-url) it
// consults the registry in the store.
func (s *Stack) ClientKind(ctx context.Context, id string) (string, error) {
	if s.as != nil {
		return s.as.ClientKind(ctx, id)
	}
	k, err := (&authserver.Registry{Store: s.store}).Kind(ctx, id)
	if err == authserver.ErrClientNotFound {
		return "", nil
	}
	return k, err
}
