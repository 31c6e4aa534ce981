package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Client is one entry of the authorization server's client registry. The
// store knows its id and kind; Data (secret hashes, keys) is opaque to it
// and sealed at rest.
type Client struct {
	ID        string
	Kind      string
	Version   int64 // optimistic concurrency, as for calls
	Data      []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ClientStore is implemented by every Store returned by Open: the client
// registry, shared by every instance on the store.
type ClientStore interface {
	CreateClient(ctx context.Context, c *Client) error         // ErrExists
	GetClient(ctx context.Context, id string) (*Client, error) // ErrNotFound
	ListClients(ctx context.Context) ([]Client, error)         // ordered by id
	// UpdateClient writes c if the stored version still equals c.Version,
	// then increments c.Version; otherwise ErrConflict (or ErrNotFound).
	UpdateClient(ctx context.Context, c *Client) error
	DeleteClient(ctx context.Context, id string) error // ErrNotFound
}

const tblClients = "clients"

var _ ClientStore = (*sqlStore)(nil)

func (s *sqlStore) CreateClient(ctx context.Context, c *Client) error {
	if c == nil || c.ID == "" || c.Kind == "" {
		return errors.New("session: client id or kind is empty")
	}
	now, nowUS := s.nowMicros()
	sealed, err := s.sealer.Seal(c.Data, tblClients, colData, c.ID)
	if err != nil {
		return err
	}
	n, err := s.be.writer().exec(ctx,
		"INSERT INTO clients (id, kind, version, data_sealed, created_at, updated_at) VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
		c.ID, c.Kind, sealed, nowUS, nowUS)
	if err != nil {
		return fmt.Errorf("session: create client: %w", err)
	}
	if n == 0 {
		return ErrExists
	}
	c.Version, c.CreatedAt, c.UpdatedAt = 1, now, now
	return nil
}

func (s *sqlStore) GetClient(ctx context.Context, id string) (*Client, error) {
	var (
		c                Client
		sealed           []byte
		created, updated int64
	)
	err := s.be.reader().queryRow(ctx,
		"SELECT kind, version, data_sealed, created_at, updated_at FROM clients WHERE id = ?", id).
		Scan(&c.Kind, &c.Version, &sealed, &created, &updated)
	if err != nil {
		return nil, wrapRead("get client", err)
	}
	if c.Data, err = s.sealer.Open(sealed, tblClients, colData, id); err != nil {
		return nil, err
	}
	c.ID, c.CreatedAt, c.UpdatedAt = id, fromMicros(created), fromMicros(updated)
	return &c, nil
}

func (s *sqlStore) ListClients(ctx context.Context) ([]Client, error) {
	rows, err := s.be.reader().query(ctx,
		"SELECT id, kind, version, data_sealed, created_at, updated_at FROM clients ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("session: list clients: %w", err)
	}
	defer rows.Close()
	var out []Client
	for rows.Next() {
		var (
			c                Client
			sealed           []byte
			created, updated int64
		)
		if err := rows.Scan(&c.ID, &c.Kind, &c.Version, &sealed, &created, &updated); err != nil {
			return nil, fmt.Errorf("session: list clients: %w", err)
		}
		if c.Data, err = s.sealer.Open(sealed, tblClients, colData, c.ID); err != nil {
			return nil, err
		}
		c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session: list clients: %w", err)
	}
	return out, nil
}

func (s *sqlStore) UpdateClient(ctx context.Context, c *Client) error {
	if c == nil || c.ID == "" || c.Kind == "" {
		return errors.New("session: client id or kind is empty")
	}
	now, nowUS := s.nowMicros()
	sealed, err := s.sealer.Seal(c.Data, tblClients, colData, c.ID)
	if err != nil {
		return err
	}
	n, err := s.be.writer().exec(ctx,
		"UPDATE clients SET kind = ?, data_sealed = ?, version = version + 1, updated_at = ? WHERE id = ? AND version = ?",
		c.Kind, sealed, nowUS, c.ID, c.Version)
	if err != nil {
		return fmt.Errorf("session: update client: %w", err)
	}
	if n == 0 {
		return s.casMiss(ctx, "SELECT 1 FROM clients WHERE id = ?", c.ID)
	}
	c.Version++
	c.UpdatedAt = now
	return nil
}

func (s *sqlStore) DeleteClient(ctx context.Context, id string) error {
	n, err := s.be.writer().exec(ctx, "DELETE FROM clients WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("session: delete client: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
