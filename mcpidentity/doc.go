// Package mcpidentity is the MCP server-identity and tool-attestation
// extension (ext-auth PR #17, ex-SEP-2267): its types and wire names,
// signing and the identity/get and identity/challenge handlers for a server
// (Server, SignTool), and verification for a client (VerifyMetadata,
// VerifyTool, ToolCache). It is a leaf: both mcpclient and healthmcp import
// it, so the two sides share one definition of every signed byte.
//
// # What the extension is
//
// An MCP server holds an Ed25519 key. It proves who it is with a self
// attestation over its public JWK and by signing a client's fresh nonce, and
// it signs each tool definition it lists, so a client can tell that the
// tools it is about to call are the ones the key holder published. Keys are
// trusted by the client's policy: pinned on first use, or vouched for by a
// publisher the client trusts.
//
// # Wire names (kept exactly as the proposal defines them, for interop)
//
//   - capabilities.extensions["io.modelcontextprotocol/server-identity"] =
//     {"version": "1.0.0"} (ExtensionID, ExtensionVersion).
//   - identity/get (MethodGet): params {} → {"publicKey": JWK,
//     "attestations": [...]} (Metadata). The REQUIRED "self" attestation is
//     {"type":"self","signedAt","signature"}, signed over JCS{type,
//     publicKey, signedAt}; "publisher" and "revocation" attestations are
//     optional.
//   - identity/challenge (MethodChallenge): {"challenge": base64url of ≥ 32
//     random bytes, "timestamp": RFC 3339 UTC} → {"signature", "kid"}, the
//     signature over the decoded challenge bytes ‖ the timestamp string as
//     sent. Errors: -32602 invalid params, -32001 stale timestamp (more than
//     5 minutes off), -32002 replayed nonce.
//   - A listed tool's _meta["io.modelcontextprotocol/server-identity"] =
//     {"signature", "kid", "signedAt"}, the signature over JCS{name,
//     description, inputSchema[, outputSchema]}.
//
// Signatures are raw Ed25519 (not JWS) over RFC 8785 JCS bytes
// (gowebpki/jcs), encoded base64url without padding; padded input is
// accepted. Timestamps are RFC 3339 UTC and signed as the exact string sent.
//
// # Keys and the two alg spellings
//
// The public key is an OKP/Ed25519 JWK {"kty":"OKP","crv":"Ed25519","x",
// "kid","use":"sig"}. Its "alg" may be absent, "EdDSA" (RFC 8037) or
// "Ed25519" (RFC 9864's fully specified name); all three are the same key and
// the same raw Ed25519 signature, and alg is not part of the RFC 7638
// thumbprint, so a pin made under one spelling matches the others. Any other
// alg (or a non-string alg) is refused. ParsePublicKey checks kty, crv, alg,
// 32-byte x and no "d" itself before go-jose decodes the key (go-jose's own
// checks are not meant for untrusted input, and it knows no "Ed25519"
// algorithm), and checks go-jose's result again, since the two JSON decoders
// match member names differently. This server publishes its key without
// alg; kid is the key's RFC 7638 thumbprint, but a client treats any kid as
// an opaque name.
//
// # Discovery on each protocol revision
//
// A server declares the extension once, with Server.Capabilities passed as
// mcp.ServerOptions.Capabilities. The go-sdk server sends those capabilities
// in the initialize result (2025-11-25 and earlier) and in the
// server/discover result (2026-07-28, which has no initialize; only a
// stateless go-sdk handler speaks it). The go-sdk client stores either in
// ClientSession.InitializeResult(), so Advertised reads the declaration the
// same way on both revisions, and identity/get, identity/challenge and the
// signed tools/list work unchanged on both. One Server may back many
// sessions (a stateless handler makes one per request): its replay cache is
// shared by all of them.
//
// # Where this package goes beyond the draft (and why)
//
//   - extSignature: the draft leaves title, annotations (destructiveHint…),
//     signedAt and kid unsigned. Tools also carry "extSignature" over JCS of
//     {name, title, description, inputSchema, outputSchema, annotations,
//     signedAt, kid}; a verifier checks "signature" always and
//     "extSignature" whenever present (a client may require it).
//   - An absent description is signed as "" in both payloads; absent title
//     is "", absent schemas and annotations null in the extended payload.
//   - Publisher attestations carry "subject": {kid, thumbprint} inside the
//     signed object (the draft's bind nothing and could be replayed onto
//     another server); they are checked over the attestation as received
//     minus "signature", must name the presented key's thumbprint, be signed
//     by a trusted anchor and be unexpired.
//   - Rotation: a "revocation" attestation signed by the OLD key naming both
//     keys' thumbprints (SignRotation). A client moves a pin only on such a
//     record from the pinned key naming the presented key (RotatedFrom).
//   - Revocation: a "revocation" attestation signed by the presented key and
//     naming it (by thumbprint, or by kid alone as in the draft) makes
//     VerifyMetadata refuse the key (ErrRevoked) under every policy.
//
// # Verification rules (client side)
//
// VerifyMetadata: strict JWK as above, the first self attestation verified
// over the publicKey JSON exactly as received (never re-serialized), no
// self-signed revocation. Then the caller's policy (pin or
// Identity.VerifyPublisher), then a challenge with a fresh nonce
// (NewChallenge, Identity.VerifyChallenge) to prove the key is held now.
// VerifyTool: kid equal to the key's, signedAt not more than 5 minutes in
// the future nor older than the caller's maximum age, the draft signature
// and extSignature if present. ToolCache skips only the Ed25519 arithmetic
// for exact (key, signed bytes, signatures) it has verified; the freshness
// checks run every time.
package mcpidentity
