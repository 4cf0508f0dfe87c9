package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	promconfig "github.com/prometheus/prometheus/config"
)

// A literal rule file that is missing is an error naming it; a glob that
// matches nothing is not, as in Prometheus. The files found come back too.
func TestRuleFilesMissingLiteralFile(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yml", "")
	missing := filepath.Join(dir, "gone.yml")
	got, err := RuleFiles(&promconfig.Config{RuleFiles: []string{a, missing, filepath.Join(dir, "none/*.yml"), filepath.Join(dir, "gone?.yml")}})
	if want := []string{a}; !reflect.DeepEqual(got, want) {
		t.Errorf("RuleFiles = %q, want %q", got, want)
	}
	if errs := Errors(err); len(errs) != 1 {
		t.Fatalf("RuleFiles error %v, want one", err)
	}
	assertContains(t, err, "rule_files", missing, "no such file")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap os.ErrNotExist", err)
	}
}

func TestCheckMissingRuleFile(t *testing.T) {
	dir := t.TempDir()
	prom := writeFile(t, dir, "prometheus.yml", "rule_files: [gone.yml, other-gone.yml, 'globs/*.yml']\n")
	cfg := checkSetup(t, dir, "prometheus: {config_file: prometheus.yml}\n")
	errs := cfg.Check(runtimeFor(t, dir), nil)
	if len(errs) != 2 {
		t.Fatalf("Check() = %v, want one error per missing file", errs)
	}
	assertContains(t, errs[0], prom, filepath.Join(dir, "gone.yml"))
	assertContains(t, errs[1], prom, filepath.Join(dir, "other-gone.yml"))
}

// Every rule file error names the file and the line.
func TestCheckRuleFileErrorsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"expression", "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: sum(up\n", []string{": 5:15: ", "could not parse expression"}},
		{"yaml syntax, listed once", "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: \"sum(up)\n", []string{"line 5", "found unexpected end of stream"}},
		{"unknown field", "groups:\n  - name: g\n    rules:\n      - record: r\n        exr: up\n", []string{"line 5", "field exr"}},
		{"repeated group", "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n", []string{": 4:5: ", `"g" is repeated`}},
		{"empty group name", "groups:\n  - name: g\n    rules: []\n  - name: ''\n    rules: []\n", []string{": 4:5: ", "must not be empty"}},
		{"bad group label", "groups:\n  - name: g\n    labels:\n      __name__: x\n    rules: []\n", []string{"line 4", "invalid label name: __name__"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "prometheus.yml", "rule_files: [rules.yml]\n")
			file := writeFile(t, dir, "rules.yml", tc.content)
			cfg := checkSetup(t, dir, "prometheus: {config_file: prometheus.yml}\n")
			errs := cfg.Check(runtimeFor(t, dir), nil)
			if len(errs) != 1 {
				t.Fatalf("Check() = %v, want one error", errs)
			}
			assertContains(t, errs[0], append([]string{file + ": "}, tc.want...)...)
			if strings.Contains(errs[0].Error(), "0:0:") {
				t.Errorf("error %q has no position", errs[0])
			}
		})
	}
}
