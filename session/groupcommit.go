package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
)

// Group commit for SQLite. Every write (a transaction or a single
// statement) is a job. A writer that finds no commit in progress runs its
// own job at once, as a plain write on the single writer connection. Writers
// that arrive while a commit is in progress queue up; when it ends, the
// first of them becomes the leader and runs the whole queue in one
// transaction, each job inside its own savepoint, committing once: under
// load, concurrent requests share the commit (the WAL append of the pages
// they touched) instead of each paying for one. Jobs run in arrival order,
// which the pool's random hand-off of its only connection did not promise,
// and no goroutine hand-off is added when there is no contention.
//
// A job's error rolls back only its savepoint. If the transaction itself
// is lost (SQLite rolls the whole transaction back on some errors, a full
// disk or an I/O error among them) or the commit fails, every job of the
// batch runs again alone, so one job's failure never becomes another's. A
// caller returns only after the commit that holds its job, as before.

type writeJob struct {
	ctx  context.Context
	fn   func(execer) error
	stmt string // the job is this one statement (no transaction of its own needed)
	done chan jobResult
}

type jobResult struct {
	err    error
	leader bool // not a result: the job's goroutine is to run the next batch
}

// maxBatch bounds how many jobs share one commit (and so how long the last
// of them waits for the others to run).
const maxBatch = 64

var errStoreClosed = errors.New("session: store is closed")

// groupCommit is the queue of writers; its zero value is ready to use.
type groupCommit struct {
	mu     sync.Mutex
	idle   sync.Cond // signaled when busy turns false
	busy   bool      // a leader is running a batch
	closed bool
	queue  []*writeJob

	batches, jobs int64 // so far, for tests and a glance in a debugger
}

// submit runs fn as a job and returns its result once committed.
func (b *sqliteBackend) submit(ctx context.Context, stmt string, fn func(execer) error) error {
	j := &writeJob{ctx: ctx, fn: fn, stmt: stmt, done: make(chan jobResult, 1)}
	g := &b.gc
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errStoreClosed
	}
	g.queue = append(g.queue, j)
	if g.busy {
		g.mu.Unlock()
		if r := <-j.done; !r.leader {
			return r.err
		}
	} else {
		g.busy = true
		g.mu.Unlock()
	}
	b.runAsLeader()
	return (<-j.done).err
}

// runAsLeader runs one batch from the head of the queue, then hands
// leadership to the next waiting job or ends the busy period.
func (b *sqliteBackend) runAsLeader() {
	g := &b.gc
	g.mu.Lock()
	n := min(len(g.queue), maxBatch)
	batch := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	g.batches++
	g.jobs += int64(n)
	g.mu.Unlock()

	b.commit(batch)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- jobResult{leader: true}
	} else {
		g.busy = false
		if g.idle.L != nil {
			g.idle.Broadcast()
		}
	}
	g.mu.Unlock()
}

// closeWrites refuses new jobs and waits for the queued ones to commit.
func (b *sqliteBackend) closeWrites() {
	g := &b.gc
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.idle.L = &g.mu
	for g.busy {
		g.idle.Wait()
	}
}

// commit runs one batch and answers each of its jobs.
func (b *sqliteBackend) commit(batch []*writeJob) {
	if len(batch) == 1 {
		batch[0].done <- jobResult{err: b.solo(batch[0])}
		return
	}
	for _, j := range batch {
		if j.stmt != "" {
			b.wStmts.get(j.ctx, j.stmt) // one statement: safe to prepare, and jobs do not
		}
	}
	errs, ok := b.together(batch)
	for i, j := range batch {
		if !ok {
			errs[i] = b.solo(j)
		}
		j.done <- jobResult{err: errs[i]}
	}
}

// solo runs one job by itself: a single statement as is (SQLite makes it
// its own transaction), a function in a transaction of its own.
func (b *sqliteBackend) solo(j *writeJob) error {
	if err := j.ctx.Err(); err != nil {
		return err
	}
	if j.stmt != "" {
		return runJob(j, sqlExec{b.w, b.wStmts})
	}
	x := sqlExec{jobDB{b.w}, b.wStmts}
	if err := b.control(qBegin); err != nil {
		return fmt.Errorf("session: begin: %w", err)
	}
	if err := runJob(j, x); err != nil {
		b.control(qRollback)
		return err
	}
	if err := b.control(qCommit); err != nil {
		b.control(qRollback) // a failed COMMIT can leave the transaction open
		return fmt.Errorf("session: commit: %w", err)
	}
	return nil
}

