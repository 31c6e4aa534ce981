package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
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
