package mcpclient

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/go-jose/go-jose/v4"
	"github.com/gowebpki/jcs"
)

// b64 is the extension's encoding, for tests that hand-craft signatures.
var b64 = base64.RawURLEncoding

// canonical is RFC 8785 JCS of v, as the extension signs it.
func canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

func privateKey(k jose.JSONWebKey) (ed25519.PrivateKey, error) {
	priv, ok := k.Key.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 private key")
	}
	return priv, nil
}
