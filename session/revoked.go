package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Revoked access tokens: the authorization server writes a row wherever it
// revokes, and a resource server that verifies JWTs locally reads it on
// every request, so a revocation takes effect at the next request instead
// of at the token's expiry. Rows are keyed by jti (not a secret).

func (s *sqlStore) RevokeToken(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" {
		return errors.New("session: revoke: jti is empty")
	}
	if exp.IsZero() {
		return errors.New("session: revoke: expiry is zero")
	}
	// A second revocation of the same jti keeps the later expiry.
	_, err := s.be.writer().exec(ctx,
		`INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?)
ON CONFLICT (jti) DO UPDATE SET expires_at = CASE WHEN excluded.expires_at > revoked_tokens.expires_at
THEN excluded.expires_at ELSE revoked_tokens.expires_at END`,
		jti, micros(exp))
	if err != nil {
		return fmt.Errorf("session: revoke token: %w", err)
	}
	return nil
}

// TokenRevoked does not look at expires_at: a row means revoked until it
// is purged, so a verifier's clock leeway past exp never reopens a token.
func (s *sqlStore) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	var one int
	err := s.be.reader().queryRow(ctx, "SELECT 1 FROM revoked_tokens WHERE jti = ?", jti).Scan(&one)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("session: token revoked: %w", err)
	}
	return true, nil
}

func (s *sqlStore) SweepRevoked(ctx context.Context, before time.Time) (int, error) {
	n, err := s.be.writer().exec(ctx, "DELETE FROM revoked_tokens WHERE expires_at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("session: sweep revoked tokens: %w", err)
	}
	return int(n), nil
}
