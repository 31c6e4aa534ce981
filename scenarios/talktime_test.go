package scenarios

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEstimateTurn(t *testing.T) {
	g := func(n, finish, timeout string) *Gather {
		return &Gather{NumDigits: n, FinishOnKey: finish, Timeout: timeout}
	}
	reply := Reply{Text: "What is your date of birth?"} // 6 words
	agent := 6 * perWord
	cases := []struct {
		name      string
		turn      Turn
		g         *Gather
		transport string
		want      TalkEstimate
	}{
		{"speech", Turn{Say: "Maria Garcia"}, nil, TransportWebhook, TalkEstimate{Caller: 2 * perWord, Wait: endOfSpeech, Agent: agent}},
		{"keys complete at numDigits", Turn{Press: "4567"}, g("4", "#", ""), TransportWebhook, TalkEstimate{Caller: 4 * perKey, Agent: agent}},
		{"keys end with #", Turn{Press: "03031980#"}, g("", "#", ""), TransportWebhook, TalkEstimate{Caller: 9 * perKey, Agent: agent}},
		{"keys wait for the timeout", Turn{Press: "2"}, g("", "#", ""), TransportWebhook, TalkEstimate{Caller: perKey, Wait: gatherTimeout, Agent: agent}},
		{"gather timeout attribute", Turn{Press: "2"}, g("", "#", "3"), TransportWebhook, TalkEstimate{Caller: perKey, Wait: 3 * time.Second, Agent: agent}},
		{"no finishOnKey: # does not end it", Turn{Press: "12#"}, g("", "", "4"), TransportWebhook, TalkEstimate{Caller: 3 * perKey, Wait: 4 * time.Second, Agent: agent}},
		{"relay appends #", Turn{Press: "4567"}, nil, TransportRelay, TalkEstimate{Caller: 5 * perKey, Agent: agent}},
		{"relay star", Turn{Press: "*"}, nil, TransportRelay, TalkEstimate{Caller: perKey, Agent: agent}},
		{"silence", Turn{Silence: true}, nil, TransportRelay, TalkEstimate{Wait: gatherTimeout, Agent: agent}},
		{"answer", Turn{Answer: true}, nil, TransportWebhook, TalkEstimate{Agent: agent}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := estimateTurn(&c.turn, reply, c.g, c.transport)
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
	late := estimateTurn(&Turn{Say: "yes"}, Reply{Late: "one two", Text: "three"}, nil, TransportRelay)
	if late.Agent != 3*perWord {
		t.Errorf("late words not counted: %v", late.Agent)
	}
}

func TestEstimateCallToVerified(t *testing.T) {
	turns := []Turn{{Answer: true}, {Say: "Maria Garcia"}, {Press: "4567", Authenticated: true}, {Say: "appointments"}}
	heard := []string{"Please say your name.", "Date of birth?", "Thanks, you're verified. You can say appointments or medications.", "You have 2 appointments."}
	g4 := &Gather{NumDigits: "4", FinishOnKey: "#"}
	cr := CallResult{}
	for i := range turns {
		var g *Gather
		if turns[i].Press != "" {
			g = g4
		}
		rep := Reply{Text: heard[i]}
		cr.Turns = append(cr.Turns, TurnResult{Heard: heard[i], Talk: estimateTurn(&turns[i], rep, g, TransportWebhook)})
	}
	estimateCall(&cr, turns)
	// 4 + (2 words + 1 s + 3) + (4 keys + "Thanks, you're verified." 3 words)
	wantVerified := 4*perWord + 2*perWord + endOfSpeech + 3*perWord + 4*perKey + 3*perWord
	if cr.Talk.ToVerified != wantVerified {
		t.Errorf("to verified %v, want %v", cr.Talk.ToVerified, wantVerified)
	}
	wantEnd := wantVerified + 6*perWord + (perWord + endOfSpeech + 4*perWord)
	if cr.Talk.ToEnd != wantEnd {
		t.Errorf("to end %v, want %v", cr.Talk.ToEnd, wantEnd)
	}
	r := Result{Calls: []CallResult{{Talk: TalkTotals{ToEnd: 10 * time.Second}}, cr}}
	estimateResult(&r)
	if r.Talk.ToVerified != 10*time.Second+wantVerified || r.Talk.ToEnd != 10*time.Second+wantEnd {
		t.Errorf("scenario totals %+v", r.Talk)
	}
}

func TestSummarizeTalk(t *testing.T) {
	run := func(lang, tr string, ver, end int, passed bool) Result {
		return Result{Language: lang, Transport: tr, Passed: passed, Calls: []CallResult{{}},
			Talk: TalkTotals{ToVerified: time.Duration(ver) * time.Second, ToEnd: time.Duration(end) * time.Second}}
	}
	rs := []Result{
		run("", TransportWebhook, 20, 30, true),
		run("en", TransportRelay, 22, 40, true),
		run("en", TransportWebhook, 0, 10, true), // never verified
		run("es", TransportWebhook, 28, 50, true),
		run("es", TransportRelay, 90, 99, false), // failed: not counted
	}
	got := map[string]TalkSummary{}
	for _, s := range SummarizeTalk(rs) {
		got[s.Group] = s
	}
	if s := got["en"]; s.Verified != 2 || s.VerifiedP50 != 21*time.Second || s.VerifiedP95 != 22*time.Second || s.Runs != 3 || s.EndP50 != 30*time.Second {
		t.Errorf("en: %+v", s)
	}
	if s := got["all"]; s.Verified != 3 || s.VerifiedP50 != 22*time.Second || s.VerifiedP95 != 28*time.Second {
		t.Errorf("all: %+v", s)
	}
	if _, ok := got["es/relay"]; ok {
		t.Error("a failed run was summarized")
	}
	var b strings.Builder
	writeTalkSummary(&b, rs)
	if !strings.Contains(b.String(), "talk time en:") || !strings.Contains(b.String(), "median 21.0s p95 22.0s") {
		t.Errorf("summary line:\n%s", b.String())
	}
}

// `voiceauth call --lang es` chooses Spanish the way a caller does (the
// greeting's key), and on the relay the softphone then speaks Spanish
// because the agent's `language` message says so.
func TestCallMainSpanish(t *testing.T) {
	if !EmbeddedAvailable() {
		t.Skip(ErrNoEmbedded)
	}
	for _, tr := range []string{TransportWebhook, TransportRelay} {
		t.Run(tr, func(t *testing.T) {
			in := strings.NewReader("María García\ntres de marzo de mil novecientos ochenta\n/quit\n")
			var out, errb strings.Builder
			if code := CallMain([]string{"--transport", tr, "--lang", "es"}, in, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			for _, want := range []string{"[pressing 2 for es]", "Diga su nombre y apellido", "fecha de nacimiento", "3 de marzo de 1980", "Seguro Social"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
	var errb strings.Builder
	if code := CallMain([]string{"--lang", "fr"}, strings.NewReader(""), &strings.Builder{}, &errb); code != 2 || !strings.Contains(errb.String(), "--lang") {
		t.Errorf("--lang fr: exit %d %q", code, errb.String())
	}
}

// The relay phone follows the agent's `language` message.
func TestRelayPhoneFollowsLanguage(t *testing.T) {
	p := &relayPhone{webhookPhone: &webhookPhone{cfg: PhoneConfig{Language: "en"}}}
	if p.lang() != "en-US" {
		t.Fatal(p.lang())
	}
	p.noteLanguage(relayMsg{Type: "text", STTLanguage: "es-US"})
	if p.lang() != "en-US" {
		t.Error("a text message changed the language")
	}
	p.noteLanguage(relayMsg{Type: "language", STTLanguage: "es-US"})
	if p.lang() != "es-US" {
		t.Errorf("language message not followed: %s", p.lang())
	}
}

// The happy paths stay within the caller-experience goals under the talk-time
// model (words and timeouts, not the clock): a longer prompt that pushes a
// happy path over the goal fails here, not only in the replay report.
func TestHappyPathTalkTime(t *testing.T) {
	if !EmbeddedAvailable() {
		t.Skip(ErrNoEmbedded)
	}
	goals := map[string]time.Duration{
		"happy-speech-maria.yaml": 25 * time.Second, "happy-keypad-maria.yaml": 25 * time.Second,
		"happy-mixed-james.yaml": 25 * time.Second, "happy-spanish-maria.yaml": 30 * time.Second,
		"happy-spanish-keypad-zoe.yaml": 30 * time.Second,
	}
	var scs []*Scenario
	for f := range goals {
		got, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, got...)
	}
	for _, r := range RunAll(context.Background(), scs, RunOptions{Parallel: 2}) {
		goal := goals[filepath.Base(r.File)]
		switch {
		case !r.Passed:
			t.Errorf("%s [%s] failed: %v", r.Scenario, r.Transport, r.Failures)
		case r.Talk.ToVerified == 0 || r.Talk.ToVerified > goal:
			t.Errorf("%s [%s]: %s to verified, goal %s", r.Scenario, r.Transport, r.Talk.ToVerified, goal)
		}
	}
}
