package session

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// sealedColumn describes one column Rewrap walks.
type sealedColumn struct {
	table, column string
	keys          []string // primary-key columns, in order
	rowID         func(keys []string) string
}

var sealedColumns = []sealedColumn{
	{tblCalls, colState, []string{"id"}, func(k []string) string { return k[0] }},
	{tblTokens, colTokens, []string{"call_id"}, func(k []string) string { return k[0] }},
	{tblRecords, colData, []string{"kind", "key"}, func(k []string) string { return recordRowID(k[0], k[1]) }},
	{tblPatients, colProfile, []string{"id"}, func(k []string) string { return k[0] }},
	{tblClients, colData, []string{"id"}, func(k []string) string { return k[0] }},
}

const rewrapPage = 500

// Rewrap re-seals, page by page, every sealed value whose key version is not
// the current one. Each row is replaced only if it still holds the bytes
// that were read (compare-and-swap), so concurrent writers are never undone.
func (s *sqlStore) Rewrap(ctx context.Context) (int, error) {
	total := 0
	for _, c := range sealedColumns {
		n, err := s.rewrapColumn(ctx, c)
		total += n
		if err != nil {
			return total, fmt.Errorf("session: rewrap %s.%s: %w", c.table, c.column, err)
		}
	}
	s.log.Info("session: rewrap done", "resealed", total, "key_version", s.sealer.CurrentVersion())
	return total, nil
}

func (s *sqlStore) rewrapColumn(ctx context.Context, c sealedColumn) (int, error) {
	keyList := strings.Join(c.keys, ", ")
	sel := "SELECT " + keyList + ", " + c.column + " FROM " + c.table
	var cond []string
	for _, k := range c.keys {
		cond = append(cond, k+" = ?")
	}
	upd := "UPDATE " + c.table + " SET " + c.column + " = ? WHERE " + strings.Join(cond, " AND ") + " AND " + c.column + " = ?"
	after := "(" + keyList + ") > (" + placeholders(len(c.keys)) + ")"
	var last []string
	n := 0
	for {
		q, args := sel, []any{}
		if last != nil {
			q += " WHERE " + after
			args = toAny(last)
		}
		q += " ORDER BY " + keyList + " LIMIT " + fmt.Sprint(rewrapPage)
		type row struct {
			keys   []string
			sealed []byte
		}
		var page []row
		rows, err := s.be.reader().query(ctx, q, args...)
		if err != nil {
			return n, err
		}
		for rows.Next() {
			keys := make([]string, len(c.keys))
			dest := make([]any, 0, len(keys)+1)
			for i := range keys {
				dest = append(dest, &keys[i])
			}
			var sealed []byte
			dest = append(dest, &sealed)
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return n, err
			}
			page = append(page, row{keys, sealed})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, err
		}
		for _, r := range page {
			v, ok := SealedVersion(r.sealed)
			if ok && v == s.sealer.CurrentVersion() {
				continue
			}
			id := c.rowID(r.keys)
			plain, err := s.sealer.Open(r.sealed, c.table, c.column, id)
			if err != nil {
				return n, err
			}
			fresh, err := s.sealer.Seal(plain, c.table, c.column, id)
			clear(plain)
			if err != nil {
				return n, err
			}
			if bytes.Equal(fresh, r.sealed) {
				continue
			}
			args := append([]any{fresh}, toAny(r.keys)...)
			args = append(args, r.sealed)
			m, err := s.be.writer().exec(ctx, upd, args...)
			if err != nil {
				return n, err
			}
			n += int(m)
		}
		if len(page) < rewrapPage {
			return n, nil
		}
		last = page[len(page)-1].keys
	}
}
