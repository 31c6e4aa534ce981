// The patient directory on either backend: keyed lookup columns and a
// sealed profile, with a per-revision answer cache.

package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

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
