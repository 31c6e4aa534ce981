package app

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/voiceauth/voiceauth/broker"
	"github.com/voiceauth/voiceauth/ivr"
)

// brokerHooks measures the token broker: job durations feed admission's
// load gauge, tool calls and revocations the metrics.
func brokerHooks(m *opsMetrics, load *loadGauge) broker.Hooks {
	h := broker.Hooks{ErrKind: ErrKind}
	if load != nil {
		h.Job = load.observe
	}
	if m != nil {
		h.ToolCall = func(tool string, err error, d time.Duration) {
			m.toolSeconds.WithLabelValues(toolLabel(tool)).Observe(d.Seconds())
			m.toolCalls.WithLabelValues(toolLabel(tool), toolOutcome(err)).Inc()
		}
		h.Revocation = func(result string) { m.revocations.WithLabelValues(result).Inc() }
	}
	return h
}

// toolLabel keeps the tool label to names a server could list (bounded).
func toolLabel(tool string) string {
	if len(tool) > 48 || strings.ContainsAny(tool, " \"<>{}") {
		return "other"
	}
	return tool
}

func toolOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ivr.ErrStepUp):
		return "step_up"
	case errors.Is(err, ivr.ErrToolDenied):
		return "denied"
	case errors.Is(err, ivr.ErrIdentity):
		return "identity_refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "unavailable"
}
