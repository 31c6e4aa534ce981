package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

const pgEnv = "VOICEAUTH_TEST_POSTGRES"

// pgTestDSN creates a schema of its own for one test (dropped at cleanup)
// and returns a DSN whose search_path points at it, so runs never collide.
func pgTestDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(pgEnv)
	if base == "" {
		t.Skip(pgEnv + " not set: PostgreSQL store tests skipped")
	}
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect %s: %v", pgEnv, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openPostgresTest(t *testing.T) Store {
	t.Helper()
	st, err := Open(context.Background(), pgTestDSN(t), Options{Sealer: testSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestPostgresStore(t *testing.T) {
	runStoreSuite(t, openPostgresTest)
}

// Two instances (two pools) on one database share one audit chain and one
// set of calls: the scale-out shape.
func TestPostgresTwoInstances(t *testing.T) {
	ctx := context.Background()
	dsn := pgTestDSN(t)
	a, err := Open(ctx, dsn, Options{Sealer: testSealer(t)})
	must(t, err)
	defer a.Close()
	b, err := Open(ctx, dsn, Options{Sealer: testSealer(t)}) // migrations already applied
	must(t, err)
	defer b.Close()
	must(t, a.CreateCall(ctx, &Call{ID: "CA1", State: []byte("turn0")}))
	for i := range 10 {
		st := a
		if i%2 == 1 {
			st = b
		}
		c, err := st.GetCall(ctx, "CA1")
		must(t, err)
		c.State = []byte{byte('0' + i)}
		must(t, st.UpdateCall(ctx, c))
	}
	done := make(chan error, 2)
	for _, st := range []Store{a, b} {
		go func() {
			for range 50 {
				if err := st.AppendAudit(ctx, &AuditEvent{Type: "x"}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	must(t, <-done)
	must(t, <-done)
	rep, err := b.VerifyAudit(ctx)
	if err != nil || rep.Problem != "" || rep.Records != 100 {
		t.Fatalf("VerifyAudit = %+v, %v", rep, err)
	}
	c, _ := a.GetCall(ctx, "CA1")
	if c.Version != 11 {
		t.Fatalf("version = %d, want 11", c.Version)
	}
	checkDirectorySharedCache(t, a, b)
}
