// Package healthmcp is the demo healthcare MCP server of the embedded
// default. Its tools act only on the patient named by the access token's
// sub — no tool takes a patient argument — and every HTTP request is checked
// for audience, issuer, expiry, scope and acr before the MCP SDK sees it, so
// refusals are real 401/403 responses with RFC 6750/9470 challenges. Tool
// definitions are signed with the server's Ed25519 identity key at start
// (server-identity extension; see package mcpidentity).
package healthmcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/voiceauth/voiceauth/mcpidentity"
	"github.com/voiceauth/voiceauth/session"
)

// Config configures the demo MCP server.
type Config struct {
	Resource    string          // canonical URL, e.g. "http://127.0.0.1:8082/mcp" (PRM resource = token aud, byte for byte)
	Issuer      string          // the AS issuer the PRM names; tokens must carry this iss
	JWKSURL     string          // AS JWKS (fetched with HTTPClient, cached, refetched on unknown kid)
	IdentityKey jose.JSONWebKey // Ed25519 private identity key (tools signed at start)
	// Attestations are extra identity attestations to serve (publisher
	// attestations, rotation records from `voiceauth keys rotate`).
	Attestations []json.RawMessage
	Store        Store  // revocation records (checked on every request) and audit; nil = neither
	LogKey       []byte // key for subject pseudonyms in logs and audit
	HTTPClient   *http.Client
	Logger       *slog.Logger
	Now          func() time.Time
	// Location is the clinic's time zone, whose calendar "today" follows
	// (nil: ClinicLocation).
	Location *time.Location
}

// Server is the demo MCP server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	jwks   *jwks
	tokens tokenCache
	prmURL string
	mcp    *mcp.Server
	id     *mcpidentity.Server
	inner  http.Handler // the SDK behind the gate (tests mount it without one)
	h      http.Handler
}

// New validates cfg, signs the tools and builds the handler.
func New(cfg Config) (*Server, error) {
	u, err := url.Parse(cfg.Resource)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Fragment != "" || u.RawQuery != "" || len(u.Path) < 2 {
		return nil, fmt.Errorf("healthmcp: Resource must be an absolute URL with a path and no query or fragment")
	}
	if cfg.Issuer == "" || cfg.JWKSURL == "" {
		return nil, errors.New("healthmcp: Issuer and JWKSURL are required")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	s.jwks = &jwks{url: cfg.JWKSURL, client: hc, now: s.now}
	// RFC 9728 §3.1: the well-known segment goes between host and path.
	s.prmURL = u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.Path, "/")

	s.id, err = mcpidentity.NewServer(cfg.IdentityKey, mcpidentity.ServerOptions{Now: s.now, Attestations: cfg.Attestations})
	if err != nil {
		return nil, fmt.Errorf("healthmcp: identity key: %w", err)
	}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "voiceauth-healthmcp", Title: "voiceauth demo health records", Version: "1"},
		&mcp.ServerOptions{Capabilities: s.id.Capabilities(), Logger: s.log})
	if err := s.id.Register(s.mcp); err != nil {
		return nil, err
	}
	for _, t := range tools() {
		if err := s.id.SignTool(t.tool); err != nil {
			return nil, err
		}
		s.mcp.AddTool(t.tool, s.toolHandler(t.tool.Name, t.run))
	}

	// Stateless: the go-sdk serves MCP 2026-07-28 (no initialize, no
	// Mcp-Session-Id) only from a stateless handler, and answers 2025-11-25
	// clients from it as well. Nothing here needs a session: every request
	// carries its bearer token, which the gate verifies (signature, audience,
	// scope, acr, revocation) before the SDK runs it, and every tool acts on
	// the patient that request's token names — there is no session a second
	// caller's token could ride on. The identity extension keeps its nonce
	// replay cache per server, not per session.
	streamable := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp },
		&mcp.StreamableHTTPOptions{Logger: s.log, Stateless: true})
	// Hand the SDK the grant the authorize middleware verified (the tool
	// handlers re-check it from TokenInfo).
	bind := auth.RequireBearerToken(func(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		g := grantFrom(r.Context())
		if g == nil {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: g.Subject, Scopes: g.Scopes, Expiration: g.Expiry,
			Extra: map[string]any{"acr": g.ACR, "client_id": g.ClientID}}, nil
	}, &auth.RequireBearerTokenOptions{ResourceMetadataURL: s.prmURL, ClockSkew: 30 * time.Second})

	s.inner = bind(streamable)
	mux := http.NewServeMux()
	mux.Handle(u.Path, s.authorize(s.inner))
	mux.Handle(strings.TrimPrefix(s.prmURL, u.Scheme+"://"+u.Host), auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource:               cfg.Resource,
		AuthorizationServers:   []string{cfg.Issuer},
		ScopesSupported:        []string{ScopeAppointments, ScopeMedications, ScopeRefill},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "voiceauth demo health records",
	}))
	s.h = mux
	return s, nil
}

