package scenarios

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"time"

	"github.com/voiceauth/voiceauth/internal/cli"
	"github.com/voiceauth/voiceauth/ivr"
)

// targetFlags are shared by replay, call and load.
type targetFlags struct {
	target    string
	transport string
	authToken string
	publicURL string
}

func (tf *targetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&tf.target, "target", "", "URL of a running voiceauth voice service (default: start an embedded stack)")
	fs.StringVar(&tf.transport, "transport", "", "webhook|relay (with --target: what the target serves, default webhook)")
	fs.StringVar(&tf.authToken, "auth-token", os.Getenv("TWILIO_AUTH_TOKEN"), "Twilio auth token the target validates (with --target; env TWILIO_AUTH_TOKEN)")
	fs.StringVar(&tf.publicURL, "public-url", os.Getenv("VOICEAUTH_PUBLIC_URL"), "public base URL signatures are computed over (with --target; default the target URL)")
}

func (tf *targetFlags) remote() (*Target, error) {
	tr := tf.transport
	if tr == "" {
		tr = TransportWebhook
	}
	if tr != TransportWebhook && tr != TransportRelay {
		return nil, fmt.Errorf("--transport %q: want webhook or relay", tr)
	}
	if tf.authToken == "" {
		return nil, errors.New("--target needs --auth-token (or TWILIO_AUTH_TOKEN)")
	}
	return &Target{Transport: tr, VoiceURL: strings.TrimRight(tf.target, "/"), PublicURL: strings.TrimRight(tf.publicURL, "/"), AuthToken: tf.authToken}, nil
}

