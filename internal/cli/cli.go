// Package cli is the command-line plumbing every voiceauth subcommand shares,
// so that each answers -h and --help the same way: its usage line, what it
// does, and every flag with a one-line description, on standard output, exit 0.
// A bad flag prints the same text to standard error, exit 2.
package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// NewFlagSet returns the flag set of `voiceauth <use>`; summary says in one
// line what the command does.
func NewFlagSet(use, summary string) *flag.FlagSet {
	name, _, _ := strings.Cut(use, " [")
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: voiceauth %s\n\n%s\n", use, summary)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// Parse parses args into fs. ok is false when the command must return code at
// once: 0 after -h/--help (usage printed to stdout), 2 after a bad flag (error
// and usage printed to stderr).
func Parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	Capture(fs)
	return Handle(fs, fs.Parse(args), stdout, stderr)
}

// Handle is Parse for callers that run fs.Parse themselves (for example
// several times, to allow flags after positional arguments); call it through
// Capture so that what the flag package printed goes to the right stream.
func Handle(fs *flag.FlagSet, err error, stdout, stderr io.Writer) (code int, ok bool) {
	buf, _ := fs.Output().(*bytes.Buffer)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		if buf != nil {
			stdout.Write(buf.Bytes())
		} else {
			fs.SetOutput(stdout)
			fs.Usage()
			fs.SetOutput(stderr)
		}
		return 0, false
	default:
		if buf != nil {
			stderr.Write(buf.Bytes())
		}
		return 2, false
	}
}

// Capture makes fs write into a buffer until Handle sends it to stdout (help)
// or stderr (error).
func Capture(fs *flag.FlagSet) { fs.SetOutput(&bytes.Buffer{}) }

// Action is one action of a command group ("keys rotate").
type Action struct {
	Name    string // "rotate"
	Args    string // what follows the name in the usage line, e.g. "[flags]"
	Summary string // one line: what it does
}

// Group is a command whose first argument names an action
// (`voiceauth keys generate|show|rotate|sign-tools`).
type Group struct {
	Name    string
	Summary string
	Actions []Action
}

// Usage is the group's help text: one line per action.
func (g Group) Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: voiceauth %s <action> [flags]\n\n%s\n\nactions:\n", g.Name, g.Summary)
	for _, a := range g.Actions {
		fmt.Fprintf(&b, "  %-12s %s\n", a.Name, a.Summary)
	}
	fmt.Fprintf(&b, "\nRun \"voiceauth %s <action> -h\" for an action's flags.\n", g.Name)
	return b.String()
}

// Dispatch picks the action args name. ok is false when the command must
// return code at once: 0 for -h/--help/help (group usage on stdout), 2 for a
// missing or unknown action (usage on stderr).
func (g Group) Dispatch(args []string, stdout, stderr io.Writer) (a Action, rest []string, code int, ok bool) {
	if len(args) == 0 {
		fmt.Fprint(stderr, g.Usage())
		return Action{}, nil, 2, false
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, g.Usage())
		return Action{}, nil, 0, false
	}
	for _, a := range g.Actions {
		if a.Name == args[0] {
			return a, args[1:], 0, true
		}
	}
	fmt.Fprintf(stderr, "voiceauth %s: unknown action %q\n\n%s", g.Name, args[0], g.Usage())
	return Action{}, nil, 2, false
}

// FlagSet is NewFlagSet for one of the group's actions.
func (g Group) FlagSet(a Action) *flag.FlagSet {
	return NewFlagSet(g.Name+" "+a.Name+" "+a.Args, a.Summary)
}