// Handler serves /mcp (Streamable HTTP) and the PRM at
// /.well-known/oauth-protected-resource/mcp.
func (s *Server) Handler() http.Handler { return s.h }

// PRMURL is the protected resource metadata URL named in challenges.
func (s *Server) PRMURL() string { return s.prmURL }

// audit appends one audit record (mcp.denied, mcp.read, mcp.refill);
// failures are logged, never fatal. Subject is a pseudonym, detail non-PHI.
func (s *Server) audit(ctx context.Context, typ, subject, outcome string, detail map[string]string) {
	if s.cfg.Store == nil {
		return
	}
	e := &session.AuditEvent{Time: s.now(), Type: typ, Actor: "healthmcp", Subject: subject, Outcome: outcome, Detail: detail}
	if err := s.cfg.Store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("audit append failed", "err", err)
	}
}

// ---------------------------------------------------------------------------
// Tools.

type toolDef struct {
	tool *mcp.Tool
	// run gets the refill ready date of this moment (only request_refill reads it).
	run func(rec Record, args map[string]json.RawMessage, readyOn string) (any, string, error)
}

// errTool is a tool-level failure: shown to the agent as isError, non-PHI text.
type errTool string

func (e errTool) Error() string { return string(e) }

func objectSchema(props map[string]any, required ...string) map[string]any {
	m := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		m["required"] = required
	}
	return m
}

func tools() []toolDef {
	apptSchema := objectSchema(map[string]any{
		"appointments": map[string]any{"type": "array", "items": objectSchema(map[string]any{
			"id": map[string]any{"type": "string"}, "start": map[string]any{"type": "string", "format": "date-time"},
			"clinician": map[string]any{"type": "string"}, "department": map[string]any{"type": "string"},
			"location": map[string]any{"type": "string"},
		}, "id", "start", "clinician", "department", "location")},
	}, "appointments")
	medSchema := objectSchema(map[string]any{
		"medications": map[string]any{"type": "array", "items": objectSchema(map[string]any{
			"id": map[string]any{"type": "string"}, "name": map[string]any{"type": "string"},
			"dose": map[string]any{"type": "string"}, "refillable": map[string]any{"type": "boolean"},
			"refills_left": map[string]any{"type": "integer", "minimum": 0},
		}, "id", "name", "dose", "refillable", "refills_left")},
	}, "medications")
	refillOut := objectSchema(map[string]any{
		"status": map[string]any{"type": "string"}, "medication": map[string]any{"type": "string"},
		"ready_on": map[string]any{"type": "string", "format": "date"},
	}, "status", "medication", "ready_on")
	f := false
	t := true
	return []toolDef{
		{
			tool: &mcp.Tool{Name: "list_appointments", Title: "Upcoming appointments",
				Description: "List the authenticated caller's upcoming appointments.",
				InputSchema: objectSchema(map[string]any{}), OutputSchema: apptSchema,
				Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, DestructiveHint: &f, IdempotentHint: true, OpenWorldHint: &f}},
			run: func(rec Record, _ map[string]json.RawMessage, _ string) (any, string, error) {
				return map[string]any{"appointments": nonNil(rec.Appointments)},
					fmt.Sprintf("%d upcoming appointments", len(rec.Appointments)), nil
			},
		},
		{
			tool: &mcp.Tool{Name: "list_medications", Title: "Current medications",
				Description: "List the authenticated caller's current medications and whether each can be refilled.",
				InputSchema: objectSchema(map[string]any{}), OutputSchema: medSchema,
				Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, DestructiveHint: &f, IdempotentHint: true, OpenWorldHint: &f}},
			run: func(rec Record, _ map[string]json.RawMessage, _ string) (any, string, error) {
				return map[string]any{"medications": nonNil(rec.Medications)},
					fmt.Sprintf("%d medications", len(rec.Medications)), nil
			},
		},
		{
			tool: &mcp.Tool{Name: "request_refill", Title: "Request a refill",
				Description:  "Request a refill of one of the authenticated caller's medications.",
				InputSchema:  objectSchema(map[string]any{"medication_id": map[string]any{"type": "string", "maxLength": 64}}, "medication_id"),
				OutputSchema: refillOut,
				Annotations:  &mcp.ToolAnnotations{ReadOnlyHint: false, DestructiveHint: &f, IdempotentHint: false, OpenWorldHint: &t}},
			run: refill,
		},
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// refill is request_refill; it does not change the record (demo data is read-only).
func refill(rec Record, args map[string]json.RawMessage, readyOn string) (any, string, error) {
	var id string
	if err := json.Unmarshal(args["medication_id"], &id); err != nil || id == "" {
		return nil, "", errTool("medication_id is required")
	}
	for _, m := range rec.Medications {
		if m.ID != id {
			continue
		}
		if !m.Refillable || m.RefillsLeft <= 0 {
			return nil, "", errTool("not refillable")
		}
		return map[string]any{"status": "requested", "medication": m.Name, "ready_on": readyOn}, "refill requested", nil
	}
	return nil, "", errTool("medication not found")
}

