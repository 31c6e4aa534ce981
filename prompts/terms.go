package prompts

import (
	"bufio"
	"strings"
)

// terms per language: folded English phrase (as words) → local rendering.
type termTable struct {
	byFirst map[string][]term
}

type term struct {
	words []string
	local string
}

// loadTerms reads <lang>/terms.txt ("English = local" per line; # comments).
func loadTerms(lang string) (termTable, error) {
	t := termTable{byFirst: map[string][]term{}}
	b, err := files.ReadFile(lang + "/terms.txt")
	if err != nil {
		return t, nil // a language without a table reads record values as they are
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		en, local, ok := strings.Cut(line, "=")
		ws := strings.Fields(strings.ToLower(en))
		if !ok || len(ws) == 0 || strings.TrimSpace(local) == "" {
			continue
		}
		t.byFirst[ws[0]] = append(t.byFirst[ws[0]], term{ws, strings.TrimSpace(local)})
	}
	return t, sc.Err()
}

// Localize renders a value from the record (a department, a dose, a
// medication instruction) in lang: each longest known phrase is replaced,
// whole words and case-insensitive, trailing punctuation kept; everything
// else (names, numbers, units) is read as it is.
func Localize(lang, v string) string {
	loadOnce.Do(load)
	t, ok := terms[primary(lang)]
	if !ok || len(t.byFirst) == 0 {
		return v
	}
	ws := strings.Fields(v)
	keys := make([]string, len(ws))
	for i, w := range ws {
		keys[i] = strings.ToLower(strings.TrimRight(w, ".,;:"))
	}
	out := make([]string, 0, len(ws))
	for i := 0; i < len(ws); {
		best := term{}
		for _, c := range t.byFirst[keys[i]] {
			if len(c.words) > len(best.words) && i+len(c.words) <= len(ws) && equalWords(keys[i:i+len(c.words)], c.words) {
				// only the last word may carry punctuation
				if !hasPunct(ws[i : i+len(c.words)-1]) {
					best = c
				}
			}
		}
		if best.words == nil {
			out = append(out, ws[i])
			i++
			continue
		}
		last := ws[i+len(best.words)-1]
		out = append(out, best.local+last[len(strings.TrimRight(last, ".,;:")):])
		i += len(best.words)
	}
	return strings.Join(out, " ")
}

func equalWords(a, b []string) bool {
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func hasPunct(ws []string) bool {
	for _, w := range ws {
		if strings.TrimRight(w, ".,;:") != w {
			return true
		}
	}
	return false
}
