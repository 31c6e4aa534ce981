// Package twiliotest plays Twilio's side of the voice wire for tests and the
// scenario runner: the X-Twilio-Signature request signer (Sign), a fake
// phone that posts signed webhooks and opens signed ConversationRelay
// sockets (Phone), and a reader for the TwiML a voice service answers
// (ReadTwiML).
//
// It is written from Twilio's documentation and the SDKs' published test
// vectors, not from the service's own code, so a test that signs with it
// checks the service's twilio-go validation against an independent
// implementation. It imports no project package (ivr's own tests use it).
package twiliotest
