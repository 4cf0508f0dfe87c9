package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Start-up runs the validation of check config: a bucket.yml of an unknown
// type and a missing rule file are each reported with file and field, and
// the daemon exits 1 without opening the TSDB.
func TestStartupRefusesInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\nbucket:\n  config_file: bucket.yml\n")
	writeFile(t, filepath.Join(dir, "prometheus.yml"), "rule_files: [gone.yml]\n")
	writeFile(t, filepath.Join(dir, "bucket.yml"), "type: NOPE\nconfig: {}\n")
	p := startProcess(t, "monstackd", binPath(t, "MONSTACKD_BIN"), nil,
		"--config.file="+filepath.Join(dir, "monstack.yml"), "--data.dir="+filepath.Join(dir, "data"),
		"--http.address="+freeAddr(t), "--grpc.address="+freeAddr(t))
	if code := p.wait(t, 30*time.Second); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	out := p.out.String()
	for _, want := range []string{
		filepath.Join(dir, "bucket.yml") + `: field type: \"NOPE\" is not supported`,
		filepath.Join(dir, "prometheus.yml") + ": rule_files: " + filepath.Join(dir, "gone.yml") + ": no such file",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "opening TSDB") {
		t.Errorf("the TSDB was opened before the configuration was checked:\n%s", out)
	}
}

// A reload that loses a rule file, or breaks one, is rejected naming the
// file (and the line), and the old rules run on.
func TestReloadRejectsBadRuleFiles(t *testing.T) {
	dir := t.TempDir()
	monstackFile := filepath.Join(dir, "monstack.yml")
	promFile := filepath.Join(dir, "prometheus.yml")
	rulesFile := filepath.Join(dir, "rules.yml")
	writeFile(t, monstackFile, "prometheus:\n  config_file: prometheus.yml\n")
	writeFile(t, promFile, "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n")
	writeFile(t, rulesFile, rulesYAML)
	d := startDaemon(t, filepath.Join(dir, "data"), nil, "--config.file="+monstackFile)
	rulesLoaded := func() error {
		data, err := d.api("/api/v1/rules", nil)
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), `"name":"e2e"`) {
			return fmt.Errorf("group e2e not loaded: %s", data)
		}
		return nil
	}
	eventually(t, 15*time.Second, "rules loaded", rulesLoaded)

	for _, tc := range []struct {
		name  string
		spoil func()
		want  string
	}{
		{"missing rule file", func() {
			if err := os.Remove(rulesFile); err != nil {
				t.Fatal(err)
			}
		}, promFile + ": rule_files: " + rulesFile + ": no such file"},
		{"bad rule file", func() {
			writeFile(t, rulesFile, "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: sum(up\n")
		}, rulesFile + ": 5:15: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(rulesFile); err != nil {
				writeFile(t, rulesFile, rulesYAML)
			}
			tc.spoil()
			code, out, errOut := runBin(t, binPath(t, "MONSTACKD_BIN"), "check", "config", "--config.file="+monstackFile)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("check config: exit %d, want 1 naming %q:\n%s%s", code, tc.want, out, errOut)
			}
			logged := strings.Count(d.out.String(), tc.want)
			d.signal(t, syscall.SIGHUP)
			eventually(t, 15*time.Second, "failed reload reported", func() error {
				if v, err := d.metric("prometheus_config_last_reload_successful"); err != nil || v != 0 {
					return fmt.Errorf("prometheus_config_last_reload_successful = %v, %v; want 0", v, err)
				}
				if strings.Count(d.out.String(), tc.want) == logged {
					return fmt.Errorf("log does not name %q yet", tc.want)
				}
				return nil
			})
			if err := rulesLoaded(); err != nil {
				t.Errorf("old rules gone after a rejected reload: %v", err)
			}
			if !d.alive() {
				t.Fatal("monstackd exited")
			}
			writeFile(t, rulesFile, rulesYAML)
			d.signal(t, syscall.SIGHUP)
			eventually(t, 15*time.Second, "reload succeeds once fixed", func() error {
				if v, err := d.metric("prometheus_config_last_reload_successful"); err != nil || v != 1 {
					return fmt.Errorf("prometheus_config_last_reload_successful = %v, %v; want 1", v, err)
				}
				return nil
			})
		})
	}
}
