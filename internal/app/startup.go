package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// checkListen refuses a voice listener on every interface without a public
// URL: Twilio signs the URL it was given, and "http://[::]:8080" is never
// it, so every webhook would fail its signature check with nothing saying
// why (the container default binds :8080).
func checkListen(cfg Config) error {
	if cfg.PublicURL != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("voice address %q: %w", cfg.Addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return fmt.Errorf("voice listener %s binds every interface but VOICEAUTH_PUBLIC_URL is not set: "+
			"Twilio signs the public URL it calls, so set VOICEAUTH_PUBLIC_URL (e.g. https://voice.example.org) "+
			"or bind 127.0.0.1", cfg.Addr)
	}
	return nil
}

// checkDataDir makes sure the data directory exists and accepts a file, so
// a read-only or full volume is reported at start, naming the path, instead
// of as "no such file or directory" from deep inside the store.
func checkDataDir(cfg Config) error {
	dir := cfg.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s cannot be created: %w (mount a writable volume there or set VOICEAUTH_DATA_DIR)", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-probe-*")
	if err == nil {
		_, err = f.Write(make([]byte, 4096))
		name := f.Name()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		os.Remove(name)
	}
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %s (%w)", dir, diskHint(err), err)
	}
	return nil
}

func diskHint(err error) string {
	switch ErrKind(err) {
	case "disk_full":
		return "the disk is full"
	case "read_only":
		return "the file system is read-only"
	case "permission_denied":
		return "permission denied for this user"
	}
	return "write failed"
}

// storeStartErr names the store file and the likely cause when it cannot
// be opened.
func storeStartErr(dsn string, err error) error {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return fmt.Errorf("store (PostgreSQL): %w", err)
	}
	path := strings.TrimPrefix(dsn, "sqlite:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	hint := ""
	if _, serr := os.Stat(filepath.Dir(path)); errors.Is(serr, os.ErrNotExist) {
		hint = ": its directory " + filepath.Dir(path) + " does not exist"
	} else if k := ErrKind(err); k == "disk_full" || k == "read_only" || k == "permission_denied" {
		hint = ": " + diskHint(err)
	}
	return fmt.Errorf("store %s cannot be opened%s: %w", path, hint, err)
}
