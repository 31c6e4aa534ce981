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
// # Server identity (ext-auth PR #17, ex-SEP-2267) and how its gaps are closed
//
// The server declares capabilities.extensions["io.modelcontextprotocol/server-identity"]
// and answers identity/get (public JWK + attestations) and identity/challenge.
// Connect does, in order: identity/get → parse the JWK strictly (OKP/Ed25519,
// 32 bytes, no "d") → verify the self attestation over the publicKey JSON
// exactly as received → apply the trust policy → identity/challenge with a
// fresh 32-byte nonce and the current time, verified over decoded nonce ‖
// timestamp → tools/list, verifying every tool. Signatures are raw Ed25519
// over RFC 8785 JCS (gowebpki/jcs), base64url without padding (padded input
// accepted). Gaps in the draft, and what this package does:
//
//   - Annotations, title, signedAt and kid are not signed by the draft's
//     "signature" (so a flipped destructiveHint or a replayed old definition
//     would pass). Tools carry, next to the draft's signature (kept byte-exact
//     for interop), "extSignature" over JCS of {name, title, description,
//     inputSchema, outputSchema, annotations, signedAt, kid}. The client
//     requires "signature" always and "extSignature" whenever present;
//     Policy.RequireExtSignature refuses tools without it (anti-downgrade), and
//     Policy.MaxToolAge bounds signedAt. A signedAt in the future (beyond 5
//     minutes) is refused.
//   - Absent description: signed as "" (both payloads); absent title "",
//     absent schemas/annotations null in the extended payload.
//   - Publisher attestations bind nothing in the draft. Here they carry
//     "subject": {kid, thumbprint} (RFC 7638 thumbprint of the server key)
//     inside the signed object; the client requires it to equal the presented
//     key's thumbprint, the issuer key to be one of Policy.Anchors, and
//     expiresAt to be in the future. The signature is checked over the
//     attestation as received minus "signature", so unknown members are covered.
//   - Challenge freshness: the server refuses nonces under 32 bytes (-32602),
//     timestamps more than 5 minutes off (-32001) and nonces it has seen while
//     their timestamp is fresh (-32002; bounded cache). The client chooses the
//     nonce, so a recorded answer can never be replayed to it.
//   - Key rotation: a "revocation" attestation signed by the OLD key, with the
//     thumbprints of both keys (RotationRecord, SignRotation). Under the
//     pinned policy a changed key is accepted only with such a record from the
//     pinned key naming the presented key; the pin then moves. Otherwise
//     ErrIdentity, and the caller is transferred. (As the draft says, this
//     does not help after a compromise of the old key; that needs an operator
//     to clear the pin: `voiceauth pins clear`.)
//   - Revocation: a "revocation" attestation signed by the presented key and
//     naming it (revokedThumbprint, or revokedKid alone as in the draft) makes
//     every policy refuse that key, pinned, first used or publisher-attested;
//     the signature is checked over the record as received minus
//     "signature". Revocations not signed by the key they name are ignored.
//   - "Challenge bytes" means the decoded nonce; timestamps are RFC 3339 UTC
//     and signed as the exact string sent.
//
// Trust policies: PolicyPinned (default; trust on first use via PinStore),
// PolicyPublisher (anchors), PolicyUnsignedAllowed (only when configured:
// servers without the extension are accepted and their tools callable; signed
// tools that fail verification are still refused). A tool that fails
// verification is never listed by Session.Tools and CallTool refuses it with
// ErrToolNotVerified.
package mcpclient
