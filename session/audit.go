package session

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// AuditCheckpoint is the Type of the record PurgeAudit appends. Its Detail
// names the last purged record (purged_through_seq, purged_through_hash),
// which is what lets VerifyAudit tell a purge from a deleted prefix.
const AuditCheckpoint = "audit.checkpoint"

// auditHash is SHA-256(prev_hash || JCS(record)). JCS (RFC 8785) makes the
// encoding canonical, so any reader can recompute it.
func auditHash(prev []byte, e *AuditEvent) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(appendAuditJCS(make([]byte, 0, 512), e))
	return h.Sum(nil)
}

// appendAuditJCS appends the JCS form of every field of e but the hashes,
// directly: marshaling to JSON and canonicalizing that again cost a tenth
// of a verification's allocations. FuzzAuditJCS holds it equal to
// jcs.Transform of the record marshaled by encoding/json.
func appendAuditJCS(b []byte, e *AuditEvent) []byte {
	str := func(b []byte, k, v string) []byte {
		b = appendJCSString(append(b, ','), k)
		return appendJCSString(append(b, ':'), v)
	}
	// Members in JCS order: the keys are ASCII, so byte order is UTF-16 order.
	b = appendJCSString(append(b, '{'), "actor")
	b = appendJCSString(append(b, ':'), e.Actor)
	b = str(b, "call_ref", e.CallRef)
	b = append(b, `,"detail":{`...)
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareUTF16)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJCSString(b, k)
		b = appendJCSString(append(b, ':'), e.Detail[k])
	}
	b = append(b, '}')
	b = str(b, "number", e.Number)
	b = str(b, "outcome", e.Outcome)
	b = strconv.AppendInt(append(b, `,"seq":`...), e.Seq, 10)
	b = str(b, "subject", e.Subject)
	b = str(b, "time", e.Time.UTC().Format(time.RFC3339Nano))
	b = str(b, "type", e.Type)
	return append(b, '}')
}

