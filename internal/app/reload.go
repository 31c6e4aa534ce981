package app

import (
	"context"
	"fmt"
	"os"
	"time"
)

// secretsPoll is how often a running instance looks at its secrets file.
// `voiceauth secrets rotate` waits longer than twice this between the steps
// of a rotation, so every instance has loaded a key before it is used.
const secretsPoll = 2 * time.Second

// RotationStepWait is the default pause between rotation steps: longer than
// the file poll (secretsPoll) plus the MCP server's JWKS refetch guard (10 s).
const RotationStepWait = 15 * time.Second

// ReloadSecrets re-reads the secrets file and applies what can change while
// serving: the sealing keyring (new current key; every version ever loaded
// stays readable) and the AS signing keys (first signs, all published).
// Secrets that identify the instance to others (pepper, call-ref and log
// keys, MCP identity, client secrets, Twilio token) need a rolling restart;
// a change to them is reported, not applied. SIGHUP and a changed file both
// end up here.
func (s *Stack) ReloadSecrets() error {
	err := s.reloadSecrets()
	result := "ok"
	if err != nil {
		result = "failed"
		s.logger.Error("secrets reload failed; the previous keys stay in use", "path", s.cfg.SecretsFile,
			"error", err.Error(), "err_kind", "secrets_reload")
	}
	s.metrics.keyReloads.WithLabelValues(result).Inc()
	return err
}

func (s *Stack) reloadSecrets() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	next, _, err := LoadSecrets(s.cfg.SecretsFile, false)
	if err != nil {
		return err
	}
	if err := s.sealer.Update(next.SealingKeys, next.SealingCurrent); err != nil {
		return fmt.Errorf("sealing keys: %w", err)
	}
	s.obsStore.sealingReloaded()
	if err := s.obsStore.UpdateAuditKeys(next.AuditKeys, next.AuditCurrent); err != nil {
		return fmt.Errorf("audit keys: %w", err)
	}
	if s.as != nil {
		if err := s.as.SetSigningKeys(next.ASSigningKeys); err != nil {
			return fmt.Errorf("AS signing keys: %w", err)
		}
	}
	if restart := needsRestart(s.secrets, next); len(restart) > 0 {
		s.logger.Warn("secrets changed that apply only after a restart", "secrets", restart)
	}
	s.logger.Info("secrets reloaded", "sealing_current", next.SealingCurrent, "sealing_versions", s.sealer.Versions(),
		"signing_kid", firstKID(next))
	return nil
}

func firstKID(s *Secrets) string {
	if len(s.ASSigningKeys) == 0 {
		return ""
	}
	return s.ASSigningKeys[0].KeyID
}

// needsRestart names the secrets that differ and are not reloadable.
func needsRestart(old, next *Secrets) []string {
	var out []string
	eq := func(a, b []byte) bool { return string(a) == string(b) }
	if !eq(old.Pepper, next.Pepper) {
		out = append(out, "pepper")
	}
	if !eq(old.CallRefKey, next.CallRefKey) {
		out = append(out, "call_ref_key")
	}
	if !eq(old.LogKey, next.LogKey) {
		out = append(out, "log_key")
	}
	if old.MCPIdentityKey.KeyID != next.MCPIdentityKey.KeyID {
		out = append(out, "mcp_identity_key")
	}
	if old.TwilioAuthToken != next.TwilioAuthToken || old.ClientSecret != next.ClientSecret ||
		old.HostClientSecret != next.HostClientSecret {
		out = append(out, "client credentials")
	}
	return out
}

// watchSecrets reloads when the secrets file's modification time or size
// changes (rotation by another instance's operator command, or a new file
// put in place by a secrets manager).
func (s *Stack) watchSecrets(ctx context.Context, every time.Duration) {
	defer s.wg.Done()
	stamp := func() string {
		fi, err := os.Stat(s.cfg.SecretsFile)
		if err != nil {
			return ""
		}
		return fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
	}
	last := stamp()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now := stamp(); now != "" && now != last {
			last = now
			s.ReloadSecrets()
		}
	}
}
