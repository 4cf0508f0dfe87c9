package config

import (
	promconfig "github.com/prometheus/prometheus/config"
)

// Per-scrape limits monstackd applies where prometheus.yml sets none, in
// global: or in the job. Prometheus' defaults are all unlimited, so one
// runaway target (a cardinality bug, a misrouted port serving a dump) can
// grow the head until the process is killed: 4.3M series from one 100 MB
// exposition took it past 5 GB within a minute. A scrape over a limit fails
// as a whole (up 0, prometheus_target_scrapes_exceeded_*_total) and the
// other targets go on. The values leave ample headroom for real exporters:
//   - body_size_limit 50 MiB: uncompressed; node_exporter is ~0.1-0.5 MB and
//     kube-state-metrics of a large cluster tens of MB. It is checked while
//     reading, so a bigger body is never buffered whole or parsed.
//   - sample_limit 200,000: above any single well-behaved exporter, and the
//     order of a whole tenant's series budget in Grafana Mimir (150,000).
//   - label_limit 64, label_name_length_limit 1024, label_value_length_limit
//     2048: twice Mimir's max_label_names_per_series (30), and Mimir's
//     max_label_name_length and max_label_value_length, so series accepted
//     here are also accepted by a Mimir/Cortex remote-write receiver.
//
// A value in the file, including 0 (unlimited), wins.
const (
	DefaultBodySizeLimit         = 50 << 20
	DefaultSampleLimit           = 200_000
	DefaultLabelLimit            = 64
	DefaultLabelNameLengthLimit  = 1024
	DefaultLabelValueLengthLimit = 2048
)

// sets reports whether the section has key with a value (YAML null is unset,
// as it is for Prometheus).
func sets(section map[string]any, key string) bool {
	v, ok := section[key]
	return ok && v != nil
}

// job returns the raw section of the job named name.
func (r *rawPrometheus) job(name string) map[string]any {
	for _, j := range r.ScrapeConfigs {
		if n, _ := j["job_name"].(string); n == name {
			return j
		}
	}
	return nil
}

// applyScrapeLimits sets each default limit that neither global: nor the job
// sets. Prometheus copied a global value into every job that sets none when
// it loaded the file, so with global: set there is nothing to do. Jobs of
// scrape_config_files are loaded later from GlobalConfig, so they inherit
// the defaults set there.
func applyScrapeLimits(pcfg *promconfig.Config, raw *rawPrometheus) {
	limits := []struct {
		key    string
		global func(*promconfig.GlobalConfig)
		job    func(*promconfig.ScrapeConfig)
	}{
		{"body_size_limit",
			func(g *promconfig.GlobalConfig) { g.BodySizeLimit = DefaultBodySizeLimit },
			func(s *promconfig.ScrapeConfig) { s.BodySizeLimit = DefaultBodySizeLimit }},
		{"sample_limit",
			func(g *promconfig.GlobalConfig) { g.SampleLimit = DefaultSampleLimit },
			func(s *promconfig.ScrapeConfig) { s.SampleLimit = DefaultSampleLimit }},
		{"label_limit",
			func(g *promconfig.GlobalConfig) { g.LabelLimit = DefaultLabelLimit },
			func(s *promconfig.ScrapeConfig) { s.LabelLimit = DefaultLabelLimit }},
		{"label_name_length_limit",
			func(g *promconfig.GlobalConfig) { g.LabelNameLengthLimit = DefaultLabelNameLengthLimit },
			func(s *promconfig.ScrapeConfig) { s.LabelNameLengthLimit = DefaultLabelNameLengthLimit }},
		{"label_value_length_limit",
			func(g *promconfig.GlobalConfig) { g.LabelValueLengthLimit = DefaultLabelValueLengthLimit },
			func(s *promconfig.ScrapeConfig) { s.LabelValueLengthLimit = DefaultLabelValueLengthLimit }},
	}
	for _, l := range limits {
		if sets(raw.Global, l.key) {
			continue
		}
		l.global(&pcfg.GlobalConfig)
		for _, sc := range pcfg.ScrapeConfigs {
			if !sets(raw.job(sc.JobName), l.key) {
				l.job(sc)
			}
		}
	}
}
