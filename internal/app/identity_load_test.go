package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/voiceauth/voiceauth/ivr"
)

// TestConcurrentCallsTrustGenuineServer: many calls opening their MCP
// sessions at once against the genuine embedded server (identity/get,
// identity/challenge, signed tools/list, as under load) must all establish
// its identity; none may be refused for identity. Run with -race: shared
// signature state (the verified-tools cache, pins) is exercised by every
// connection at once.
func TestConcurrentCallsTrustGenuineServer(t *testing.T) {
	st, err := Start(context.Background(), Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0",
		MCPAddr: "127.0.0.1:0", LogWriter: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	const n = 60
	sids := make([]string, n)
	for i := range sids {
		sids[i] = fmt.Sprintf("CAidload%026d", i)
		tok, err := st.MintUpstreamToken("pt-0001", 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.backend.RegisterSubjectToken(ctx, sids[i], st.HostClientID, st.HostClientSecret, tok, ""); err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, sid := range sids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			if _, err := st.backend.Call(cctx, sid, "list_appointments", nil); err != nil {
				errs <- fmt.Errorf("%s: %w", sid, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if errors.Is(err, ivr.ErrIdentity) {
			t.Errorf("genuine server refused for identity: %v", err)
		} else {
			t.Errorf("tool call failed: %v", err)
		}
	}
}