// together runs the batch in one transaction. ok is false when the
// transaction was lost or did not commit: nothing of it was applied.
func (b *sqliteBackend) together(batch []*writeJob) (errs []error, ok bool) {
	errs = make([]error, len(batch))
	if err := b.control(qBegin); err != nil {
		return errs, false
	}
	abort := func() ([]error, bool) {
		b.control(qRollback)
		return errs, false
	}
	x := sqlExec{jobDB{b.w}, b.wStmts}
	for i, j := range batch {
		if errs[i] = j.ctx.Err(); errs[i] != nil {
			continue
		}
		if err := b.control(qSavepoint); err != nil {
			return abort()
		}
		if errs[i] = runJob(j, x); errs[i] != nil {
			// Fails with "no such savepoint" if SQLite already rolled the
			// whole transaction back.
			if err := b.control(qRollbackTo); err != nil {
				return abort()
			}
		}
		if err := b.control(qRelease); err != nil {
			return abort()
		}
	}
	if err := b.control(qCommit); err != nil {
		return abort()
	}
	return errs, true
}

// The writer's transaction control, as prepared statements on its one
// connection. Transactions are opened and closed with these rather than
// database/sql's Tx: the writer pool has exactly one connection and only
// the group-commit leader uses it, so every statement between BEGIN and
// COMMIT runs on that connection, and the jobs use the pool's prepared
// statements as they are (a Tx rebinds each one per use: Tx.StmtContext).
// BeginTx and Tx.Commit were 2.4 % and 8.9 % of the webhook benchmark's
// samples. (BEGIN IMMEDIATE: the write lock is taken at once, as _txlock
// did for BeginTx.)
const (
	qBegin      = "BEGIN IMMEDIATE"
	qCommit     = "COMMIT"
	qRollback   = "ROLLBACK"
	qSavepoint  = "SAVEPOINT job"
	qRollbackTo = "ROLLBACK TO job"
	qRelease    = "RELEASE job"
)

var controlStmts = []string{qBegin, qCommit, qRollback, qSavepoint, qRollbackTo, qRelease}

// jobDB is the writer pool as a write job sees it: a job's statements use
// the cached prepared statements but never prepare one (a job's query may
// hold several statements, a migration for one, and a prepared statement
// runs only the first), as inside a database/sql Tx before.
type jobDB struct{ *sql.DB }

// control runs one of the statements above on the writer.
func (b *sqliteBackend) control(q string) error {
	_, err := sqlExec{b.w, b.wStmts}.exec(context.Background(), q)
	return err
}

// runJob runs fn, turning a panic into that job's error: the committer
// serves every writer and must outlive any one of them.
func runJob(j *writeJob, x execer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("session: write panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return j.fn(x)
}

// groupWriter is the SQLite backend's writer(): each statement is a job.
type groupWriter struct{ b *sqliteBackend }

func (w groupWriter) exec(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := w.b.submit(ctx, q, func(x execer) error {
		var err error
		n, err = x.exec(ctx, q, args...)
		return err
	})
	return n, err
}

// query is not offered on the writer: rows outlive the job that read them.
// Reads that must see the writer's view run inside tx.
func (w groupWriter) query(context.Context, string, ...any) (rowIter, error) {
	return nil, errors.New("session: query on the SQLite writer; use tx")
}

func (w groupWriter) queryRow(ctx context.Context, q string, args ...any) rowScanner {
	return groupRow{w, ctx, q, args}
}

// groupRow runs its query when scanned, so the scan happens inside the job.
type groupRow struct {
	w    groupWriter
	ctx  context.Context
	q    string
	args []any
}

func (r groupRow) Scan(dest ...any) error {
	return r.w.b.submit(r.ctx, r.q, func(x execer) error {
		return x.queryRow(r.ctx, r.q, r.args...).Scan(dest...)
	})
}
