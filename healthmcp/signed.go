package healthmcp

import (
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/voiceauth/voiceauth/mcpidentity"
)

// SignedTools returns the server's tool definitions signed with key at at,
// as `voiceauth keys sign-tools` prints them for review or publication.
func SignedTools(key jose.JSONWebKey, at time.Time) ([]*mcp.Tool, error) {
	var out []*mcp.Tool
	for _, t := range tools() {
		if err := mcpidentity.SignTool(t.tool, key, at); err != nil {
			return nil, err
		}
		out = append(out, t.tool)
	}
	return out, nil
}
