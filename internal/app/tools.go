package app

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/voiceauth/voiceauth/session"
)

// OpenStore opens the configured store with the instance's sealing keys,
// without starting any listener (for the CLI's operator commands).
func OpenStore(ctx context.Context, cfg Config) (session.Store, *Secrets, error) {
	cfg.defaults()
	secrets, _, err := LoadSecrets(cfg.SecretsFile, false)
	if err != nil {
		return nil, nil, err
	}
	sealer, err := session.NewSealer(secrets.SealingKeys, secrets.SealingCurrent)
	if err != nil {
		return nil, nil, err
	}
	st, err := session.Open(ctx, cfg.Store, session.Options{Sealer: sealer, Now: cfg.Now,
		AuditKeys: secrets.AuditKeys, AuditKeyCurrent: secrets.AuditCurrent,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, nil, err
	}
	return st, secrets, nil
}

// Defaults returns cfg with the embedded defaults filled in.
func Defaults(cfg Config) Config {
	cfg.defaults()
	return cfg
}

// OutboxPath is where the embedded default "texts" one-time codes.
func OutboxPath(dataDir string) string {
	if dataDir == "" {
		dataDir = "./data"
	}
	return filepath.Join(dataDir, "otp-outbox.jsonl")
}

// PatientPseudonym is how audit records name a patient.
func PatientPseudonym(s *Secrets, patientID string) string {
	return session.Pseudonym(s.LogKey, "patient", patientID)
}
