package app

import (
	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/broker"
	"github.com/voiceauth/voiceauth/healthmcp"
	"github.com/voiceauth/voiceauth/ivr"
	"github.com/voiceauth/voiceauth/session"
)

// Each consumer declares the store it needs (ivr.CallStore, healthmcp.Store,
// authserver.Store, broker.Store); both a session store and the metrics wrapper every part
// of an instance is handed must satisfy each of them. The wrapper's optional
// interfaces (session.ClientStore for the Registry, …) are asserted in
// store.go.
var (
	_ ivr.CallStore    = session.Store(nil)
	_ healthmcp.Store  = session.Store(nil)
	_ authserver.Store = session.Store(nil)
	_ broker.Store     = session.Store(nil)

	_ ivr.CallStore    = (*observedStore)(nil)
	_ healthmcp.Store  = (*observedStore)(nil)
	_ authserver.Store = (*observedStore)(nil)
	_ broker.Store     = (*observedStore)(nil)
)
