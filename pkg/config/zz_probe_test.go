package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestZZProbe(t *testing.T) {
	dir := t.TempDir()
	w := func(name, s string) string { f := filepath.Join(dir, name); os.WriteFile(f, []byte(s), 0o644); return f }
	w("dup.yml", "scrape_configs:\n- job_name: a\n- job_name: a\n")
	w("conf.yml", "global:\n  external_labels: {replica: b}\n")
	w("bad.rules.yml", "groups:\n- name: g\n  rules:\n  - record: x\n    expr: sum(\n")
	w("p.yml", "rule_files: ['*.rules.yml', 'none/*.yml']\n")
	w("b1.yml", "type: NOPE\nconfig: {}\n")
	w("b2.yml", "config: {directory: /tmp}\n")
	w("b3.yml", "type: FILESYSTEM\nconfig: {directory: x}\n")
	w("b4.yml", "type: S3\nconfig: {bucket: x, endpoint: 'localhost:9000', insecure: true, access_key: a, secret_key: b}\n")
	w("b5.yml", "type: [1\n")
	for _, p := range []string{"dup.yml", "conf.yml", "missing.yml", "p.yml"} {
		c := Default(); c.file = filepath.Join(dir, "monstack.yml"); c.Prometheus.ConfigFile = p
		r, _ := ParseRole("replica-a")
		_, err := c.LoadPrometheus(Runtime{Role: r, HTTPAddress: ":9090"}, nil)
		t.Logf("%s -> %v", p, err)
		t.Logf("check %v", c.Check(Runtime{Role: r, HTTPAddress: ":9090"}, nil))
	}
	for _, b := range []string{"b1.yml", "b2.yml", "b3.yml", "b4.yml", "b5.yml", "bmissing.yml"} {
		c := Default(); c.file = filepath.Join(dir, "monstack.yml"); c.Bucket.ConfigFile = b
		t.Logf("%s check %v", b, c.Check(Runtime{HTTPAddress: ":9090", DataDir: dir}, nil))
	}
}