// toolHandler adapts a tool body: the patient is the token's sub, never an
// argument. It re-checks scope, acr and argument names itself, from the
// SDK's TokenInfo (the verified token) and the SDK's reading of the call, so
// that a gate fooled by some reading of the body still cannot open a tool;
// and it audits every call it runs.
func (s *Server) toolHandler(name string, run func(Record, map[string]json.RawMessage, string) (any, string, error)) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ti := req.Extra.TokenInfo
		if ti == nil || ti.UserID == "" {
			return nil, errors.New("no caller")
		}
		acr, _ := ti.Extra["acr"].(string)
		clientID, _ := ti.Extra["client_id"].(string)
		subject := session.Pseudonym(s.cfg.LogKey, "patient", ti.UserID)
		detail := map[string]string{"tool": name, "client_id": clientID, "acr": acr}
		var args map[string]json.RawMessage
		if len(req.Params.Arguments) > 0 && string(req.Params.Arguments) != "null" {
			if err := json.Unmarshal(req.Params.Arguments, &args); err != nil || args == nil {
				return errResult("arguments must be an object"), nil
			}
		}
		names := make([]string, 0, len(args))
		for k := range args {
			names = append(names, k)
		}
		d, ok := decide(name, ti.Scopes, acr, names)
		if ok && req.Params.Name != name {
			d, ok = denial{err: "access_denied", reason: "tool_mismatch"}, false
		}
		if !ok {
			detail["reason"], detail["where"] = d.reason, "handler"
			s.log.Warn("mcp tool refused by handler", "subject", subject, "tool", name, "reason", d.reason)
			s.audit(ctx, "mcp.denied", subject, "denied", detail)
			return nil, &jsonrpc.Error{Code: -32001, Message: d.err}
		}
		typ := "mcp.read"
		if name == "request_refill" {
			typ = "mcp.refill"
		}
		now := s.now()
		rec, ok := RecordFor(ti.UserID, now, s.cfg.Location)
		if !ok {
			s.audit(ctx, typ, subject, "no_record", detail)
			return errResult("no record"), nil
		}
		out, text, err := run(rec, args, ReadyOn(now, s.cfg.Location))
		if err != nil {
			var te errTool
			if errors.As(err, &te) {
				detail["error"] = string(te)
				s.audit(ctx, typ, subject, "tool_error", detail)
				return errResult(string(te)), nil
			}
			s.audit(ctx, typ, subject, "failed", detail)
			return nil, err
		}
		s.audit(ctx, typ, subject, "ok", detail)
		// The text block repeats the structured result as JSON (MCP's
		// backwards-compatibility advice); text is only a fallback summary.
		if b, err := json.Marshal(out); err == nil {
			text = string(b)
		}
		return &mcp.CallToolResult{StructuredContent: out, Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil
	}
}

func errResult(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}
