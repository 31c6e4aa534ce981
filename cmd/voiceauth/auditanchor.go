package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/voiceauth/voiceauth/internal/app"
	"github.com/voiceauth/voiceauth/session"
)

// auditAnchor prints a signed checkpoint of the audit chain's head on
// stdout (one line, a compact JWS) for the operator to keep elsewhere.
func auditAnchor(ctx context.Context, st session.Store, sec *app.Secrets, stdout, stderr io.Writer) int {
	jws, cp, err := app.AnchorAudit(ctx, st, sec, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth audit anchor:", err)
		return 1
	}
	fmt.Fprintln(stdout, jws)
	fmt.Fprintf(stderr, "anchored record %d (head %s) at %s; keep this checkpoint outside this machine and check it with `voiceauth audit verify --checkpoint FILE`\n",
		cp.Seq, cp.Head, cp.Time)
	return 0
}

// auditVerifyCheckpoint checks the checkpoint's signature, then the chain
// and that it still holds the anchored record unchanged.
func auditVerifyCheckpoint(ctx context.Context, st session.Store, sec *app.Secrets, path string, stdout, stderr io.Writer) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth audit verify:", err)
		return 1
	}
	cp, anchor, err := app.ParseAuditCheckpoint(string(b), sec)
	if err != nil {
		fmt.Fprintf(stdout, "checkpoint %s REFUSED: %v\n", path, err)
		return 1
	}
	an, ok := st.(session.AuditAnchorer)
	if !ok {
		fmt.Fprintln(stderr, "voiceauth audit verify: this store cannot check checkpoints")
		return 1
	}
	rep, err := an.VerifyAuditAnchor(ctx, anchor)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth audit verify:", err)
		return 1
	}
	fmt.Fprintf(stdout, "checkpoint signature valid: record %d anchored at %s\n", cp.Seq, cp.Time)
	if rep.Problem != "" {
		fmt.Fprintf(stdout, "audit trail BROKEN at record %d: %s (%d records, %d purge checkpoints)\n", rep.FirstBad, rep.Problem, rep.Records, rep.Checkpoints)
		return 1
	}
	fmt.Fprintf(stdout, "audit trail intact and holds the anchored record: %d records, %d purge checkpoints\n", rep.Records, rep.Checkpoints)
	return 0
}
