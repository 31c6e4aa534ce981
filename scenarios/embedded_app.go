// This file wires the in-process stack (internal/app) and the patient
// generator (authserver) into the harness.

package scenarios

import (
	"context"
	"os"
	"time"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/internal/app"
)

func init() {
	startEmbedded = startApp
	generatePatients = func(n int) []SyntheticPatient {
		var out []SyntheticPatient
		for _, p := range authserver.GeneratePatients(n) {
			out = append(out, SyntheticPatient{ID: p.ID, Name: p.Name, Birthdate: p.Birthdate, SSNLast4: p.SSNLast4, Phone: p.Phone, LineType: p.LineType})
		}
		return out
	}
}

func startApp(ctx context.Context, o EmbeddedOptions) (*Target, func(context.Context) error, error) {
	dir, err := os.MkdirTemp("", "voiceauth-scenario-")
	if err != nil {
		return nil, nil, err
	}
	st, err := app.Start(ctx, app.Config{
		DataDir: dir, Addr: "127.0.0.1:0", ASAddr: "127.0.0.1:0", MCPAddr: "127.0.0.1:0",
		Frontend: o.Frontend, WrapAS: o.WrapAS, WrapMCP: o.WrapMCP, LogWriter: o.LogWriter,
		GeneratedPatients: o.GeneratedPatients, Now: o.Now, MaxCalls: o.MaxCalls,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	t := &Target{VoiceURL: st.VoiceURL, PublicURL: st.PublicURL, AuthToken: st.TwilioAuthToken, Backend: appBackend{st}, Now: o.Now}
	stop := func(ctx context.Context) error {
		err := st.Close(ctx)
		os.RemoveAll(dir)
		return err
	}
	return t, stop, nil
}

type appBackend struct{ st *app.Stack }

func (b appBackend) LatestOTP(phone string) (string, error) { return b.st.LatestOTP(phone) }
func (b appBackend) MetricsText() (string, error)           { return b.st.MetricsText() }
func (b appBackend) MintUpstreamToken(sub string, ttl time.Duration) (string, error) {
	return b.st.MintUpstreamToken(sub, ttl)
}
func (b appBackend) HostCredentials() (string, string) {
	return b.st.HostClientID, b.st.HostClientSecret
}
func (b appBackend) Audit(ctx context.Context) ([]AuditEvent, error) {
	evs, err := b.st.Audit(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AuditEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, AuditEvent{Type: e.Type, Outcome: e.Outcome, Detail: e.Detail})
	}
	return out, nil
}