// appendJCSString writes s as JSON.stringify does (RFC 8785 §3.2.2.2):
// only '"', '\' and control characters are escaped; invalid UTF-8 becomes
// U+FFFD, as encoding/json would have made it.
func appendJCSString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s { // yields U+FFFD for each invalid byte
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			switch r {
			case '\b':
				b = append(b, `\b`...)
			case '\t':
				b = append(b, `\t`...)
			case '\n':
				b = append(b, `\n`...)
			case '\f':
				b = append(b, `\f`...)
			case '\r':
				b = append(b, `\r`...)
			default:
				const hex = "0123456789abcdef"
				b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
			}
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// compareUTF16 orders strings by their UTF-16 code units, as JCS sorts keys.
func compareUTF16(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

func (s *sqlStore) AppendAudit(ctx context.Context, e *AuditEvent) error {
	if e == nil || e.Type == "" {
		return errors.New("session: audit event type is empty")
	}
	var out AuditEvent
	err := s.be.tx(ctx, func(x execer) error {
		var err error
		out, err = s.appendAudit(ctx, x, *e)
		return err
	})
	if err != nil {
		return fmt.Errorf("session: append audit: %w", err)
	}
	*e = out
	return nil
}

// appendAudit chains e onto the head inside the caller's transaction. The
// head row is read with a lock (FOR UPDATE on PostgreSQL; SQLite's write
// transaction is exclusive), so concurrent appenders queue up. A head left
// by an unkeyed (earlier) chain gets the AuditKeyed record first.
func (s *sqlStore) appendAudit(ctx context.Context, x execer, e AuditEvent) (AuditEvent, error) {
	headSeq, headHash, err := s.keyedHead(ctx, x)
	if err != nil {
		return e, err
	}
	return s.appendChained(ctx, x, headSeq, headHash, e)
}

// keyedHead reads and locks the head; if it is an unkeyed record (a chain
// written by an earlier version), it appends the AuditKeyed record first
// and returns that as the head.
func (s *sqlStore) keyedHead(ctx context.Context, x execer) (int64, []byte, error) {
	var (
		headSeq  int64
		headHash []byte
	)
	if err := x.queryRow(ctx, qAuditHead+s.be.lockRow()).Scan(&headSeq, &headHash); err != nil {
		return 0, nil, err
	}
	if _, legacy, _ := auditValueVersion(headHash); headSeq == 0 || !legacy {
		return headSeq, headHash, nil
	}
	m, err := s.appendChained(ctx, x, headSeq, headHash, AuditEvent{
		Type: AuditKeyed, Actor: "session", Outcome: "keyed",
		Detail: map[string]string{
			"legacy_through_seq": strconv.FormatInt(headSeq, 10),
			"legacy_head":        hex.EncodeToString(headHash),
		},
	})
	if err != nil {
		return 0, nil, err
	}
	return m.Seq, m.Hash, nil
}

// appendChained writes e after the head (headSeq, headHash), keyed under
// the current audit key, and moves the head.
func (s *sqlStore) appendChained(ctx context.Context, x execer, headSeq int64, headHash []byte, e AuditEvent) (AuditEvent, error) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Seq = headSeq + 1
	e.PrevHash = headHash
	e.Hash = s.audit.sumCurrent(e.PrevHash, &e)
	detail := e.Detail
	if detail == nil {
		detail = map[string]string{}
	}
	dj, err := json.Marshal(detail)
	if err != nil {
		return e, err
	}
	if _, err := x.exec(ctx, qAuditInsert, e.Seq, micros(e.Time), e.Type, e.Actor, e.Subject, e.Number, e.CallRef, e.Outcome, string(dj), e.PrevHash, e.Hash); err != nil {
		return e, err
	}
	if _, err := x.exec(ctx, qAuditHeadUpdate, e.Seq, e.Hash); err != nil {
		return e, err
	}
	return e, nil
}

const (
	qAuditHead       = "SELECT seq, hash FROM audit_head WHERE id = 1"
	qAuditInsert     = "INSERT INTO audit_log (seq, at, type, actor, subject, number, call_ref, outcome, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	qAuditHeadUpdate = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"
)

const auditColumns = "seq, at, type, actor, subject, number, call_ref, outcome, detail, prev_hash, hash"

func scanAudit(rows rowIter) (AuditEvent, error) {
	var (
		e      AuditEvent
		at     int64
		detail string
	)
	if err := rows.Scan(&e.Seq, &at, &e.Type, &e.Actor, &e.Subject, &e.Number, &e.CallRef, &e.Outcome, &detail, &e.PrevHash, &e.Hash); err != nil {
		return e, err
	}
	e.Time = fromMicros(at)
	if detail != "" && detail != "{}" {
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			// Keep the record: VerifyAudit reports it as modified.
			e.Detail = map[string]string{"_undecodable": detail}
		}
	}
	return e, nil
}

func (s *sqlStore) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	if f.Subject != "" {
		where, args = append(where, "subject = ?"), append(args, f.Subject)
	}
	if f.Type != "" {
		where, args = append(where, "type = ?"), append(args, f.Type)
	}
	if !f.From.IsZero() {
		where, args = append(where, "at >= ?"), append(args, micros(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, "at < ?"), append(args, micros(f.To))
	}
	q := "SELECT " + auditColumns + " FROM audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq"
	if f.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(f.Limit)
	}
	rows, err := s.be.reader().query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("session: list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("session: list audit: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session: list audit: %w", err)
	}
	return out, nil
}

// VerifyAudit walks the whole chain in order. It detects a modified record
// (MAC mismatch), a deleted record (sequence gap / prev_hash mismatch), a
// deleted tail (the head row is ahead of the last record), a deleted prefix
// that no checkpoint accounts for, and unkeyed records that no AuditKeyed
// record vouches for (a chain rebuilt with plain hashes). A chain rebuilt
// by someone holding the audit key, or truncated together with its head
// row, needs an anchor kept elsewhere: VerifyAuditAnchor.
func (s *sqlStore) VerifyAudit(ctx context.Context) (AuditReport, error) {
	return s.verifyAudit(ctx, nil)
}

