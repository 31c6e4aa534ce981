package mcpidentity

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func jsonrpcCode(err error) int64 {
	var je *jsonrpc.Error
	if errors.As(err, &je) {
		return je.Code
	}
	return 0
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return b
}

func FuzzParsePublicKey(f *testing.F) {
	key, _ := GenerateKey()
	pub, _ := PublicJWK(key)
	f.Add(string(pub))
	f.Add(`{"kty":"OKP","crv":"Ed25519","x":"AAAA"}`)
	x := `"kty":"OKP","crv":"Ed25519","x":"` + rfc8037X + `"`
	f.Add(`{` + x + `,"alg":"Ed25519"}`)
	f.Add(`{` + x + `,"alg":"EdDSA","ALG":"RS256"}`)
	f.Add(`{` + x + `,"alg":"ES256"}`)
	f.Fuzz(func(t *testing.T, raw string) {
		k, err := ParsePublicKey([]byte(raw))
		if err != nil {
			return
		}
		if p, ok := k.Key.(ed25519.PublicKey); !ok || len(p) != ed25519.PublicKeySize {
			t.Fatalf("accepted a non-Ed25519 key: %T", k.Key)
		}
		if a := k.Algorithm; a != "" && a != AlgEdDSA && a != AlgEd25519 {
			t.Fatalf("accepted alg %q", a)
		}
	})
}

// FuzzVerifyTool feeds arbitrary tool JSON (as a server would list it):
// verification must never panic and never accept what was not signed.
func FuzzVerifyTool(f *testing.F) {
	key, _ := GenerateKey()
	tool := &mcp.Tool{Name: "t", InputSchema: map[string]any{"type": "object"}}
	_ = SignTool(tool, key, time.Unix(1764072000, 0))
	good, _ := json.Marshal(tool)
	f.Add(string(good))
	f.Add(`{"name":"t","inputSchema":{"type":"object"},"_meta":{"io.modelcontextprotocol/server-identity":{"signature":"AA","kid":"k","signedAt":"x"}}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var tl mcp.Tool
		if json.Unmarshal([]byte(raw), &tl) != nil {
			return
		}
		err := VerifyTool(&tl, pubOf(key), time.Unix(1764072060, 0), 0)
		if err == nil && string(mustJSON(&tl)) != string(mustJSON(tool)) {
			// Only a semantically identical tool may verify.
			d1, e1, _ := ToolPayloads(&tl, key.KeyID, "")
			d2, e2, _ := ToolPayloads(tool, key.KeyID, "")
			if string(d1) != string(d2) || string(e1) != string(e2) {
				t.Fatalf("verified a different tool: %s", raw)
			}
		}
	})
}
