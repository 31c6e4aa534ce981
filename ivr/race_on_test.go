//go:build race

package ivr

// raceEnabled: under -race sync.Pool drops a quarter of what is put back,
// so allocation counts of pooled paths are only exact without it.
const raceEnabled = true
