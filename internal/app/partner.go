package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/authserver"
)

// The dev "partner" issuer stands for another first-party app (a patient
// portal, say) whose tokens the embedded AS accepts for RFC 8693 exchange.
// Its private key lives in the secrets file; its JWKS is written to the data
// dir so the AS trusts it exactly as it would trust a configured issuer.

func (s *Stack) trustedIssuers() ([]authserver.TrustedIssuer, error) {
	var out []authserver.TrustedIssuer
	if s.cfg.TrustedIssuersFile != "" {
		ts, err := authserver.LoadTrustedIssuers(s.cfg.TrustedIssuersFile)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	if s.cfg.Production {
		return out, nil
	}
	path := filepath.Join(s.cfg.DataDir, "partner-jwks.json")
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.secrets.PartnerIssuerKey.Public()}}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	// Its tokens carry no acr (exchanged at the lowest tier, kba), name this
	// AS as aud (the default audience) and a fresh jti (single use), and are
	// typed JWT: nothing else is accepted from it.
	return append(out, authserver.TrustedIssuer{
		Issuer: partnerIssuer, JWKSFile: path, SubjectClaim: "sub", MaxACR: "urn:voiceauth:acr:kba",
		Types: []string{"JWT"},
	}), nil
}

// MintUpstreamToken issues a token from the dev partner issuer for patient
// sub, as a host application would hold after its own login.
func (s *Stack) MintUpstreamToken(sub string, ttl time.Duration) (string, error) {
	if s.cfg.Production {
		return "", errors.New("the dev partner issuer is disabled in production")
	}
	key := s.secrets.PartnerIssuerKey
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.KeyID))
	if err != nil {
		return "", err
	}
	now := s.cfg.Now()
	claims := jwt.Claims{
		Issuer: partnerIssuer, Subject: sub, Audience: jwt.Audience{s.ASURL},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		Expiry: jwt.NewNumericDate(now.Add(ttl)), ID: fmt.Sprintf("%x", randomBytes(12)),
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}
