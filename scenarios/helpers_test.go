package scenarios

import (
	"os"
	"testing"
	"time"
)

func timeNowPlus() time.Time { return time.Now().Add(time.Second) }

type timeDur = int64
type durT = time.Duration

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
