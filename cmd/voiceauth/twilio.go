package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/voiceauth/voiceauth/internal/cli"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/voiceauth/voiceauth/authserver"
	"github.com/voiceauth/voiceauth/fhirimport"
	"github.com/voiceauth/voiceauth/internal/app"
)

const twilioUsage = `usage: voiceauth twilio configure --number +1… [--dry-run] [--public-url https://…]
  points the number's voice URL (POST) and status callback (POST) at the public URL; needs
  TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)`

// twilioCmd configures a Twilio number for this service through twilio-go's
// IncomingPhoneNumbers API. It takes the service's own settings (flags,
// environment, --config), so the URLs it sets are the ones serve signs.
var twilioGroup = cli.Group{Name: "twilio", Summary: "Point a Twilio number at this service through Twilio's IncomingPhoneNumbers API.",
	Actions: []cli.Action{
		{Name: "configure", Args: "--number +1… [--dry-run] [flags]", Summary: "set the number's voice URL, method and status callback to the public URL, printing what changed"},
	}}

func twilioCmd(args []string, stdout, stderr io.Writer) int {
	a, more, code, ok := twilioGroup.Dispatch(args, stdout, stderr)
	if !ok {
		return code
	}
	args = append([]string{a.Name}, more...)
	fs := twilioGroup.FlagSet(a)
	cli.Capture(fs)
	number := fs.String("number", "", "the Twilio number to point at this service, E.164")
	dryRun := fs.Bool("dry-run", false, "show what would change, change nothing")
	v, err := resolve(fs, args[1:], os.Getenv)
	if code, ok := cli.Handle(fs, err, stdout, stderr); !ok {
		if code != 0 {
			fmt.Fprintln(stderr, "voiceauth twilio configure:", err)
		}
		return code
	}
	if fs.NArg() > 0 || *number == "" {
		fmt.Fprintln(stderr, twilioUsage)
		return 2
	}
	if fhirimport.E164(*number) != *number {
		fmt.Fprintf(stderr, "voiceauth twilio configure: --number must be E.164 (+ and 8-15 digits), not %q\n", *number)
		return 2
	}
	pub, err := url.Parse(strings.TrimRight(v["public-url"], "/"))
	if err != nil || pub.Scheme != "https" || pub.Host == "" || pub.RawQuery != "" || pub.Fragment != "" {
		fmt.Fprintln(stderr, "voiceauth twilio configure: VOICEAUTH_PUBLIC_URL (--public-url) must be the https URL Twilio reaches this service at")
		return 2
	}
	base := pub.String()
	want := numberConfig{VoiceURL: base + "/twilio/voice", VoiceMethod: "POST", StatusCallback: base + "/twilio/status", StatusCallbackMethod: "POST"}
	rest, err := twilioREST(v)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth twilio configure:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ra time.Duration
	svc := api.NewApiServiceWithClient(rest.RESTClient(ctx, &ra))
	list, err := svc.ListIncomingPhoneNumber((&api.ListIncomingPhoneNumberParams{}).SetPhoneNumber(*number).SetPageSize(20).SetLimit(20))
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth twilio configure: listing the account's numbers:", twilioProblem(err, ra))
		return 1
	}
	var found *api.ApiV2010IncomingPhoneNumber
	for i := range list {
		if list[i].PhoneNumber != nil && *list[i].PhoneNumber == *number && list[i].Sid != nil {
			found = &list[i]
		}
	}
	if found == nil {
		fmt.Fprintf(stderr, "voiceauth twilio configure: %s is not a number of account %s (buy or port it first, or check TWILIO_ACCOUNT_SID)\n", *number, rest.AccountSID)
		return 1
	}
	have := numberConfig{VoiceURL: deref(found.VoiceUrl), VoiceMethod: deref(found.VoiceMethod),
		StatusCallback: deref(found.StatusCallback), StatusCallbackMethod: deref(found.StatusCallbackMethod)}
	fmt.Fprintf(stdout, "%s (%s), %s front end:\n", *number, *found.Sid, v["frontend"])
	changes := have.diff(want, stdout)
	switch {
	case changes == 0:
		fmt.Fprintln(stdout, "already configured; nothing changed")
		return 0
	case *dryRun:
		fmt.Fprintln(stdout, "dry run: nothing changed")
		return 0
	}
	p := (&api.UpdateIncomingPhoneNumberParams{}).SetVoiceUrl(want.VoiceURL).SetVoiceMethod(want.VoiceMethod).
		SetStatusCallback(want.StatusCallback).SetStatusCallbackMethod(want.StatusCallbackMethod)
	got, err := svc.UpdateIncomingPhoneNumber(*found.Sid, p)
	if err != nil {
		fmt.Fprintln(stderr, "voiceauth twilio configure: updating the number:", twilioProblem(err, ra))
		return 1
	}
	if deref(got.VoiceUrl) != want.VoiceURL || deref(got.StatusCallback) != want.StatusCallback {
		fmt.Fprintln(stderr, "voiceauth twilio configure: Twilio accepted the update but reports other URLs; check the console")
		return 1
	}
	fmt.Fprintf(stdout, "updated %d setting(s)\n", changes)
	return 0
}

