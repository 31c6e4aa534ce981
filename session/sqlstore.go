package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// sqlStore implements Store on either backend with one set of queries.
type sqlStore struct {
	be     backend
	sealer *Sealer
	audit  *auditKeyring
	now    func() time.Time
	log    *slog.Logger

	patients patientCache // FindPatients answers, per directory revision
}

var (
	_ Store        = (*sqlStore)(nil)
	_ Rewrapper    = (*sqlStore)(nil)
	_ RecordLister = (*sqlStore)(nil)
)

// Sealed cells: the AAD names the real table and column.
const (
	tblCalls    = "calls"
	colState    = "state_sealed"
	tblTokens   = "call_tokens"
	colTokens   = "tokens_sealed"
	tblRecords  = "records"
	colData     = "data_sealed"
	tblPatients = "patients"
	colProfile  = "profile_sealed"
)

func recordRowID(kind, key string) string { return kind + "\x1f" + key }

func (s *sqlStore) nowMicros() (time.Time, int64) {
	t := s.now().UTC().Truncate(time.Microsecond)
	return t, t.UnixMicro()
}

// ---- calls ----

const qCreateCall = "INSERT INTO calls (id, version, state_sealed, ended, created_at, updated_at) VALUES (?, 1, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"

func (s *sqlStore) CreateCall(ctx context.Context, c *Call) error {
	ins, err := s.callInsert(c)
	if err != nil {
		return err
	}
	if err := ins.exec(ctx, s.be.writer()); err != nil {
		return err
	}
	ins.done(c)
	return nil
}

// callInsert is one new call row, sealed and timestamped, ready to write.
type callInsert struct {
	id               string
	sealed           []byte
	ended            bool
	created, now     time.Time
	createdUS, nowUS int64
}

func (s *sqlStore) callInsert(c *Call) (*callInsert, error) {
	if c == nil || c.ID == "" {
		return nil, errors.New("session: call id is empty")
	}
	now, nowUS := s.nowMicros()
	created := c.CreatedAt.UTC().Truncate(time.Microsecond)
	if c.CreatedAt.IsZero() {
		created = now
	}
	sealed, err := s.sealer.Seal(c.State, tblCalls, colState, c.ID)
	if err != nil {
		return nil, err
	}
	return &callInsert{id: c.ID, sealed: sealed, ended: c.Ended, created: created, now: now, createdUS: micros(created), nowUS: nowUS}, nil
}

// exec writes the row; ErrExists when the call is already stored.
func (in *callInsert) exec(ctx context.Context, x execer) error {
	n, err := x.exec(ctx, qCreateCall, in.id, in.sealed, in.ended, in.createdUS, in.nowUS)
	if err != nil {
		return fmt.Errorf("session: create call: %w", err)
	}
	if n == 0 {
		return ErrExists
	}
	return nil
}

// done records the written row's version and times on c.
func (in *callInsert) done(c *Call) {
	c.Version, c.CreatedAt, c.UpdatedAt = 1, in.created, in.now
}

func (s *sqlStore) GetCall(ctx context.Context, id string) (*Call, error) {
	var (
		c                Call
		sealed           []byte
		created, updated int64
	)
	err := s.be.reader().queryRow(ctx,
		"SELECT version, state_sealed, ended, created_at, updated_at FROM calls WHERE id = ?", id).
		Scan(&c.Version, &sealed, &c.Ended, &created, &updated)
	if err != nil {
		return nil, wrapRead("get call", err)
	}
	if c.State, err = s.sealer.Open(sealed, tblCalls, colState, id); err != nil {
		return nil, err
	}
	c.ID, c.CreatedAt, c.UpdatedAt = id, fromMicros(created), fromMicros(updated)
	return &c, nil
}

