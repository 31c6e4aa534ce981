package mcpclient

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/mcpidentity"
)

// A key that its holder has revoked (a signed "revocation" attestation
// naming it) is refused whether it is pinned, presented on first use or
// checked under the publisher policy; the pin is neither moved nor dropped
// (an operator clears it with `voiceauth pins clear`). Revocations that are
// not signed by the revoked key, or that name another key, change nothing.
func TestRevokedKeyRefused(t *testing.T) {
	ctx := t.Context()
	at := time.Now()
	key, other, next := newKey(t), newKey(t), newKey(t)
	mustJSON := func(r mcpidentity.RotationRecord, err error) json.RawMessage {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	compromise := mustJSON(mcpidentity.SignRevocation(key, "key-compromise", at))
	rotatedAway := mustJSON(mcpidentity.SignRotation(key, next, at)) // key hands over to next but is still presented
	forged := mustJSON(mcpidentity.SignRevocation(other, "key-compromise", at))
	// A record naming key but signed by other: anyone could write it.
	var fr mcpidentity.RotationRecord
	_ = json.Unmarshal(compromise, &fr)
	otherSigned, _ := mcpidentity.SignRevocation(other, "key-compromise", at)
	fr.Signature = otherSigned.Signature
	wrongSigner, _ := json.Marshal(fr)
	// The draft's own shape: revokedKid only, no thumbprints, signed over
	// the record as sent minus "signature".
	draft := map[string]any{"type": "revocation", "revokedKid": key.KeyID, "replacementKid": "", "reason": "key-compromise",
		"signedAt": at.UTC().Format(time.RFC3339)}
	msg, err := canonical(draft)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := privateKey(key)
	draft["signature"] = b64.EncodeToString(ed25519.Sign(priv, msg))
	draftJSON, _ := json.Marshal(draft)

	tp, _ := mcpidentity.Thumbprint(key)
	pub, _ := mcpidentity.PublicJWK(key)
	for _, tc := range []struct {
		name    string
		att     []json.RawMessage
		pinned  bool
		wantErr bool
	}{
		{"pinned, compromised", []json.RawMessage{compromise}, true, true},
		{"pinned, rotated away but still presented", []json.RawMessage{rotatedAway}, true, true},
		{"pinned, draft-shaped revocation by kid", []json.RawMessage{draftJSON}, true, true},
		{"first use, compromised", []json.RawMessage{compromise}, false, true},
		{"pinned, revocation of another key", []json.RawMessage{forged}, true, false},
		{"pinned, revocation not signed by the key", []json.RawMessage{wrongSigner}, true, false},
		{"pinned, no revocation", nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := (&testServer{key: key, extraAtt: tc.att}).start(t)
			pins := newMemPins()
			if tc.pinned {
				_ = pins.PutPin(ctx, &Pin{Server: url, KeyID: key.KeyID, Thumbprint: tp, Key: pub})
			}
			s, err := New(Config{Pins: pins}).Connect(ctx, url, &staticTokens{tokens: []string{"tok"}})
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				s.Close()
				return
			}
			if !errors.Is(err, ErrIdentity) {
				t.Fatalf("Connect: %v, want ErrIdentity", err)
			}
			p, perr := pins.GetPin(ctx, url)
			switch {
			case tc.pinned && (perr != nil || p.Thumbprint != tp):
				t.Fatalf("pin changed after a refused key: %+v, %v", p, perr)
			case !tc.pinned && !errors.Is(perr, ErrNoPin):
				t.Fatalf("a revoked key was pinned on first use: %+v", p)
			}
		})
	}

	// The publisher policy refuses it too, although the publisher vouches for the key.
	t.Run("publisher policy", func(t *testing.T) {
		pubKey := newKey(t)
		att, err := mcpidentity.SignPublisherAttestation(pubKey, "Publisher", "https://publisher.example", key, at, at.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		url := (&testServer{key: key, extraAtt: []json.RawMessage{att, compromise}}).start(t)
		anchor := pubKey.Public().Key.(ed25519.PublicKey)
		_, err = New(Config{Policy: Policy{Mode: PolicyPublisher, Anchors: []ed25519.PublicKey{anchor}}}).Connect(ctx, url, &staticTokens{tokens: []string{"tok"}})
		if !errors.Is(err, ErrIdentity) {
			t.Fatalf("Connect: %v, want ErrIdentity", err)
		}
	})
}
