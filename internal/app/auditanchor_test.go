package app_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/session"
)

// anchorFixture is a real SQLite store with a few audit records, the
// secrets that key it, and a checkpoint of its head.
func anchorFixture(t testing.TB) (*app.Secrets, session.Store, string, app.AuditCheckpoint) {
	t.Helper()
	dir := t.TempDir()
	sec, _, err := app.LoadSecrets(filepath.Join(dir, "secrets.json"), true)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := app.OpenStore(context.Background(), app.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for range 3 {
		if err := st.AppendAudit(context.Background(), &session.AuditEvent{Type: "kba.failed"}); err != nil {
			t.Fatal(err)
		}
	}
	jws, cp, err := app.AnchorAudit(context.Background(), st, sec, time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return sec, st, jws, cp
}

func TestAuditCheckpointRoundTrip(t *testing.T) {
	sec, st, jws, cp := anchorFixture(t)
	if cp.Seq != 3 || cp.Type != app.AuditCheckpointType || cp.Time != "2026-12-06T12:00:00Z" || len(cp.Head) != 72 {
		t.Fatalf("checkpoint = %+v", cp)
	}
	got, anchor, err := app.ParseAuditCheckpoint(jws+"\n", sec)
	if err != nil || got != cp || anchor.Seq != 3 {
		t.Fatalf("ParseAuditCheckpoint = %+v, %+v, %v", got, anchor, err)
	}
	rep, err := st.(session.AuditAnchorer).VerifyAuditAnchor(context.Background(), anchor)
	if err != nil || rep.Problem != "" {
		t.Fatalf("VerifyAuditAnchor = %+v, %v", rep, err)
	}
	// Another instance's secrets do not verify it; nor does a JWS of
	// another type signed with the right key.
	other, _, err := app.LoadSecrets(filepath.Join(t.TempDir(), "s.json"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := app.ParseAuditCheckpoint(jws, other); err == nil {
		t.Fatal("a checkpoint verified under another anchor key")
	}
	parts := strings.Split(jws, ".")
	for _, bad := range []string{"", "x", parts[0] + "." + parts[1] + ".", parts[0] + ".." + parts[2], jws + "." + parts[2]} {
		if _, _, err := app.ParseAuditCheckpoint(bad, sec); err == nil {
			t.Errorf("ParseAuditCheckpoint(%q) accepted", bad)
		}
	}
	// An empty trail is not anchored.
	dir := t.TempDir()
	if _, _, err := app.LoadSecrets(filepath.Join(dir, "secrets.json"), true); err != nil {
		t.Fatal(err)
	}
	empty, sec2, err := app.OpenStore(context.Background(), app.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if _, _, err := app.AnchorAudit(context.Background(), empty, sec2, time.Now()); err == nil {
		t.Fatal("an empty trail was anchored")
	}
}

// FuzzParseAuditCheckpoint: whatever the bytes (a mutated checkpoint
// included), parsing never panics, and anything accepted says exactly what
// the signed checkpoint says.
func FuzzParseAuditCheckpoint(f *testing.F) {
	sec, _, jws, cp := anchorFixture(f)
	f.Add(jws)
	f.Add("")
	f.Add("a.b.c")
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Fuzz(func(t *testing.T, text string) {
		got, anchor, err := app.ParseAuditCheckpoint(text, sec)
		if err != nil {
			return
		}
		if got != cp || anchor.Seq != cp.Seq {
			t.Fatalf("accepted %q as %+v, signed was %+v", text, got, cp)
		}
	})
}
