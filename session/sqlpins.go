// MCP server identity pins (trust on first use) on either backend.

package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

func (s *sqlStore) GetPin(ctx context.Context, server string) (*Pin, error) {
	var (
		p               Pin
		pinned, updated int64
	)
	err := s.be.reader().queryRow(ctx,
		"SELECT key_id, thumbprint, jwk, pinned_at, updated_at FROM mcp_pins WHERE server = ?", server).
		Scan(&p.KeyID, &p.Thumbprint, &p.Key, &pinned, &updated)
	if err != nil {
		return nil, wrapRead("get pin", err)
	}
	p.Server, p.PinnedAt, p.UpdatedAt = server, fromMicros(pinned), fromMicros(updated)
	return &p, nil
}

func (s *sqlStore) PutPin(ctx context.Context, p *Pin) error {
	if p == nil || p.Server == "" {
		return errors.New("session: pin server is empty")
	}
	now, nowUS := s.nowMicros()
	pinned := p.PinnedAt.UTC().Truncate(time.Microsecond)
	if p.PinnedAt.IsZero() {
		pinned = now
	}
	_, err := s.be.writer().exec(ctx,
		`INSERT INTO mcp_pins (server, key_id, thumbprint, jwk, pinned_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (server) DO UPDATE SET key_id = excluded.key_id, thumbprint = excluded.thumbprint, jwk = excluded.jwk,
pinned_at = excluded.pinned_at, updated_at = excluded.updated_at`,
		p.Server, p.KeyID, p.Thumbprint, nonNil(p.Key), micros(pinned), nowUS)
	if err != nil {
		return fmt.Errorf("session: put pin: %w", err)
	}
	p.PinnedAt, p.UpdatedAt = pinned, now
	return nil
}

func (s *sqlStore) ListPins(ctx context.Context) ([]Pin, error) {
	rows, err := s.be.reader().query(ctx,
		"SELECT server, key_id, thumbprint, jwk, pinned_at, updated_at FROM mcp_pins ORDER BY server")
	if err != nil {
		return nil, fmt.Errorf("session: list pins: %w", err)
	}
	defer rows.Close()
	var out []Pin
	for rows.Next() {
		var (
			p               Pin
			pinned, updated int64
		)
		if err := rows.Scan(&p.Server, &p.KeyID, &p.Thumbprint, &p.Key, &pinned, &updated); err != nil {
			return nil, fmt.Errorf("session: list pins: %w", err)
		}
		p.PinnedAt, p.UpdatedAt = fromMicros(pinned), fromMicros(updated)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session: list pins: %w", err)
	}
	return out, nil
}

func (s *sqlStore) DeletePin(ctx context.Context, server string, e *AuditEvent) error {
	if e != nil && e.Type == "" {
		return errors.New("session: audit event type is empty")
	}
	var out AuditEvent
	err := s.be.tx(ctx, func(x execer) error {
		n, err := x.exec(ctx, "DELETE FROM mcp_pins WHERE server = ?", server)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if e != nil {
			out, err = s.appendAudit(ctx, x, *e)
		}
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("session: delete pin: %w", err)
	}
	if e != nil {
		*e = out
	}
	return nil
}
