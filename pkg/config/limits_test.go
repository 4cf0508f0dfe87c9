package config

import (
	"strings"
	"testing"

	"github.com/alecthomas/units"
	promconfig "github.com/prometheus/prometheus/config"
)

type limits struct {
	body                           units.Base2Bytes
	samples, labels, names, values uint
}

var defaults = limits{DefaultBodySizeLimit, DefaultSampleLimit, DefaultLabelLimit, DefaultLabelNameLengthLimit, DefaultLabelValueLengthLimit}

func jobLimits(s *promconfig.ScrapeConfig) limits {
	return limits{s.BodySizeLimit, s.SampleLimit, s.LabelLimit, s.LabelNameLengthLimit, s.LabelValueLengthLimit}
}

// The defaults fill what neither global: nor the job sets; any value in the
// file wins, 0 (unlimited) included.
func TestLoadPrometheusScrapeLimits(t *testing.T) {
	pcfg, _, err := loadProm(t, "", `
global:
  sample_limit: 1000
  label_limit: 0
scrape_configs:
  - job_name: plain
    static_configs: [{targets: ["a:1"]}]
  - job_name: own
    body_size_limit: 1MB
    sample_limit: 5
    label_name_length_limit: 0
    label_value_length_limit: 100
    static_configs: [{targets: ["a:1"]}]
`, "standalone")
	if err != nil {
		t.Fatal(err)
	}
	plain := limits{DefaultBodySizeLimit, 1000, 0, DefaultLabelNameLengthLimit, DefaultLabelValueLengthLimit}
	if got := jobLimits(pcfg.ScrapeConfigs[0]); got != plain {
		t.Errorf("job plain: %+v, want %+v", got, plain)
	}
	own := limits{units.MiB, 5, 0, 0, 100}
	if got := jobLimits(pcfg.ScrapeConfigs[1]); got != own {
		t.Errorf("job own: %+v, want %+v", got, own)
	}
	g := pcfg.GlobalConfig
	if got := (limits{g.BodySizeLimit, g.SampleLimit, g.LabelLimit, g.LabelNameLengthLimit, g.LabelValueLengthLimit}); got != plain {
		t.Errorf("global: %+v, want %+v", got, plain)
	}
	// /api/v1/status/config shows the effective values.
	for _, want := range []string{"body_size_limit: 50MiB", "sample_limit: 1000", "label_value_length_limit: 2048"} {
		if !strings.Contains(pcfg.String(), want) {
			t.Errorf("config YAML lacks %q:\n%s", want, pcfg)
		}
	}
}

func TestLoadPrometheusScrapeLimitsEmbeddedAndScrapeConfigFiles(t *testing.T) {
	pcfg, err := Default().LoadPrometheus(Runtime{Role: mustRole(t, "standalone"), HTTPAddress: ":9090"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := jobLimits(pcfg.ScrapeConfigs[0]); got != defaults {
		t.Errorf("embedded default job: %+v, want %+v", got, defaults)
	}

	dir := t.TempDir()
	writeFile(t, dir, "jobs.yml", "scrape_configs:\n  - job_name: extra\n    sample_limit: 7\n    static_configs: [{targets: ['a:1']}]\n")
	writeFile(t, dir, "prometheus.yml", "scrape_config_files: [jobs.yml]\n")
	cfg := checkSetup(t, dir, "prometheus: {config_file: prometheus.yml}\n")
	if pcfg, err = cfg.LoadPrometheus(runtimeFor(t, dir), nil); err != nil {
		t.Fatal(err)
	}
	scfgs, err := pcfg.GetScrapeConfigs()
	if err != nil {
		t.Fatal(err)
	}
	want := defaults
	want.samples = 7
	if got := jobLimits(scfgs[0]); got != want {
		t.Errorf("job of scrape_config_files: %+v, want %+v", got, want)
	}
}