// numberConfig is what `twilio configure` manages on a number.
type numberConfig struct {
	VoiceURL, VoiceMethod, StatusCallback, StatusCallbackMethod string
}

// diff prints each setting as "old → new" (or unchanged) and counts changes.
func (have numberConfig) diff(want numberConfig, w io.Writer) int {
	n := 0
	row := func(label, old, new string) {
		if old == "" {
			old = "(none)"
		}
		if old == new {
			fmt.Fprintf(w, "  %-23s %s (unchanged)\n", label, new)
			return
		}
		n++
		fmt.Fprintf(w, "  %-23s %s → %s\n", label, old, new)
	}
	row("voice URL", have.VoiceURL, want.VoiceURL)
	row("voice method", have.VoiceMethod, want.VoiceMethod)
	row("status callback", have.StatusCallback, want.StatusCallback)
	row("status callback method", have.StatusCallbackMethod, want.StatusCallbackMethod)
	return n
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// twilioREST builds the REST credentials from the resolved settings: the
// first auth token (TWILIO_AUTH_TOKEN may list two during rotation) or an
// API key pair.
func twilioREST(v values) (authserver.TwilioREST, error) {
	r := authserver.TwilioREST{AccountSID: v["twilio-account-sid"], BaseURL: v["twilio-api-base"]}
	if r.AccountSID == "" {
		return r, errors.New("TWILIO_ACCOUNT_SID (--twilio-account-sid) is required")
	}
	if v["twilio-api-key"] != "" {
		r.APIKeySID, r.AuthToken = v["twilio-api-key"], v["twilio-api-secret"]
		if r.AuthToken == "" {
			return r, errors.New("TWILIO_API_KEY needs TWILIO_API_SECRET")
		}
		return r, nil
	}
	if toks := app.SplitTokens(v["twilio-auth-token"]); len(toks) > 0 {
		r.AuthToken = toks[0]
	}
	if r.AuthToken == "" {
		return r, errors.New("TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET) is required")
	}
	return r, nil
}

// twilioProblem says what a Twilio error means to an operator.
func twilioProblem(err error, retryAfter time.Duration) string {
	var te *authserver.TwilioError
	errors.As(authserver.TwilioErrorOf(err, retryAfter), &te)
	switch {
	case te == nil || te.Transport:
		return "Twilio did not answer (network, or --twilio-api-base)"
	case te.Code == 20003 || te.Status == 401:
		return "Twilio refused the credentials (error 20003): check TWILIO_ACCOUNT_SID and the auth token or API key"
	case te.Status == 429:
		return fmt.Sprintf("Twilio is rate limiting (error %d); retry after %s", te.Code, te.RetryAfter)
	}
	return fmt.Sprintf("Twilio error %d (HTTP %d) %s", te.Code, te.Status, te.MoreInfo)
}
