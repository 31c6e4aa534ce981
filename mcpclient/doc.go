// Package mcpclient is voiceauth's caller-bound MCP client on the official
// Go SDK: one MCP session per authenticated phone call, the caller's bearer
// token on every request, 401/403 answered by the caller's token source
// (step-up), and a verified server before any tool is called.
//
// # Session shape
//
// Streamable HTTP, no standalone SSE stream, no client capabilities. The
// protocol revision is negotiated: 2026-07-28 (server/discover, no
// initialize) first, 2025-11-25 as the fallback. Each server's answer is
// remembered for an hour (a server that speaks only 2025-11-25 — the
// TypeScript servers answer the probe with HTTP 400 — costs one probe, not
// one per call); Config.ProtocolVersion pins a revision and requires it. The token is set by an http.RoundTripper rather than
// the SDK's auth.OAuthHandler: the SDK retries only once per request and a
// second 401 with a non-JSON-RPC body fails the whole connection. Here every
// 401/403 is parsed (ParseChallenge), TokenSource.Renew is called for
// invalid_token, insufficient_user_authentication (RFC 9470) and
// insufficient_scope, and the same request is replayed — at most twice.
// Anything else comes back as *AuthError, wrapping Renew's own error.
//
// # Server identity
//
// The server-identity extension itself (wire names, signed bytes, the gaps
// of the draft and how they are closed, discovery on each protocol
// revision) lives in package mcpidentity, shared with the server side
// (healthmcp). Connect does, in order: check that the server advertised the
// extension (mcpidentity.Advertised, the same read on 2025-11-25 and
// 2026-07-28) → identity/get → mcpidentity.VerifyMetadata (strict Ed25519
// JWK, alg EdDSA, Ed25519 or absent; self attestation over the key as
// received; not revoked by itself) → the trust policy → identity/challenge
// with a fresh nonce → tools/list, verifying every tool.
//
// A Client (New) owns the cache of tool signatures already verified, shared
// by its sessions, so reconnecting for every call repeats no Ed25519 work
// (VerifyStats counts it); Config is a plain value that New copies.
//
// Trust policies: PolicyPinned (default; trust on first use via PinStore),
// PolicyPublisher (anchors), PolicyUnsignedAllowed (only when configured:
// servers without the extension are accepted and their tools callable; signed
// tools that fail verification are still refused). A tool that fails
// verification is never listed by Session.Tools and CallTool refuses it with
// ErrToolNotVerified.
package mcpclient
