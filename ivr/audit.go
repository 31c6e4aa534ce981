package ivr

import (
	"context"

	"github.com/voiceauth/voiceauth/session"
)

// Audit event types written by the voice service.
const (
	AuditSignatureRejected = "twilio.signature_rejected" // a webhook or relay handshake failed the Twilio signature
	AuditRelayRefused      = "twilio.relay_refused"      // a signed relay socket was refused the call (relaygrant.go)
)

// audit appends one record about a refused request. It carries the path and
// the call_ref (a keyed hash of the CallSid), never the body. A failed write
// is logged and does not change the answer: the request is refused anyway.
func (s *Server) audit(ctx context.Context, typ, path, sid string, detail map[string]string) {
	d := map[string]string{"path": path}
	for k, v := range detail {
		d[k] = v
	}
	e := &session.AuditEvent{Time: s.now(), Type: typ, Actor: "ivr", Outcome: "rejected", Detail: d}
	if sid != "" {
		e.CallRef = s.callRef(sid)
	}
	// The request's context may already be cancelled (the client left);
	// the record must still be written.
	if err := s.cfg.Store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("audit", "type", typ, "err", errKind(err))
	}
}
