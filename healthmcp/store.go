package healthmcp

import (
	"context"

	"github.com/voiceauth/voiceauth/session"
)

// Store is what the MCP server needs from the store: the AS's revocation
// records, checked on every request, and the audit trail. session.Store
// satisfies it.
type Store interface {
	TokenRevoked(ctx context.Context, jti string) (bool, error)
	AppendAudit(ctx context.Context, e *session.AuditEvent) error
}
