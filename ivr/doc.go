// Package ivr is the phone conversation: one dialog state machine per call
// (engine.go) driven by two Twilio front ends — the webhook <Gather> loop
// (webhook.go) and the ConversationRelay websocket (relay.go) — plus the
// subject-token registration endpoint for callers already authenticated by
// the host application (subject.go).
//
// The dialog collects name, date of birth and SSN-4 by speech or keypad,
// submits them through the Auth interface (an adapter over the OAuth
// challenge client that the wiring supplies; ivr never sees a token), asks for an SMS code when
// the AS wants one, and then offers the authenticated menu through the Tools
// interface (MCP). Every sentence comes from package prompts; inputs go
// through ivr/spoken.
//
// State lives in session.Call.State (sealed at rest by the store) and is
// written with optimistic versions before the caller hears the next prompt,
// so any instance can serve the next webhook and a crash loses no answer.
// Backend calls run as persisted jobs: after HoldAfter the caller hears a
// hold phrase, at GiveUpAfter they are transferred (backend_down).
//
// Every call ends with one outcome (authenticated, transferred with a
// reason, caller_hung_up, failed), counted once in metrics. Logs carry only
// keyed pseudonyms (session.Pseudonym) and error kinds, never answers,
// codes, tokens or record data.
package ivr
