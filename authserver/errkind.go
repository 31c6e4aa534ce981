package authserver

import (
	"context"
	"errors"
	"strings"

	"github.com/voiceauth/voiceauth/session"
)

// errKind names an internal error for logs and alerts with a stable, short
// word (never a Go type, never the message).
func errKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, session.ErrConflict):
		return "conflict"
	case errors.Is(err, session.ErrUnsealable):
		return "unsealable"
	}
	msg := strings.ToLower(err.Error())
	for _, k := range [][2]string{
		{"is full", "disk_full"}, {"no space", "disk_full"}, {"read-only", "read_only"}, {"readonly", "read_only"},
		{"i/o error", "io_error"}, {"is locked", "busy"}, {"is closed", "closed"},
	} {
		if strings.Contains(msg, k[0]) {
			return k[1]
		}
	}
	return "internal"
}
