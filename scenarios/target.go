package scenarios

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// Target is a running voiceauth the runner calls: an embedded stack started
// for one scenario, or one given with --target.
type Target struct {
	// Transport is what the target's voice service answers with: webhook
	// (<Gather> loop, VOICEAUTH_FRONTEND=gather) or relay (ConversationRelay).
	Transport string
	// VoiceURL is where requests are sent (e.g. http://127.0.0.1:8080).
	VoiceURL string
	// PublicURL is the base URL Twilio would use; signatures are computed over
	// it (VOICEAUTH_PUBLIC_URL). Defaults to VoiceURL.
	PublicURL string
	// AuthToken signs requests as Twilio does.
	AuthToken  string
	HTTPClient *http.Client
	// Backend gives in-process access to the OTP outbox, the audit trail and
	// metrics; nil for a remote target (those assertions are then reported
	// as unchecked, not passed).
	Backend Backend
	// Observer sees the AS and MCP traffic of an embedded stack; nil otherwise.
	Observer *Observer
	// Logs holds the stack's JSON log lines (canary checks); nil for remote.
	Logs *SyncBuffer
	// Now is the target's clock ({{date}} in expectations); nil = wall clock.
	Now func() time.Time
}

// now is the target's idea of the current time.
func (t *Target) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Backend is the embedded stack's side door for assertions.
type Backend interface {
	LatestOTP(phone string) (string, error)
	Audit(ctx context.Context) ([]AuditEvent, error)
	MetricsText() (string, error)
	MintUpstreamToken(sub string, ttl time.Duration) (string, error)
	HostCredentials() (clientID, secret string)
}

func (t *Target) client() *http.Client {
	if t.HTTPClient != nil {
		return t.HTTPClient
	}
	return http.DefaultClient
}

func (t *Target) publicURL() string {
	if t.PublicURL != "" {
		return t.PublicURL
	}
	return t.VoiceURL
}

// EmbeddedOptions configures a fresh in-process stack.
type EmbeddedOptions struct {
	Frontend  string // gather | relay
	WrapAS    func(http.Handler) http.Handler
	WrapMCP   func(http.Handler) http.Handler
	LogWriter io.Writer
	// GeneratedPatients seeds authserver.GeneratePatients(n) besides the demo rows.
	GeneratedPatients int
	// Now is the stack's clock; nil = the wall clock.
	Now func() time.Time
	// MaxCalls is the stack's admission cap (0: its default, -1: none).
	MaxCalls int
}

// startEmbedded starts the in-process stack (internal/app). It is set by
// embedded_app.go; nil means this binary was built without the stack.
var startEmbedded func(ctx context.Context, o EmbeddedOptions) (*Target, func(context.Context) error, error)

// ErrNoEmbedded is returned when the binary was built without internal/app.
var ErrNoEmbedded = errors.New("scenarios: embedded stack not compiled in (build with -tags voiceauth_app until internal/app lands, or use --target)")

// EmbeddedAvailable reports whether an in-process stack can be started.
func EmbeddedAvailable() bool { return startEmbedded != nil }

// SyncBuffer is a goroutine-safe bytes.Buffer for captured logs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// AuditEvent is the part of session.AuditEvent scenarios assert on (kept
// local so the harness core builds while session is in flux).
type AuditEvent struct {
	Type    string
	Outcome string
	Detail  map[string]string
}

// SyntheticPatient mirrors authserver.DemoPatient (load-test callers).
type SyntheticPatient struct {
	ID, Name, Birthdate, SSNLast4, Phone, LineType string
}

// generatePatients is authserver.GeneratePatients, set by embedded_app.go.
var generatePatients func(n int) []SyntheticPatient
