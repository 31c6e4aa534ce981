package mcpclient

import (
	"errors"
	"sync"
	"time"
)

// MCP protocol revisions this client speaks.
const (
	// Version20260728 is the stateless revision (SEP-2575): no initialize,
	// server/discover, _meta on every request, Mcp-Method/Mcp-Name headers.
	Version20260728 = "2026-07-28"
	// Version20251125 is the session revision (initialize, Mcp-Session-Id),
	// the fallback for servers that do not speak 2026-07-28.
	Version20251125 = "2025-11-25"
)

// ErrProtocol: the server did not speak the protocol revision
// Config.ProtocolVersion requires.
var ErrProtocol = errors.New("mcpclient: protocol version refused")

// versionMemoTTL is how long a negotiated answer is trusted before the
// server is probed again (a server upgraded to 2026-07-28 is found within
// this time; one known to speak only 2025-11-25 costs no probe before it).
const versionMemoTTL = time.Hour

// versionMemoMax bounds the memo; it is dropped whole when full (servers
// are few: this only guards against a caller that dials unbounded URLs).
const versionMemoMax = 1024

// versionMemo remembers, per server URL, the revision the server answered
// when this client negotiated (Config.ProtocolVersion == ""). The SDK's
// negotiation sends server/discover first and falls back to initialize on
// any failure; against a server that speaks only 2025-11-25 that probe is a
// wasted round trip on every connection (an HTTP 400 from the TypeScript
// servers), so after the first answer the client asks for 2025-11-25
// directly until the memo expires.
type versionMemo struct {
	mu sync.Mutex
	m  map[string]memoEntry
}

type memoEntry struct {
	version string
	at      time.Time
}

// get returns the remembered revision for server, or "" (negotiate).
func (v *versionMemo) get(server string, now time.Time) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[server]
	if !ok {
		return ""
	}
	if now.Sub(e.at) >= versionMemoTTL || now.Before(e.at) {
		delete(v.m, server)
		return ""
	}
	return e.version
}

func (v *versionMemo) put(server, version string, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= versionMemoMax {
		v.m = map[string]memoEntry{}
	}
	v.m[server] = memoEntry{version: version, at: now}
}

func (v *versionMemo) forget(server string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, server)
}

// requestVersion is the revision to ask server for: the configured one, else
// the remembered answer, else the newest (the SDK then negotiates down).
// remembered reports that the answer came from the memo.
func (cl *Client) requestVersion(server string) (version string, remembered bool) {
	if cl.cfg.ProtocolVersion != "" {
		return cl.cfg.ProtocolVersion, false
	}
	if v := cl.versions.get(server, cl.cfg.now()); v != "" {
		return v, true
	}
	return Version20260728, false
}

// ProtocolVersion is the revision this session speaks.
func (s *Session) ProtocolVersion() string {
	if ir := s.cs.InitializeResult(); ir != nil {
		return ir.ProtocolVersion
	}
	return ""
}
