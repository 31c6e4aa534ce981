package app

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/voiceauth/voiceauth/healthmcp"
)

const attestationsFile = "mcp-identity-attestations.json"

// Attestations reads the identity attestations (rotation records) that the
// demo MCP server publishes next to its key.
func Attestations(dataDir string) ([]json.RawMessage, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, attestationsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []json.RawMessage
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// AppendAttestation adds one record (e.g. from `voiceauth keys rotate`).
func AppendAttestation(dataDir string, raw json.RawMessage) error {
	all, err := Attestations(dataDir)
	if err != nil {
		return err
	}
	all = append(all, raw)
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dataDir, attestationsFile), b, 0o600)
}

// SignedTools returns the demo server's tool definitions signed with key.
func SignedTools(key jose.JSONWebKey, at time.Time) ([]*mcp.Tool, error) {
	return healthmcp.SignedTools(key, at)
}
