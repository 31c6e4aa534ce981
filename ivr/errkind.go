package ivr

import "strings"

// failureKind is errKind's answer for errors that wrap none of the known
// sentinels: a stable class (never a Go type name such as *fmt.wrapError,
// never the message) that operators can alert on, read from the message of
// the system error. Needles are short fragments of SQLite, PostgreSQL and
// OS error texts.
func failureKind(err error) string {
	msg := strings.ToLower(err.Error())
	for _, k := range [][2]string{
		{"is full", "disk_full"}, {"no space", "disk_full"},
		{"read-only", "read_only"}, {"readonly", "read_only"}, {"permission denied", "permission_denied"},
		{"i/o error", "io_error"}, {"input/output", "io_error"},
		{"is locked", "busy"}, {"is closed", "closed"},
		{"key version", "sealing_key_missing"}, {"sealed value", "unsealable"},
		{"connection refused", "unreachable"},
	} {
		if strings.Contains(msg, k[0]) {
			return k[1]
		}
	}
	return "internal"
}