func (s *sqlStore) UpdateCall(ctx context.Context, c *Call) error {
	if c == nil || c.ID == "" {
		return errors.New("session: call id is empty")
	}
	now, nowUS := s.nowMicros()
	sealed, err := s.sealer.Seal(c.State, tblCalls, colState, c.ID)
	if err != nil {
		return err
	}
	n, err := s.be.writer().exec(ctx,
		"UPDATE calls SET state_sealed = ?, ended = ?, version = version + 1, updated_at = ? WHERE id = ? AND version = ?",
		sealed, c.Ended, nowUS, c.ID, c.Version)
	if err != nil {
		return fmt.Errorf("session: update call: %w", err)
	}
	if n == 0 {
		return s.casMiss(ctx, "SELECT 1 FROM calls WHERE id = ?", c.ID)
	}
	c.Version++
	c.UpdatedAt = now
	return nil
}

// casMiss tells a lost compare-and-swap (ErrConflict) from a missing row.
func (s *sqlStore) casMiss(ctx context.Context, q string, args ...any) error {
	var one int
	err := s.be.writer().queryRow(ctx, q, args...).Scan(&one)
	switch {
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("session: %w", err)
	}
	return ErrConflict
}

func (s *sqlStore) SweepCalls(ctx context.Context, idleBefore time.Time) (int, error) {
	var n int64
	err := s.be.tx(ctx, func(x execer) error {
		var err error
		cut := micros(idleBefore)
		if n, err = x.exec(ctx, "DELETE FROM calls WHERE updated_at < ?", cut); err != nil {
			return err
		}
		// Tokens outlive their call only until the call itself would have
		// been swept (a token can be registered before the call arrives).
		_, err = x.exec(ctx,
			"DELETE FROM call_tokens WHERE updated_at < ? AND NOT EXISTS (SELECT 1 FROM calls WHERE calls.id = call_tokens.call_id)", cut)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("session: sweep calls: %w", err)
	}
	return int(n), nil
}

// ---- tokens ----

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

// ---- records ----

func (s *sqlStore) PutRecord(ctx context.Context, r *Record) error {
	if err := s.putRecord(ctx, s.be.writer(), r); err != nil {
		return err
	}
	r.Version = 1
	return nil
}

func (s *sqlStore) PutRecordAudit(ctx context.Context, r *Record, e *AuditEvent) error {
	if e == nil || e.Type == "" {
		return errors.New("session: audit event type is empty")
	}
	var out AuditEvent
	err := s.be.tx(ctx, func(x execer) error {
		if err := s.putRecord(ctx, x, r); err != nil {
			return err
		}
		var err error
		out, err = s.appendAudit(ctx, x, *e)
		if err != nil {
			return fmt.Errorf("session: append audit: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.Version, *e = 1, out
	return nil
}

const qPutRecord = `INSERT INTO records (kind, key, version, data_sealed, expires_at) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (kind, key) DO UPDATE SET version = 1, data_sealed = excluded.data_sealed, expires_at = excluded.expires_at
WHERE records.expires_at <> 0 AND records.expires_at <= ?`

func (s *sqlStore) putRecord(ctx context.Context, x execer, r *Record) error {
	if r == nil || r.Kind == "" || r.Key == "" {
		return errors.New("session: record kind and key are required")
	}
	sealed, err := s.sealer.Seal(r.Data, tblRecords, colData, recordRowID(r.Kind, r.Key))
	if err != nil {
		return err
	}
	_, nowUS := s.nowMicros()
	// An expired record reads as absent, so it may be replaced.
	n, err := x.exec(ctx, qPutRecord, r.Kind, r.Key, sealed, micros(r.ExpiresAt), nowUS)
	if err != nil {
		return fmt.Errorf("session: put record: %w", err)
	}
	if n == 0 {
		return ErrExists
	}
	return nil
}

func (s *sqlStore) GetRecord(ctx context.Context, kind, key string) (*Record, error) {
	_, nowUS := s.nowMicros()
	var (
		r       = Record{Kind: kind, Key: key}
		sealed  []byte
		expires int64
	)
	err := s.be.reader().queryRow(ctx,
		"SELECT version, data_sealed, expires_at FROM records WHERE kind = ? AND key = ? AND (expires_at = 0 OR expires_at > ?)",
		kind, key, nowUS).Scan(&r.Version, &sealed, &expires)
	if err != nil {
		return nil, wrapRead("get record", err)
	}
	if r.Data, err = s.sealer.Open(sealed, tblRecords, colData, recordRowID(kind, key)); err != nil {
		return nil, err
	}
	r.ExpiresAt = fromMicros(expires)
	return &r, nil
}

func (s *sqlStore) UpdateRecord(ctx context.Context, r *Record) error {
	if r == nil || r.Kind == "" || r.Key == "" {
		return errors.New("session: record kind and key are required")
	}
	sealed, err := s.sealer.Seal(r.Data, tblRecords, colData, recordRowID(r.Kind, r.Key))
	if err != nil {
		return err
	}
	_, nowUS := s.nowMicros()
	n, err := s.be.writer().exec(ctx,
		`UPDATE records SET data_sealed = ?, expires_at = ?, version = version + 1
WHERE kind = ? AND key = ? AND version = ? AND (expires_at = 0 OR expires_at > ?)`,
		sealed, micros(r.ExpiresAt), r.Kind, r.Key, r.Version, nowUS)
	if err != nil {
		return fmt.Errorf("session: update record: %w", err)
	}
	if n == 0 {
		return s.casMiss(ctx, "SELECT 1 FROM records WHERE kind = ? AND key = ? AND (expires_at = 0 OR expires_at > ?)", r.Kind, r.Key, nowUS)
	}
	r.Version++
	return nil
}

func (s *sqlStore) ListRecords(ctx context.Context, kind string) ([]Record, error) {
	_, nowUS := s.nowMicros()
	rows, err := s.be.reader().query(ctx,
		"SELECT key, version, data_sealed, expires_at FROM records WHERE kind = ? AND (expires_at = 0 OR expires_at > ?) ORDER BY key",
		kind, nowUS)
	if err != nil {
		return nil, fmt.Errorf("session: list records: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var (
			r       = Record{Kind: kind}
			sealed  []byte
			expires int64
		)
		if err := rows.Scan(&r.Key, &r.Version, &sealed, &expires); err != nil {
			return nil, fmt.Errorf("session: list records: %w", err)
		}
		if r.Data, err = s.sealer.Open(sealed, tblRecords, colData, recordRowID(kind, r.Key)); err != nil {
			return nil, err
		}
		r.ExpiresAt = fromMicros(expires)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session: list records: %w", err)
	}
	return out, nil
}

func (s *sqlStore) DeleteRecord(ctx context.Context, kind, key string) error {
	if _, err := s.be.writer().exec(ctx, "DELETE FROM records WHERE kind = ? AND key = ?", kind, key); err != nil {
		return fmt.Errorf("session: delete record: %w", err)
	}
	return nil
}

func (s *sqlStore) SweepRecords(ctx context.Context, now time.Time) (int, error) {
	n, err := s.be.writer().exec(ctx, "DELETE FROM records WHERE expires_at <> 0 AND expires_at <= ?", micros(now))
	if err != nil {
		return 0, fmt.Errorf("session: sweep records: %w", err)
	}
	j, err := s.sweepJTIs(ctx, now)
	return int(n) + j, err
}

// ---- event counters ----

func (s *sqlStore) AddEvent(ctx context.Context, key string, at time.Time) error {
	if key == "" {
		return errors.New("session: event key is empty")
	}
	if at.IsZero() {
		at = s.now()
	}
	if _, err := s.be.writer().exec(ctx, qAddEvent, key, micros(at)); err != nil {
		return fmt.Errorf("session: add event: %w", err)
	}
	return nil
}

const (
	qAddEvent    = "INSERT INTO events (key, at) VALUES (?, ?)"
	qCountEvents = "SELECT COUNT(*) FROM events WHERE key = ? AND at >= ?"
)

func (s *sqlStore) CountEvents(ctx context.Context, key string, since time.Time) (int, error) {
	var n int64
	if err := s.be.reader().queryRow(ctx, qCountEvents, key, micros(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("session: count events: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) AddEvents(ctx context.Context, at time.Time, evs []EventWindow) ([]int, error) {
	for _, ev := range evs {
		if ev.Key == "" {
			return nil, errors.New("session: event key is empty")
		}
	}
	if at.IsZero() {
		at = s.now()
	}
	counts := make([]int, len(evs))
	err := s.be.tx(ctx, func(x execer) error {
		for i, ev := range evs {
			if _, err := x.exec(ctx, qAddEvent, ev.Key, micros(at)); err != nil {
				return err
			}
			var n int64
			if err := x.queryRow(ctx, qCountEvents, ev.Key, micros(ev.Since)).Scan(&n); err != nil {
				return err
			}
			counts[i] = int(n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("session: add events: %w", err)
	}
	return counts, nil
}

// CountDistinct counts the distinct keys starting with keyPrefix that have
// an event since the given time (e.g. how many identities one number tried).
func (s *sqlStore) CountDistinct(ctx context.Context, keyPrefix string, since time.Time) (int, error) {
	var n int64
	// substr, not LIKE: SQLite's LIKE folds ASCII case and both treat % and _ specially.
	err := s.be.reader().queryRow(ctx,
		"SELECT COUNT(DISTINCT key) FROM events WHERE at >= ? AND substr(key, 1, ?) = ?",
		micros(since), utf8.RuneCountInString(keyPrefix), keyPrefix).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("session: count distinct: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) SweepEvents(ctx context.Context, before time.Time) (int, error) {
	n, err := s.be.writer().exec(ctx, "DELETE FROM events WHERE at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("session: sweep events: %w", err)
	}
	return int(n), nil
}

// ---- patients ----

// patientProfile is the sealed part of a patient row: the name and number
// on file are PII, needed only inside the AS.
type patientProfile struct {
	Name     string `json:"name"`
	Phone    string `json:"phone"`
	LineType string `json:"line_type"`
}

const patientChunk = 200

func (s *sqlStore) UpsertPatients(ctx context.Context, ps []Patient) error {
	// The last entry for an id wins (PostgreSQL refuses to upsert one row
	// twice in a statement).
	last := make(map[string]int, len(ps))
	for i, p := range ps {
		if p.ID == "" {
			return errors.New("session: patient id is empty")
		}
		last[p.ID] = i
	}
	if len(last) != len(ps) {
		uniq := make([]Patient, 0, len(last))
		for i, p := range ps {
			if last[p.ID] == i {
				uniq = append(uniq, p)
			}
		}
		ps = uniq
	}
	err := s.be.tx(ctx, func(x execer) error {
		for start := 0; start < len(ps); start += patientChunk {
			chunk := ps[start:min(start+patientChunk, len(ps))]
			var (
				rows, ids []string
				args      []any
				keyRows   []string
				keyArgs   []any
			)
			for _, p := range chunk {
				plain, err := json.Marshal(patientProfile{Name: p.Name, Phone: p.Phone, LineType: p.LineType})
				if err != nil {
					return err
				}
				sealed, err := s.sealer.Seal(plain, tblPatients, colProfile, p.ID)
				if err != nil {
					return err
				}
				rows = append(rows, "(?, ?, ?, ?)")
				ids = append(ids, "?")
				args = append(args, p.ID, sealed, nonNil(p.DOBHash), nonNil(p.SSN4Hash))
				for _, k := range dedup(p.NameKeys) {
					keyRows = append(keyRows, "(?, ?)")
					keyArgs = append(keyArgs, k, p.ID)
				}
			}
			if _, err := x.exec(ctx, "INSERT INTO patients (id, profile_sealed, dob_hmac, ssn4_hmac) VALUES "+strings.Join(rows, ", ")+
				" ON CONFLICT (id) DO UPDATE SET profile_sealed = excluded.profile_sealed, dob_hmac = excluded.dob_hmac, ssn4_hmac = excluded.ssn4_hmac",
				args...); err != nil {
				return err
			}
			idArgs := make([]any, len(chunk))
			for i, p := range chunk {
				idArgs[i] = p.ID
			}
			if _, err := x.exec(ctx, "DELETE FROM patient_name_keys WHERE patient_id IN ("+strings.Join(ids, ", ")+")", idArgs...); err != nil {
				return err
			}
			if len(keyRows) > 0 {
				if _, err := x.exec(ctx, "INSERT INTO patient_name_keys (name_key, patient_id) VALUES "+strings.Join(keyRows, ", ")+
					" ON CONFLICT DO NOTHING", keyArgs...); err != nil {
					return err
				}
			}
		}
		_, err := x.exec(ctx, "UPDATE patients_rev SET rev = rev + 1 WHERE id = 1")
		return err
	})
	if err != nil {
		return fmt.Errorf("session: upsert patients: %w", err)
	}
	return nil
}

const maxNameKeys = 500

func (s *sqlStore) FindPatients(ctx context.Context, nameKeys []string) ([]Patient, error) {
	keys := dedup(nameKeys)
	if len(keys) == 0 {
		return nil, nil
	}
	if len(keys) > maxNameKeys {
		return nil, fmt.Errorf("session: find patients: %d name keys (max %d)", len(keys), maxNameKeys)
	}
	rev, err := s.patientsRev(ctx)
	if err != nil {
		return nil, err
	}
	ck := cacheKey(keys)
	if ps, ok := s.patients.get(rev, ck); ok {
		return ps, nil
	}
	ps, err := s.queryPatients(ctx,
		"WHERE id IN (SELECT patient_id FROM patient_name_keys WHERE name_key IN ("+placeholders(len(keys))+"))",
		toAny(keys)...)
	if err != nil {
		return nil, err
	}
	s.patients.put(rev, ck, ps)
	return ps, nil
}

func (s *sqlStore) GetPatient(ctx context.Context, id string) (*Patient, error) {
	ps, err := s.queryPatients(ctx, "WHERE id = ?", id)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, ErrNotFound
	}
	return &ps[0], nil
}

func (s *sqlStore) queryPatients(ctx context.Context, where string, args ...any) ([]Patient, error) {
	r := s.be.reader()
	rows, err := r.query(ctx, "SELECT id, profile_sealed, dob_hmac, ssn4_hmac FROM patients "+where+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("session: find patients: %w", err)
	}
	var ps []Patient
	for rows.Next() {
		var (
			p      Patient
			sealed []byte
		)
		if err := rows.Scan(&p.ID, &sealed, &p.DOBHash, &p.SSN4Hash); err != nil {
			rows.Close()
			return nil, fmt.Errorf("session: find patients: %w", err)
		}
		plain, err := s.sealer.Open(sealed, tblPatients, colProfile, p.ID)
		if err != nil {
			rows.Close()
			return nil, err
		}
		var prof patientProfile
		if err := json.Unmarshal(plain, &prof); err != nil {
			rows.Close()
			return nil, errors.New("session: stored patient profile is malformed")
		}
		p.Name, p.Phone, p.LineType = prof.Name, prof.Phone, prof.LineType
		ps = append(ps, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session: find patients: %w", err)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	idx := make(map[string]int, len(ps))
	ids := make([]any, len(ps))
	for i, p := range ps {
		idx[p.ID] = i
		ids[i] = p.ID
	}
	krows, err := r.query(ctx, "SELECT patient_id, name_key FROM patient_name_keys WHERE patient_id IN ("+placeholders(len(ids))+") ORDER BY patient_id, name_key", ids...)
	if err != nil {
		return nil, fmt.Errorf("session: find patients: %w", err)
	}
	defer krows.Close()
	for krows.Next() {
		var id, k string
		if err := krows.Scan(&id, &k); err != nil {
			return nil, fmt.Errorf("session: find patients: %w", err)
		}
		if i, ok := idx[id]; ok {
			ps[i].NameKeys = append(ps[i].NameKeys, k)
		}
	}
	if err := krows.Err(); err != nil {
		return nil, fmt.Errorf("session: find patients: %w", err)
	}
	return ps, nil
}

func (s *sqlStore) CountPatients(ctx context.Context) (int, error) {
	var n int64
	if err := s.be.reader().queryRow(ctx, "SELECT COUNT(*) FROM patients").Scan(&n); err != nil {
		return 0, fmt.Errorf("session: count patients: %w", err)
	}
	return int(n), nil
}

// ---- MCP identity pins ----

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

// ---- misc ----

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.be.ping(ctx); err != nil {
		return fmt.Errorf("session: ping: %w", err)
	}
	return nil
}

func (s *sqlStore) Close() error { return s.be.close() }

func wrapRead(op string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	return fmt.Errorf("session: %s: %w", op, err)
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func dedup(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