func (s *sqlStore) verifyAudit(ctx context.Context, anchor *AuditAnchor) (AuditReport, error) {
	var (
		rep       AuditReport
		headSeq   int64
		headHash  []byte
		first     *AuditEvent
		prev      *AuditEvent
		explained = map[string]bool{} // "seq:hexhash" of purged tails named by checkpoints

		keyedSeen               bool  // a keyed record came before
		firstLegacy, lastLegacy int64 // unkeyed records seen (a prefix of the chain)
		legacyVouched           int64 // legacy_through_seq of a valid AuditKeyed record
		anchored                *AuditEvent
	)
	fail := func(seq int64, problem string) {
		if rep.Problem == "" {
			rep.FirstBad, rep.Problem = seq, problem
		}
	}
	// Read head and records in one snapshot so a concurrent append does not
	// look like a deleted tail.
	err := s.be.snapshot(ctx, func(x execer) error {
		if err := x.queryRow(ctx, qAuditHead).Scan(&headSeq, &headHash); err != nil {
			return err
		}
		rows, err := x.query(ctx, "SELECT "+auditColumns+" FROM audit_log WHERE seq <= ? ORDER BY seq", headSeq)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				return err
			}
			rep.Records++
			if e.Type == AuditCheckpoint {
				rep.Checkpoints++
				explained[e.Detail["purged_through_seq"]+":"+e.Detail["purged_through_hash"]] = true
			}
			switch {
			case prev == nil:
				ec := e
				first = &ec
			case e.Seq != prev.Seq+1:
				fail(prev.Seq+1, fmt.Sprintf("records %d..%d are missing", prev.Seq+1, e.Seq-1))
			case !bytes.Equal(e.PrevHash, prev.Hash):
				fail(e.Seq, fmt.Sprintf("record %d does not chain to record %d", e.Seq, prev.Seq))
			}
			v, legacy, ok := auditValueVersion(e.Hash)
			switch {
			case !ok:
				fail(e.Seq, fmt.Sprintf("record %d has no valid chain value", e.Seq))
			case legacy:
				rep.Legacy++
				if keyedSeen {
					fail(e.Seq, fmt.Sprintf("record %d is not keyed but follows keyed records (rewritten without the audit key)", e.Seq))
				}
				if firstLegacy == 0 {
					firstLegacy = e.Seq
				}
				lastLegacy = e.Seq
				if !bytes.Equal(auditHash(e.PrevHash, &e), e.Hash) {
					fail(e.Seq, fmt.Sprintf("record %d was modified", e.Seq))
				}
			default:
				keyedSeen = true
				want, known := s.audit.sum(v, e.PrevHash, &e)
				switch {
				case !known:
					fail(e.Seq, fmt.Sprintf("record %d is keyed under audit key version %d, which this keyring does not hold", e.Seq, v))
				case !hmac.Equal(want, e.Hash):
					fail(e.Seq, fmt.Sprintf("record %d was modified", e.Seq))
				case e.Type == AuditKeyed:
					if n, err := strconv.ParseInt(e.Detail["legacy_through_seq"], 10, 64); err == nil && n > legacyVouched {
						legacyVouched = n
					}
				}
			}
			if anchor != nil && e.Seq == anchor.Seq {
				ec := e
				anchored = &ec
			}
			ec := e
			prev = &ec
		}
		return rows.Err()
	})
	if err != nil {
		return rep, fmt.Errorf("session: verify audit: %w", err)
	}
	if first != nil && first.Seq != 1 {
		if !explained[strconv.FormatInt(first.Seq-1, 10)+":"+hex.EncodeToString(first.PrevHash)] {
			fail(first.Seq, fmt.Sprintf("records before %d are missing and no checkpoint accounts for them", first.Seq))
		}
	} else if first != nil && len(first.PrevHash) != 0 {
		fail(first.Seq, "record 1 does not start the chain")
	}
	switch {
	case prev == nil && headSeq > 0:
		fail(1, fmt.Sprintf("all %d records are missing", headSeq))
	case prev != nil && prev.Seq != headSeq:
		fail(prev.Seq+1, fmt.Sprintf("records %d..%d at the end are missing", prev.Seq+1, headSeq))
	case prev != nil && !bytes.Equal(prev.Hash, headHash):
		fail(prev.Seq, fmt.Sprintf("record %d does not match the chain head", prev.Seq))
	}
	if lastLegacy > legacyVouched {
		from := max(firstLegacy, legacyVouched+1)
		fail(from, fmt.Sprintf("records %d..%d are not keyed and no keyed record vouches for them (a chain rebuilt without the audit key)", from, lastLegacy))
	}
	if anchor != nil {
		checkAnchor(anchor, anchored, first, prev, explained, fail)
	}
	return rep, nil
}

