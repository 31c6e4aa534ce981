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
//
// # Front ends
//
// A front end only moves media: it turns what the caller said or keyed into
// an Input and speaks each Output (Output.Text, in LanguageTag's voice),
// transferring or hanging up when Output.End says so. Everything else is the
// per-call Driver (driver.go), shared by every front end:
//
//   - Driver.Start when the call arrives (st.Out is the greeting);
//   - Driver.Turn for each caller turn, with the State.Turn it answers
//     (repeated deliveries change nothing);
//   - Driver.Await while st.Pending is set, speaking Phrase(st, prompts.Hold)
//     and then prompts.StillWorking so no silence passes 3 s;
//   - Driver.Hangup when the caller is gone.
//
// Adding one (Media Streams, SIP) is a new file set: <name>.go with its
// handler or listener and <name>_test.go driving it through
// twiliotest.Phone or its own fake; a Frontend<Name> constant and its
// check in New, and its routes in Server.Handler (server.go). A front end
// that keeps the call between turns, as the relay socket does, writes its
// held copy through writeCached. Signatures are the front end's own
// business (webhook.go checks Twilio's; relay.go binds the socket to the
// call, relaygrant.go).
package ivr
