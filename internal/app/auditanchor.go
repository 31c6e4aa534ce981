package app

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/voiceauth/voiceauth/session"
)

// AuditCheckpoint is the payload of the signed checkpoint `voiceauth audit
// anchor` prints: which record was the chain's head, its chain value, and
// when. Kept outside the store (a ticket, a mail, another machine), it lets
// `audit verify --checkpoint` tell a rebuilt chain (even one rebuilt with
// the audit key) and a truncated one from the chain that was anchored.
type AuditCheckpoint struct {
	Type string `json:"typ"`  // AuditCheckpointType
	Seq  int64  `json:"seq"`  // the anchored record
	Head string `json:"head"` // hex of its chain value (key version ‖ HMAC)
	Time string `json:"time"` // RFC 3339, when the checkpoint was taken
}

const (
	// AuditCheckpointType is the payload's "typ".
	AuditCheckpointType = "voiceauth-audit-checkpoint"
	// auditCheckpointJOSEType is the JWS header's "typ".
	auditCheckpointJOSEType = "voiceauth-audit-checkpoint+jws"
)

// AnchorAudit verifies the chain up to its current head and returns a
// compact JWS (EdDSA, under the secrets file's audit anchor key) of a
// checkpoint naming that head. A broken chain is not anchored.
func AnchorAudit(ctx context.Context, st session.Store, sec *Secrets, now time.Time) (string, AuditCheckpoint, error) {
	an, ok := st.(session.AuditAnchorer)
	if !ok {
		return "", AuditCheckpoint{}, errors.New("this store cannot anchor its audit trail")
	}
	head, err := an.AuditHead(ctx)
	if err != nil {
		return "", AuditCheckpoint{}, err
	}
	if head.Seq == 0 {
		return "", AuditCheckpoint{}, errors.New("the audit trail is empty: nothing to anchor")
	}
	rep, err := an.VerifyAuditAnchor(ctx, head)
	if err != nil {
		return "", AuditCheckpoint{}, err
	}
	if rep.Problem != "" {
		return "", AuditCheckpoint{}, fmt.Errorf("the audit trail is broken at record %d (%s): not anchoring it", rep.FirstBad, rep.Problem)
	}
	cp := AuditCheckpoint{Type: AuditCheckpointType, Seq: head.Seq, Head: hex.EncodeToString(head.Hash),
		Time: now.UTC().Format(time.RFC3339)}
	payload, err := json.Marshal(cp)
	if err != nil {
		return "", cp, err
	}
	if sec.AuditAnchorKey.Key == nil {
		return "", cp, errors.New("the secrets file has no audit anchor key")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: sec.AuditAnchorKey},
		(&jose.SignerOptions{}).WithType(auditCheckpointJOSEType))
	if err != nil {
		return "", cp, err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", cp, err
	}
	jws, err := obj.CompactSerialize()
	return jws, cp, err
}

// ParseAuditCheckpoint verifies a checkpoint's signature with the audit
// anchor key of sec and returns it with the anchor to check the store
// against. Anything but one EdDSA signature by that key over a well-formed
// checkpoint is refused.
func ParseAuditCheckpoint(text string, sec *Secrets) (AuditCheckpoint, session.AuditAnchor, error) {
	var cp AuditCheckpoint
	obj, err := jose.ParseSigned(strings.TrimSpace(text), []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return cp, session.AuditAnchor{}, fmt.Errorf("checkpoint is not a JWS: %w", err)
	}
	if len(obj.Signatures) != 1 {
		return cp, session.AuditAnchor{}, errors.New("checkpoint must carry exactly one signature")
	}
	if typ, _ := obj.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string); typ != auditCheckpointJOSEType {
		return cp, session.AuditAnchor{}, fmt.Errorf("checkpoint has JOSE type %q, want %q", typ, auditCheckpointJOSEType)
	}
	if sec.AuditAnchorKey.Key == nil {
		return cp, session.AuditAnchor{}, errors.New("the secrets file has no audit anchor key")
	}
	payload, err := obj.Verify(sec.AuditAnchorKey.Public())
	if err != nil {
		return cp, session.AuditAnchor{}, errors.New("checkpoint signature does not verify with this secrets file's audit anchor key")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cp); err != nil {
		return cp, session.AuditAnchor{}, fmt.Errorf("checkpoint payload: %w", err)
	}
	if dec.More() {
		return cp, session.AuditAnchor{}, errors.New("checkpoint payload: trailing data")
	}
	head, err := hex.DecodeString(cp.Head)
	switch {
	case cp.Type != AuditCheckpointType:
		return cp, session.AuditAnchor{}, fmt.Errorf("checkpoint payload has typ %q", cp.Type)
	case cp.Seq <= 0:
		return cp, session.AuditAnchor{}, errors.New("checkpoint names no record")
	case err != nil || len(head) == 0:
		return cp, session.AuditAnchor{}, errors.New("checkpoint head is not hex")
	}
	if _, err := time.Parse(time.RFC3339, cp.Time); err != nil {
		return cp, session.AuditAnchor{}, errors.New("checkpoint time is not RFC 3339")
	}
	return cp, session.AuditAnchor{Seq: cp.Seq, Hash: head}, nil
}