// checkAnchor compares the anchored record with the chain as read.
func checkAnchor(a *AuditAnchor, anchored, first, last *AuditEvent, explained map[string]bool, fail func(int64, string)) {
	switch {
	case last == nil || a.Seq > last.Seq:
		end := int64(0)
		if last != nil {
			end = last.Seq
		}
		fail(a.Seq, fmt.Sprintf("the anchor names record %d but the chain ends at record %d: the chain was truncated", a.Seq, end))
	case anchored != nil:
		if !bytes.Equal(anchored.Hash, a.Hash) {
			fail(a.Seq, fmt.Sprintf("record %d differs from the anchor: the chain was rebuilt", a.Seq))
		}
	case first != nil && a.Seq < first.Seq:
		// Purged since: a purge checkpoint that names exactly this record
		// still proves it; otherwise the anchor cannot be checked.
		if explained[strconv.FormatInt(a.Seq, 10)+":"+hex.EncodeToString(a.Hash)] {
			return
		}
		fail(a.Seq, fmt.Sprintf("record %d named by the anchor has been purged and no checkpoint names it: the anchor can no longer be checked (anchor more often than records are purged)", a.Seq))
	default:
		fail(a.Seq, fmt.Sprintf("record %d named by the anchor is missing", a.Seq))
	}
}

// PurgeAudit deletes the oldest records — the longest prefix of the chain
// older than before — and appends a checkpoint naming the last one purged.
// Records are only ever removed as a prefix, so the chain stays verifiable.
func (s *sqlStore) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	var purged int64
	err := s.be.tx(ctx, func(x execer) error {
		// Lock the head first: appends wait for the purge.
		var headSeq int64
		var headHash []byte
		if err := x.queryRow(ctx, qAuditHead+s.be.lockRow()).Scan(&headSeq, &headHash); err != nil {
			return err
		}
		var firstKept int64
		if err := x.queryRow(ctx, "SELECT COALESCE(MIN(seq), 0) FROM audit_log WHERE at >= ?", micros(before)).Scan(&firstKept); err != nil {
			return err
		}
		limit := firstKept - 1
		if firstKept == 0 {
			limit = headSeq
		}
		var lastSeq int64
		var lastHash []byte
		err := x.queryRow(ctx, "SELECT seq, hash FROM audit_log WHERE seq <= ? ORDER BY seq DESC LIMIT 1", limit).Scan(&lastSeq, &lastHash)
		if errors.Is(err, ErrNotFound) {
			return nil // nothing old enough
		}
		if err != nil {
			return err
		}
		if purged, err = x.exec(ctx, "DELETE FROM audit_log WHERE seq <= ?", lastSeq); err != nil {
			return err
		}
		_, err = s.appendAudit(ctx, x, AuditEvent{
			Type:    AuditCheckpoint,
			Actor:   "session",
			Outcome: "purged",
			Detail: map[string]string{
				"purged_through_seq":  strconv.FormatInt(lastSeq, 10),
				"purged_through_hash": hex.EncodeToString(lastHash),
				"purged_records":      strconv.FormatInt(purged, 10),
				"purged_before":       before.UTC().Format(time.RFC3339),
			},
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("session: purge audit: %w", err)
	}
	return int(purged), nil
}
