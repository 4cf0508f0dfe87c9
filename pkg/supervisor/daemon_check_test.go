package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Start-up runs the validation of check config and reload: a bad bucket.yml
// and a missing rule file are both reported, before anything is opened.
func TestRunRefusesInvalidConfig(t *testing.T) {
	d := newTestDaemon(t, "rule_files: [gone.yml]\n", Options{})
	bucket := filepath.Join(d.dir, "bucket.yml")
	if err := os.WriteFile(bucket, []byte("type: NOPE\nconfig: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.opts.ConfigFile, []byte("prometheus:\n  config_file: prometheus.yml\nbucket:\n  config_file: bucket.yml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := d.Run(ctx)
	if err == nil {
		t.Fatal("Run started with an invalid configuration")
	}
	for _, want := range []string{bucket, "NOPE", filepath.Join(d.dir, "gone.yml"), "2 problems"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run error %q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(d.opts.Runtime.DataDir); err == nil {
		t.Errorf("the data dir was created before the configuration was checked")
	}
}

// A reload that would lose a rule file keeps the running configuration.
func TestReloadRejectsMissingRuleFile(t *testing.T) {
	d := newTestDaemon(t, "rule_files: [rules.yml]\n", Options{})
	rules := filepath.Join(d.dir, "rules.yml")
	if err := os.WriteFile(rules, []byte("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: vector(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.start(t)
	if err := os.Remove(rules); err != nil {
		t.Fatal(err)
	}
	err := d.reload()
	if err == nil || !strings.Contains(err.Error(), rules) {
		t.Fatalf("reload with a missing rule file: %v, want an error naming %s", err, rules)
	}
	if v := gatherValue(t, d, "prometheus_config_last_reload_successful", nil); v != 0 {
		t.Errorf("prometheus_config_last_reload_successful = %v, want 0", v)
	}
	if _, body, err := d.get("/prometheus/api/v1/rules"); err != nil || !strings.Contains(body, `"name":"g"`) {
		t.Errorf("rules after the failed reload: %v %s, want the old group g", err, body)
	}
}
