package session_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/voiceauth/voiceauth/session"
)

func ExampleOpen() {
	ctx := context.Background()
	key := make([]byte, 32) // in voiceauth: the sealing key from secrets.json
	rand.Read(key)
	sealer, err := session.NewSealer(map[uint32][]byte{1: key}, 1)
	if err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "session-example")
	defer os.RemoveAll(dir)

	// A file path opens SQLite; "postgres://…" opens PostgreSQL.
	st, err := session.Open(ctx, filepath.Join(dir, "voiceauth.db"), session.Options{Sealer: sealer})
	if err != nil {
		panic(err)
	}
	defer st.Close()

	c := &session.Call{ID: "CA123", State: []byte(`{"step":"dob"}`)}
	if err := st.CreateCall(ctx, c); err != nil {
		panic(err)
	}
	c.State = []byte(`{"step":"ssn4"}`)
	fmt.Println(st.UpdateCall(ctx, c), c.Version)

	stale := &session.Call{ID: "CA123", Version: 1}
	fmt.Println(st.UpdateCall(ctx, stale))
	// Output:
	// <nil> 2
	// session: version conflict
}
