package app

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/session"
)

// TestRegistryThroughObservedStore: the client Registry takes the narrow
// authserver.Store and asserts session.ClientStore on it; behind the
// metrics wrapper every instance uses, the registry still works (the
// wrapper passes the optional interface through) and the operator's change
// is on the audit trail.
func TestRegistryThroughObservedStore(t *testing.T) {
	ctx := context.Background()
	st := newObservedStore(openTestStore(t), newOpsMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	r := &authserver.Registry{Store: st}
	secret, err := r.Add(ctx, "host-clinic", authserver.KindHost, authserver.AuthSecret, nil)
	if err != nil || secret == "" {
		t.Fatalf("Add through the observed store: secret %q, err %v", secret, err)
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "host-clinic" || list[0].Kind != authserver.KindHost {
		t.Fatalf("List = %+v, %v; want the one host client", list, err)
	}
	evs, err := st.ListAudit(ctx, session.AuditFilter{Type: "client.added"})
	if err != nil || len(evs) != 1 || evs[0].Detail["client_id"] != "host-clinic" {
		t.Fatalf("audit after Add = %+v, %v; want one client.added for host-clinic", evs, err)
	}
}
