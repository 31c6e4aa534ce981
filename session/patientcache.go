package session

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// patientCache remembers FindPatients answers for one directory revision.
//
// A verification reads about seven same-name candidates; through cgo that
// costs more than the rest of the request together, while the directory
// itself changes only when patients are loaded. Every lookup still reads the
// revision (one row), so a change made by any process sharing the database
// is seen by the next lookup, never later. Answers for unknown names are
// kept too: a miss must not be slower for a stranger than for a patient.
//
// The cache holds decoded profiles (name, phone, line type) and the keyed
// hashes, never a birthdate or SSN-4; it is bounded by maxCachedPatients
// and emptied when full rather than tracking recency.
type patientCache struct {
	mu      sync.Mutex
	rev     int64
	size    int // patients held, counting an empty answer as one
	answers map[string][]Patient
}

const maxCachedPatients = 1 << 16

const qPatientsRev = "SELECT rev FROM patients_rev WHERE id = 1"

func (c *patientCache) get(rev int64, key string) ([]Patient, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev != c.rev {
		return nil, false
	}
	ps, ok := c.answers[key]
	return clonePatients(ps), ok
}

// put keeps an answer read at revision rev. An answer read at an older
// revision than the cache's is dropped; a newer one empties the cache.
func (c *patientCache) put(rev int64, key string, ps []Patient) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev < c.rev {
		return
	}
	if rev > c.rev || c.answers == nil || c.size+len(ps)+1 > maxCachedPatients {
		c.rev, c.size, c.answers = rev, 0, map[string][]Patient{}
	}
	if _, ok := c.answers[key]; !ok {
		c.answers[key] = clonePatients(ps)
		c.size += len(ps) + 1
	}
}

// clonePatients copies every slice, so no caller can change a cached answer.
func clonePatients(ps []Patient) []Patient {
	if ps == nil {
		return nil
	}
	out := make([]Patient, len(ps))
	for i, p := range ps {
		p.NameKeys = slices.Clone(p.NameKeys)
		p.DOBHash = slices.Clone(p.DOBHash)
		p.SSN4Hash = slices.Clone(p.SSN4Hash)
		out[i] = p
	}
	return out
}

func (s *sqlStore) patientsRev(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.be.reader().queryRow(ctx, qPatientsRev).Scan(&rev); err != nil {
		return 0, fmt.Errorf("session: find patients: %w", err)
	}
	return rev, nil
}

// cacheKey is the deduplicated key set in a fixed order.
func cacheKey(keys []string) string {
	k := slices.Clone(keys)
	slices.Sort(k)
	return strings.Join(k, "\x00")
}