// parseInterleaved lets flags follow positional arguments ("replay DIR --json").
// ok is false when the command must return code at once (0 after -h/--help).
func parseInterleaved(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	cli.Capture(fs)
	for {
		if err := fs.Parse(args); err != nil {
			code, ok := cli.Handle(fs, err, stdout, stderr)
			return nil, code, ok
		}
		rest := fs.Args()
		if len(rest) == 0 {
			code, ok := cli.Handle(fs, nil, stdout, stderr)
			return pos, code, ok
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// ReplayMain implements `voiceauth replay [--json] [--target URL] DIR|FILE…`.
func ReplayMain(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("replay [--json] [--target URL --auth-token T] [--run REGEX] DIR|FILE...",
		"Replay scenario files (scripted calls) against a fresh embedded stack per scenario, or a running voiceauth.")
	var tf targetFlags
	tf.register(fs)
	asJSON := fs.Bool("json", false, "print results as JSON")
	run := fs.String("run", "", "only scenarios whose name matches this regular expression")
	parallel := fs.Int("parallel", 4, "scenarios run at once")
	timeout := fs.Duration("turn-timeout", 10*time.Second, "longest wait for the agent in one turn")
	paths, code, ok := parseInterleaved(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(paths) == 0 {
		paths = []string{"scenarios"}
	}
	var scs []*Scenario
	for _, p := range paths {
		got, err := Load(p)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		scs = append(scs, got...)
	}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			fmt.Fprintf(stderr, "--run: %v\n", err)
			return 2
		}
		var keep []*Scenario
		for _, sc := range scs {
			if re.MatchString(sc.Name) {
				keep = append(keep, sc)
			}
		}
		scs = keep
	}
	opts := RunOptions{Parallel: *parallel, TurnTimeout: *timeout}
	if tf.target != "" {
		t, err := tf.remote()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		opts.Target = t
	} else if !EmbeddedAvailable() {
		fmt.Fprintln(stderr, ErrNoEmbedded)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if !*asJSON {
		done := 0
		opts.Progress = func(r Result) {
			done++
			if isTerminal(stderr) {
				fmt.Fprintf(stderr, "\r%d runs done (last: %s [%s])\033[K", done, r.Scenario, r.Transport)
			}
		}
	}
	results := RunAll(ctx, scs, opts)
	if !*asJSON && isTerminal(stderr) {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if *asJSON {
		WriteJSON(stdout, results)
	} else {
		WriteTable(stdout, results)
	}
	if Summarize(results).Failed > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// isTerminal reports whether w is a character device (colours, \r progress).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

type palette struct{ agent, caller, dim, warn, reset string }

func colours(w io.Writer) palette {
	if !isTerminal(w) || os.Getenv("NO_COLOR") != "" {
		return palette{}
	}
	return palette{agent: "\033[1;36m", caller: "\033[33m", dim: "\033[2m", warn: "\033[1;31m", reset: "\033[0m"}
}

// CallMain implements `voiceauth call`: a terminal softphone.
func CallMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("call [flags]", "A terminal softphone: talk to voiceauth by typing, exactly as Twilio would deliver the call.")
	var tf targetFlags
	tf.register(fs)
	from := fs.String("from", "+15555550101", "caller's number (From); the demo default is Maria Garcia's mobile")
	stir := fs.String("stir", "TN-Validation-Passed-A", "StirVerstat to send (empty: none)")
	lang := fs.String("lang", "en", "en|es: the caller's language; a language other than the greeting's is chosen with its key, as a caller would")
	timeout := fs.Duration("turn-timeout", 10*time.Second, "longest wait for the agent in one turn")
	if _, code, ok := parseInterleaved(fs, args, stdout, stderr); !ok {
		return code
	}
	langKey, ok := ivr.LanguageKey(*lang)
	if !ok {
		fmt.Fprintf(stderr, "--lang %q: not a language the IVR serves\n", *lang)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := colours(stdout)

	var target *Target
	if tf.target != "" {
		t, err := tf.remote()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		target = t
	} else {
		tr := tf.transport
		if tr == "" {
			tr = TransportWebhook
		}
		t, stopStack, err := StartEmbedded(ctx, nil, tr)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer stopWithin(stopStack, 5*time.Second)
		target = t
		fmt.Fprintf(stdout, "%sembedded stack on %s (%s); demo patients: README.md, \"Demo patients\"%s\n", c.dim, t.VoiceURL, tr, c.reset)
	}
	phone := Dial(target, PhoneConfig{Caller: Caller{From: *from, StirVerstat: *stir}, Language: *lang, Timeout: *timeout})
	defer phone.Close()
	fmt.Fprintf(stdout, "%sType what you'd say · #1234 presses keys · empty line = silence · /otp shows the texted code · /quit or Ctrl-D hangs up%s\n", c.dim, c.reset)

	show := func(rep Reply, err error) bool {
		if rep.Late != "" {
			fmt.Fprintf(stdout, "%sagent:%s %s\n", c.agent, c.reset, rep.Late)
		}
		if rep.Text != "" {
			fmt.Fprintf(stdout, "%sagent:%s %s %s(%s)%s\n", c.agent, c.reset, rep.Text, c.dim, fmtDur(rep.FirstWords), c.reset)
		}
		if err != nil {
			fmt.Fprintf(stdout, "%s%v%s\n", c.warn, err, c.reset)
		}
		if rep.Status >= 300 {
			fmt.Fprintf(stdout, "%sHTTP %d%s\n", c.warn, rep.Status, c.reset)
			return false
		}
		if rep.Transfer {
			fmt.Fprintf(stdout, "%s[transferred to a human] %s%s\n", c.dim, rep.TransferInfo, c.reset)
			return false
		}
		if rep.Ended {
			fmt.Fprintf(stdout, "%s[call ended]%s\n", c.dim, c.reset)
			return false
		}
		return true
	}
	if !show(phone.Do(ctx, &Turn{Answer: true})) {
		return 0
	}
	if first, _ := ivr.LanguageKey("en"); langKey != first {
		fmt.Fprintf(stdout, "%s[pressing %s for %s]%s\n", c.dim, langKey, *lang, c.reset)
		if !show(phone.Do(ctx, &Turn{Press: langKey})) {
			return 0
		}
	}
	echoes := false // a terminal echoes what the user types
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			echoes = true
		}
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	hangup := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		phone.Do(cctx, &Turn{Hangup: true})
		fmt.Fprintf(stdout, "\n%s[you hung up]%s\n", c.dim, c.reset)
	}
	for {
		fmt.Fprintf(stdout, "%syou>%s ", c.caller, c.reset)
		var line string
		var ok bool
		select {
		case <-ctx.Done():
			hangup()
			return 0
		case line, ok = <-lines:
		}
		if !ok || line == "/quit" || line == "/hangup" {
			hangup()
			return 0
		}
		line = strings.TrimSpace(line)
		if !echoes {
			fmt.Fprintln(stdout, line) // piped input: show what "you" said
		}
		var t Turn
		switch {
		case line == "/otp":
			if target.Backend == nil {
				fmt.Fprintln(stdout, "no outbox: /otp works with the embedded stack")
				continue
			}
			code, err := target.Backend.LatestOTP(*from)
			if err != nil {
				fmt.Fprintf(stdout, "no code texted to %s yet\n", *from)
				continue
			}
			fmt.Fprintf(stdout, "%s[text message to %s] your code is %s%s\n", c.dim, *from, code, c.reset)
			continue
		case line == "/help" || line == "?":
			fmt.Fprintln(stdout, "say anything; #digits presses keys (#0 = operator, #* = repeat); empty line = silence; /otp; /quit")
			continue
		case line == "":
			t.Silence = true
		case strings.HasPrefix(line, "#") && len(line) > 1 && strings.Trim(line[1:], "0123456789*#") == "":
			t.Press = line[1:]
		default:
			t.Say = line
		}
		if !show(phone.Do(ctx, &t)) {
			return 0
		}
	}
}
