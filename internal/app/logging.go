package app

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
)

// sensitiveKeys are attribute names whose values are never written, whatever
// the package that logged them meant to do. It is the last line of defence:
// packages are expected to log pseudonyms, not values.
var sensitiveKeys = map[string]bool{
	"kba_name": true, "kba_birthdate": true, "kba_ssn_last4": true, "name": false,
	"birthdate": true, "dob": true, "ssn": true, "ssn4": true, "ssn_last4": true,
	"otp": true, "code": true, "authorization_code": true, "code_verifier": true,
	"token": true, "access_token": true, "refresh_token": true, "subject_token": true,
	"id_token": true, "auth_session": true, "authorization": true, "password": true,
	"secret": true, "client_secret": true, "speech": true, "speechresult": true,
	"digits": true, "voiceprompt": true, "transcript": true,
}

// jwtLike matches compact JWS/JWE strings, in case one slips into a message.
var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)

// NewLogger returns a JSON slog logger whose handler redacts sensitive
// attributes and token-shaped strings before anything reaches w.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(&redactHandler{next: slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: redactAttr,
	})})
}

// ParseLevel maps VOICEAUTH_LOG_LEVEL to a slog level (info when unknown).
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func redactAttr(_ []string, a slog.Attr) slog.Attr {
	if sensitiveKeys[strings.ToLower(a.Key)] {
		return slog.String(a.Key, "[redacted]")
	}
	if a.Value.Kind() == slog.KindString {
		if v := a.Value.String(); strings.Contains(v, "eyJ") {
			return slog.String(a.Key, jwtLike.ReplaceAllString(v, "[redacted-jwt]"))
		}
	}
	return a
}

// redactHandler also scrubs the message itself, which ReplaceAttr never sees.
type redactHandler struct{ next slog.Handler }

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "eyJ") {
		nr := slog.NewRecord(r.Time, r.Level, jwtLike.ReplaceAllString(r.Message, "[redacted-jwt]"), r.PC)
		r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(a); return true })
		r = nr
	}
	return h.next.Handle(ctx, r)
}

func (h *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &redactHandler{next: h.next.WithAttrs(as)}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{next: h.next.WithGroup(name)}
}
