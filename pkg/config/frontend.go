package config

import (
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// FrontendConfig is the query-frontend in front of the query API: Thanos'
// tripperware, called in-process with the querier as its downstream.
type FrontendConfig struct {
	// Enabled routes query, query_range, labels, label values and series
	// through the frontend; off, they go to the querier directly.
	Enabled bool `yaml:"enabled"`
	// AlignRangeWithStep moves a range query's start and end to multiples
	// of its step, so that refreshes hit the cache (Grafana aligns too).
	AlignRangeWithStep bool `yaml:"align_range_with_step"`
	// QueryRange tunes range queries; Labels tunes labels, label values and
	// series requests.
	QueryRange FrontendOpConfig `yaml:"query_range"`
	Labels     FrontendOpConfig `yaml:"labels"`
	// LabelsDefaultTimeRange is the range of labels and series requests
	// that name none (stock --labels.default-time-range).
	LabelsDefaultTimeRange Duration `yaml:"labels_default_time_range"`
	// LogQueriesLongerThan logs slower queries with their parameters; 0
	// logs none.
	LogQueriesLongerThan Duration `yaml:"log_queries_longer_than"`
	// AnswerCacheSize bounds the encoded answers kept of requests the
	// results cache answered whole, written again as they were; 0 keeps
	// none.
	AnswerCacheSize Bytes `yaml:"answer_cache_size"`
	// QueryStats logs every query's statistics and answers with a
	// Server-Timing header (stock --query-frontend.force-query-stats).
	QueryStats bool `yaml:"query_stats"`
}

// FrontendOpConfig tunes one kind of request in the frontend.
type FrontendOpConfig struct {
	// SplitInterval splits a request into one per interval (aligned on
	// it), run in parallel and cached each on its own; 0 does not split.
	SplitInterval Duration `yaml:"split_interval"`
	// MaxRetries retries a failed downstream request (5xx) this often.
	MaxRetries int `yaml:"max_retries"`
	// MaxQueryParallelism bounds the split requests run at once.
	MaxQueryParallelism int `yaml:"max_query_parallelism"`
	// ResultsCache caches answers.
	ResultsCache ResultsCacheConfig `yaml:"results_cache"`
}

// ResultsCacheConfig is a results cache: Thanos' response cache config
// (type IN-MEMORY, MEMCACHED or REDIS), from a file as stock
// --query-range.response-cache-config-file takes it, or inline.
type ResultsCacheConfig struct {
	Enabled bool `yaml:"enabled"`
	// MaxFreshness: samples newer than this are never cached, answers
	// about them always asked for (stock --*.response-cache-max-freshness).
	MaxFreshness Duration `yaml:"max_freshness"`
	// ConfigFile is the path of an unchanged Thanos response cache config.
	ConfigFile string `yaml:"config_file"`
	// Type and Config are its fields, inline. With neither, answers are
	// cached IN-MEMORY, up to the size the frontend gives.
	Type   string         `yaml:"type,omitempty"`
	Config map[string]any `yaml:"config,omitempty"`
}

// Default in-memory results cache sizes.
const (
	DefaultRangeCacheSize  = "128MB"
	DefaultLabelsCacheSize = "32MB"
)

func defaultFrontend() FrontendConfig {
	// Stock thanos query-frontend's defaults.
	op := FrontendOpConfig{
		SplitInterval:       Duration(24 * time.Hour),
		MaxRetries:          5,
		MaxQueryParallelism: 14,
		ResultsCache:        ResultsCacheConfig{Enabled: true, MaxFreshness: Duration(time.Minute)},
	}
	return FrontendConfig{
		Enabled:                true,
		AlignRangeWithStep:     true,
		QueryRange:             op,
		Labels:                 op,
		LabelsDefaultTimeRange: Duration(24 * time.Hour),
		AnswerCacheSize:        32 << 20,
	}
}

// CacheYAML returns a results cache's config in Thanos' format, and where
// it comes from for errors: "<file>: " or "<monstack.yml>: field <name>: ";
// with neither file nor type, an IN-MEMORY cache of defaultSize.
func (c *Config) CacheYAML(name string, rc ResultsCacheConfig, defaultSize string) (content []byte, where string, err error) {
	switch {
	case rc.ConfigFile == "" && rc.Type == "":
		rc.Type, rc.Config = "IN-MEMORY", map[string]any{"max_size": defaultSize}
	case rc.ConfigFile != "":
		file := c.Path(rc.ConfigFile)
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, file + ": ", fmt.Errorf("read response cache config: %w", err)
		}
		return b, file + ": ", nil
	}
	b, err := yaml.Marshal(struct {
		Type   string         `yaml:"type"`
		Config map[string]any `yaml:"config,omitempty"`
	}{rc.Type, rc.Config})
	return b, c.name() + ": field " + name + ": ", err
}

func (f *FrontendConfig) validate(field func(name, format string, a ...any)) {
	for _, o := range []struct {
		name string
		op   FrontendOpConfig
	}{{"query_frontend.query_range", f.QueryRange}, {"query_frontend.labels", f.Labels}} {
		name, op := o.name, o.op
		if op.SplitInterval < 0 {
			field(name+".split_interval", "must not be negative (0 does not split)")
		}
		if op.SplitInterval == 0 && op.ResultsCache.Enabled {
			field(name+".split_interval", "must be positive with the results cache: answers are cached per interval")
		}
		if op.MaxRetries < 0 {
			field(name+".max_retries", "must not be negative")
		}
		if op.MaxQueryParallelism <= 0 {
			field(name+".max_query_parallelism", "must be positive")
		}
		rc := op.ResultsCache
		if rc.MaxFreshness < 0 {
			field(name+".results_cache.max_freshness", "must not be negative")
		}
		if rc.ConfigFile != "" && (rc.Type != "" || len(rc.Config) > 0) {
			field(name+".results_cache.config_file", "set either config_file or the inline type/config, not both")
		}
		if rc.Type == "" && len(rc.Config) > 0 {
			field(name+".results_cache.type", "missing: config needs a type (IN-MEMORY, MEMCACHED or REDIS)")
		}
	}
	if f.LabelsDefaultTimeRange <= 0 {
		field("query_frontend.labels_default_time_range", "must be positive")
	}
	if f.AnswerCacheSize < 0 {
		field("query_frontend.answer_cache_size", "must not be negative (0 keeps none)")
	}
	if f.LogQueriesLongerThan < 0 {
		field("query_frontend.log_queries_longer_than", "must not be negative (0 logs none)")
	}
}
