package voiceauth_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// dockerInstr is one Dockerfile instruction with its continuation lines joined.
type dockerInstr struct {
	stage int // 0-based FROM index
	op    string
	args  string
}

func parseDockerfile(t *testing.T, path string) []dockerInstr {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []dockerInstr
	stage := -1
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		full := cur.String()
		cur.Reset()
		op, args, _ := strings.Cut(full, " ")
		op = strings.ToUpper(op)
		if op == "FROM" {
			stage++
		}
		out = append(out, dockerInstr{stage: stage, op: op, args: strings.TrimSpace(args)})
	}
	return out
}

// TestDockerfile checks what no Docker daemon here can: a multi-stage cgo
// build on Go 1.27.3, a non-root runtime with /data as a volume, a
// healthcheck, and no local data or secrets in the build context.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	var froms []string
	last := map[string]string{}
	for _, in := range ins {
		if in.op == "FROM" {
			froms = append(froms, in.args)
		}
		last[in.op] = in.args
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM %v", froms)
	}
	final := len(froms) - 1
	var buildEnv, buildRun, runUser, volume, health, env string
	copiedFromBuild := false
	for _, in := range ins {
		switch {
		case in.stage < final && in.op == "ENV":
			buildEnv += " " + in.args
		case in.stage < final && in.op == "RUN":
			buildRun += " " + in.args
		case in.stage == final && in.op == "USER":
			runUser = in.args
		case in.stage == final && in.op == "VOLUME":
			volume += " " + in.args
		case in.stage == final && in.op == "HEALTHCHECK":
			health = in.args
		case in.stage == final && in.op == "ENV":
			env += " " + in.args
		case in.stage == final && in.op == "COPY" && strings.Contains(in.args, "--from="):
			copiedFromBuild = true
		}
	}
	if !strings.Contains(buildEnv, "GOTOOLCHAIN=go1.27.3") && !strings.Contains(froms[0], "golang:1.27.3") {
		t.Errorf("build stage does not pin Go 1.27.3: FROM %s, ENV %s", froms[0], buildEnv)
	}
	if !strings.Contains(buildRun, "CGO_ENABLED=1") || !strings.Contains(buildRun, "go build") {
		t.Errorf("build stage must build with cgo (SQLite): %s", buildRun)
	}
	if !copiedFromBuild {
		t.Error("the runtime stage does not copy the binary from the build stage")
	}
	if runUser == "" || runUser == "root" || runUser == "0" || strings.HasPrefix(runUser, "0:") {
		t.Errorf("runtime user %q: must be non-root", runUser)
	}
	if !regexp.MustCompile(`(^|[\s"\[])/data([\s"\]]|$)`).MatchString(volume) {
		t.Errorf("VOLUME %q does not declare /data", volume)
	}
	if !strings.Contains(env, "VOICEAUTH_DATA_DIR=/data") {
		t.Errorf("VOICEAUTH_DATA_DIR is not /data: %s", env)
	}
	if !strings.Contains(health, "CMD") || !strings.Contains(health, "/healthz") && !strings.Contains(health, "/readyz") {
		t.Errorf("HEALTHCHECK %q does not probe the service", health)
	}
	if !strings.Contains(last["ENTRYPOINT"], "voiceauth") {
		t.Errorf("ENTRYPOINT %q", last["ENTRYPOINT"])
	}

	ignore, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	for _, want := range []string{"data/", "secrets.json", "*.db"} {
		if !strings.Contains(string(ignore), want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

// TestCompose: two voiceauth instances on one PostgreSQL store behind a
// proxy, sharing one secrets file, each with a public URL and a readiness
// healthcheck.
func TestCompose(t *testing.T) {
	raw, err := os.ReadFile("deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			DependsOn   map[string]any    `yaml:"depends_on"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			Ports []string `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var instances []string
	pg := ""
	for name, s := range doc.Services {
		if strings.HasPrefix(s.Image, "postgres") {
			pg = name
		}
		if s.Environment["VOICEAUTH_STORE"] != "" {
			instances = append(instances, name)
		}
	}
	if pg == "" {
		t.Fatal("no PostgreSQL service")
	}
	if len(instances) != 2 {
		t.Fatalf("want two voiceauth instances, got %v", instances)
	}
	secrets := ""
	for _, name := range instances {
		s := doc.Services[name]
		env := s.Environment
		if !strings.HasPrefix(env["VOICEAUTH_STORE"], "postgres://") || !strings.Contains(env["VOICEAUTH_STORE"], "@"+pg+":") {
			t.Errorf("%s: store %q is not the compose PostgreSQL", name, env["VOICEAUTH_STORE"])
		}
		if env["VOICEAUTH_PUBLIC_URL"] == "" {
			t.Errorf("%s: no VOICEAUTH_PUBLIC_URL (bound to all interfaces, the instance refuses to start)", name)
		}
		if secrets == "" {
			secrets = env["VOICEAUTH_SECRETS_FILE"]
		} else if env["VOICEAUTH_SECRETS_FILE"] != secrets || secrets == "" {
			t.Errorf("%s: secrets file %q; every instance must load the same one (%q)", name, env["VOICEAUTH_SECRETS_FILE"], secrets)
		}
		if _, ok := s.DependsOn[pg]; !ok {
			t.Errorf("%s does not wait for %s", name, pg)
		}
		if !strings.Contains(strings.Join(s.Healthcheck.Test, " "), "/readyz") {
			t.Errorf("%s: healthcheck %v does not use /readyz", name, s.Healthcheck.Test)
		}
	}
	proxy := ""
	for name, s := range doc.Services {
		deps := 0
		for _, in := range instances {
			if _, ok := s.DependsOn[in]; ok {
				deps++
			}
		}
		if deps == 2 && len(s.Ports) > 0 {
			proxy = name
		}
	}
	if proxy == "" {
		t.Fatal("no proxy service in front of both instances")
	}
	conf, err := os.ReadFile("deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range instances {
		if !strings.Contains(string(conf), "server "+in+":8080") {
			t.Errorf("nginx.conf does not balance onto %s", in)
		}
	}
	if !strings.Contains(string(conf), "Upgrade") {
		t.Error("nginx.conf does not pass websocket upgrades (relay front end)")
	}
}
