package app

import (
	"context"
	"fmt"
	"time"

	"github.com/voiceauth/voiceauth/authserver"

	"github.com/voiceauth/voiceauth/ivr"
)

// hostPolicy is who may register subject tokens (POST
// /v1/calls/{CallSid}/subject-token). The AS authenticates any of its
// clients; only these are hosts. Without a configured list the embedded
// stack's demo host is the only one, and with an external AS nobody is.
// The voice client is never a host: it would let the IVR vouch for callers.
// A client registry with a "host" kind can replace this behind
// ivr.HostPolicy.
func hostPolicy(cfg Config, kind func(ctx context.Context, id string) (string, error)) (ivr.HostPolicy, error) {
	ids := cfg.HostClients
	if ids == nil && cfg.MCPURL == "" {
		ids = []string{hostClientID}
	}
	for _, id := range ids {
		if id == cfg.ClientID {
			return nil, fmt.Errorf("host clients: %q is the voice client, which can never register subject tokens", id)
		}
	}
	return registryHosts{list: ivr.HostList(ids), voice: cfg.ClientID, kind: kind}, nil
}

// registryHosts is the configured list plus every client the registry
// (`voiceauth clients add --kind host`) holds as a host, so instances sharing
// a store agree on the hosts without a restart.
type registryHosts struct {
	list  ivr.HostList
	voice string
	kind  func(ctx context.Context, id string) (string, error)
}

func (h registryHosts) IsHost(id string) bool {
	if id == "" || id == h.voice {
		return false
	}
	if h.list.IsHost(id) {
		return true
	}
	if h.kind == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	k, err := h.kind(ctx, id)
	return err == nil && k == authserver.KindHost
}
