package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// runBin runs a binary and returns its exit code, stdout and stderr.
func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run %s: %v", bin, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func TestExampleConfigsAreValid(t *testing.T) {
	root := repoRoot(t)
	bin := binPath(t, "MONSTACKD_BIN")
	for _, role := range []string{"a", "b"} {
		code, out, errOut := runBin(t, bin, "check", "config",
			"--config.file="+filepath.Join(root, "configs", "monstack-replica-"+role+".yml"), "--role=replica-"+role)
		if code != 0 || !strings.Contains(out, "SUCCESS") {
			t.Errorf("check config for replica-%s: exit %d\n%s%s", role, code, out, errOut)
		}
	}
	if code, out, errOut := runBin(t, binPath(t, "PROMTOOL_BIN"), "check", "rules", filepath.Join(root, "configs", "rules", "node.yml")); code != 0 {
		t.Errorf("promtool check rules: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runBin(t, binPath(t, "AMTOOL_BIN"), "check-config", filepath.Join(root, "configs", "alertmanager.yml")); code != 0 || !strings.Contains(out, "1 inhibit rules") {
		t.Errorf("amtool check-config: exit %d\n%s%s", code, out, errOut)
	}
}

func TestCheckConfigReportsEveryProblem(t *testing.T) {
	bin := binPath(t, "MONSTACKD_BIN")
	for _, tc := range []struct {
		name  string
		files map[string]string
		args  []string
		want  []string
	}{
		{
			name:  "bad duration",
			files: map[string]string{"monstack.yml": "tsdb:\n  retention: 5x\n"},
			want:  []string{"monstack.yml: parse: line 2: field tsdb.retention: invalid duration \"5x\""},
		},
		{
			name:  "unknown fields",
			files: map[string]string{"monstack.yml": "tsdb:\n  retentoin: 5d\nquery:\n  max_samples: many\n"},
			want:  []string{"line 2: field tsdb.retentoin", "line 4: field query.max_samples"},
		},
		{
			name:  "a bucket the compactor lease cannot use",
			files: map[string]string{"monstack.yml": "bucket:\n  type: GCS\n  config: {bucket: x}\n"},
			want:  []string{"compactor.lease: ", "field bucket.type: GCS", "set compactor.lease.enabled: false"},
		},
		{
			name: "results cache configs the frontend cannot read",
			files: map[string]string{
				"monstack.yml": "query_frontend:\n  query_range:\n    results_cache: {config_file: cache.yml}\n  labels:\n    results_cache: {type: MEMCACHD}\n",
				"cache.yml":    "type: IN-MEMORY\nconfig:\n  max_size: 1GB\nexpiry: 1h\n",
			},
			want: []string{"cache.yml: ", "field expiry not found", "monstack.yml: field query_frontend.labels.results_cache: ", "MEMCACHD is not supported"},
		},
		{
			name:  "invalid values, each named",
			files: map[string]string{"monstack.yml": "query:\n  timeout: 0s\n  replica_label: 1x\n"},
			want:  []string{"monstack.yml: field query.timeout: must be positive", "monstack.yml: field query.replica_label"},
		},
		{
			name: "duplicate job names",
			files: map[string]string{
				"monstack.yml":   "prometheus:\n  config_file: prometheus.yml\n",
				"prometheus.yml": "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['x:1']}]\n  - job_name: a\n    static_configs: [{targets: ['y:1']}]\n",
			},
			want: []string{"prometheus.yml", `found multiple scrape configs with job name "a"`},
		},
		{
			name:  "missing prometheus.yml",
			files: map[string]string{"monstack.yml": "prometheus:\n  config_file: nope.yml\n"},
			want:  []string{"nope.yml: no such file or directory"},
		},
		{
			name: "bad rule and bad bucket",
			files: map[string]string{
				"monstack.yml":   "prometheus:\n  config_file: prometheus.yml\nbucket:\n  config_file: bucket.yml\n",
				"prometheus.yml": "rule_files: [rules.yml]\n",
				"rules.yml":      "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: sum(\n",
				"bucket.yml":     "type: NOPE\nconfig: {}\n",
			},
			want: []string{"rules.yml: 5:15: ", `bucket.yml: field type: "NOPE" is not supported`},
		},
		{
			name: "missing rule file",
			files: map[string]string{
				"monstack.yml":   "prometheus:\n  config_file: prometheus.yml\n",
				"prometheus.yml": "rule_files: [gone.yml, 'none/*.yml']\n",
			},
			want: []string{"prometheus.yml: rule_files: ", "gone.yml: no such file or directory"},
		},
		{
			name:  "replica label in the file conflicts with the role",
			files: map[string]string{"monstack.yml": "prometheus:\n  config_file: prometheus.yml\n", "prometheus.yml": "global:\n  external_labels:\n    replica: z\n"},
			args:  []string{"--role=replica-a"},
			want:  []string{"field global.external_labels.replica"},
		},
		{
			name:  "role without a replica name",
			files: map[string]string{"monstack.yml": ""},
			args:  []string{"--role=replica-"},
			want:  []string{"--role", "no replica name"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			args := append([]string{"check", "config", "--config.file=" + filepath.Join(dir, "monstack.yml")}, tc.args...)
			code, out, errOut := runBin(t, bin, args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

func TestVersionAndComponents(t *testing.T) {
	bin := binPath(t, "MONSTACKD_BIN")
	code, out, _ := runBin(t, bin, "version")
	if code != 0 || !strings.Contains(out, "monstackd, version") || !strings.Contains(out, "stringlabels") {
		t.Errorf("version: exit %d: %s", code, out)
	}
	code, out, _ = runBin(t, bin, "components", "--role=replica-a")
	if code != 0 {
		t.Fatalf("components: exit %d", code)
	}
	for _, c := range []string{"http-server", "grpc-server", "tsdb", "scrape-discovery", "scrape", "notifier", "rules", "sidecar", "querier", "web", "signals"} {
		if !strings.Contains(out, "\n"+c+" ") {
			t.Errorf("components output lacks %s:\n%s", c, out)
		}
	}
}

func TestBadMemLimitRatio(t *testing.T) {
	code, _, errOut := runBin(t, binPath(t, "MONSTACKD_BIN"), "--auto-gomemlimit.ratio=1.5", "--data.dir="+t.TempDir())
	if code != 1 || !strings.Contains(errOut, "--auto-gomemlimit.ratio") {
		t.Errorf("exit %d, want 1 with an error naming --auto-gomemlimit.ratio:\n%s", code, errOut)
	}
}

// The unit must pass systemd's own linter with the built binary in place.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found; scripts/test-deps.sh installs it")
	}
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "systemd", "monstackd.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "Type=notify") || !strings.Contains(string(unit), "Restart=always") {
		t.Fatal("unit must be Type=notify with Restart=always")
	}
	path := filepath.Join(t.TempDir(), "monstackd.service")
	writeFile(t, path, strings.ReplaceAll(string(unit), "/usr/local/bin/monstackd", binPath(t, "MONSTACKD_BIN")))
	code, out, errOut := runBin(t, analyze, "verify", path)
	if code != 0 || strings.Contains(errOut, "monstackd.service:") {
		t.Fatalf("systemd-analyze verify: exit %d\n%s%s", code, out, errOut)
	}
}
