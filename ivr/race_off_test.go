//go:build !race

package ivr

const raceEnabled = false
