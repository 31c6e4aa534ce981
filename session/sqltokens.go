// A call's tokens on either backend, sealed as one JSON cell.

package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

type tokenSetJSON struct {
	AccessToken  string    `json:"access_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Scope        string    `json:"scope,omitempty"`
	Issuer       string    `json:"iss,omitempty"`
	Resource     string    `json:"resource,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

func (s *sqlStore) PutTokens(ctx context.Context, callID string, t TokenSet) error {
	if callID == "" {
		return errors.New("session: call id is empty")
	}
	plain, err := json.Marshal(tokenSetJSON(t))
	if err != nil {
		return err
	}
	sealed, err := s.sealer.Seal(plain, tblTokens, colTokens, callID)
	clear(plain)
	if err != nil {
		return err
	}
	_, nowUS := s.nowMicros()
	_, err = s.be.writer().exec(ctx,
		"INSERT INTO call_tokens (call_id, tokens_sealed, updated_at) VALUES (?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET tokens_sealed = excluded.tokens_sealed, updated_at = excluded.updated_at",
		callID, sealed, nowUS)
	if err != nil {
		return fmt.Errorf("session: put tokens: %w", err)
	}
	return nil
}

func (s *sqlStore) GetTokens(ctx context.Context, callID string) (TokenSet, error) {
	var sealed []byte
	err := s.be.reader().queryRow(ctx, "SELECT tokens_sealed FROM call_tokens WHERE call_id = ?", callID).Scan(&sealed)
	if err != nil {
		return TokenSet{}, wrapRead("get tokens", err)
	}
	plain, err := s.sealer.Open(sealed, tblTokens, colTokens, callID)
	if err != nil {
		return TokenSet{}, err
	}
	defer clear(plain)
	var t tokenSetJSON
	if err := json.Unmarshal(plain, &t); err != nil {
		return TokenSet{}, errors.New("session: stored token set is malformed")
	}
	return TokenSet(t), nil
}

func (s *sqlStore) DeleteTokens(ctx context.Context, callID string) error {
	if _, err := s.be.writer().exec(ctx, "DELETE FROM call_tokens WHERE call_id = ?", callID); err != nil {
		return fmt.Errorf("session: delete tokens: %w", err)
	}
	return nil
}
