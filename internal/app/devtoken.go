package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/voiceauth/voiceauth/challenge"
)

// MintDevToken issues a subject token from the dev partner issuer (the one
// the embedded AS trusts outside production) for patient sub, so RFC 8693
// can be tried from a shell (`voiceauth dev-token`). acr, when set, must be
// one of the profile's levels; the AS still caps it at the issuer's max_acr.
func MintDevToken(secrets *Secrets, audience, sub, acr string, now time.Time, ttl time.Duration) (string, error) {
	if secrets == nil || secrets.PartnerIssuerKey.Key == nil {
		return "", errors.New("the secrets file has no dev partner issuer key")
	}
	if sub == "" {
		return "", errors.New("--sub is required")
	}
	if acr != "" && acr != challenge.ACRKBA && acr != challenge.ACRKBAOTP {
		return "", fmt.Errorf("--acr must be %s or %s", challenge.ACRKBA, challenge.ACRKBAOTP)
	}
	if ttl <= 0 || ttl > time.Hour {
		return "", errors.New("--ttl must be between 1s and 1h")
	}
	key := secrets.PartnerIssuerKey
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.KeyID))
	if err != nil {
		return "", err
	}
	claims := jwt.Claims{
		Issuer: partnerIssuer, Subject: sub, Audience: jwt.Audience{audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		Expiry: jwt.NewNumericDate(now.Add(ttl)), ID: fmt.Sprintf("%x", randomBytes(12)),
	}
	b := jwt.Signed(signer).Claims(claims)
	if acr != "" {
		b = b.Claims(map[string]any{"acr": acr})
	}
	return b.Serialize()
}
