package app

import (
	"fmt"

	"github.com/voiceauth/voiceauth/ivr"
)

// hostPolicy is who may register subject tokens (POST
// /v1/calls/{CallSid}/subject-token). The AS authenticates any of its
// clients; only these are hosts. Without a configured list the embedded
// stack's demo host is the only one, and with an external AS nobody is.
// The voice client is never a host: it would let the IVR vouch for callers.
// A client registry with a "host" kind can replace this behind
// ivr.HostPolicy.
func hostPolicy(cfg Config) (ivr.HostPolicy, error) {
	ids := cfg.HostClients
	if ids == nil && cfg.MCPURL == "" {
		ids = []string{hostClientID}
	}
	for _, id := range ids {
		if id == cfg.ClientID {
			return nil, fmt.Errorf("host clients: %q is the voice client, which can never register subject tokens", id)
		}
	}
	return ivr.HostList(ids), nil
}
