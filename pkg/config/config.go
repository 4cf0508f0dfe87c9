// Package config holds monstackd's typed configuration (monstack.yml), its
// defaults and its validation. It also loads the files monstack.yml points to
// (prometheus.yml with Prometheus' own loader, bucket.yml in Thanos' objstore
// format) so that `monstackd check config` and the daemon agree on what is valid.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultReplicaLabel is the external label that tells the two replicas of a pair apart.
const DefaultReplicaLabel = "replica"

// Config is the content of monstack.yml.
type Config struct {
	Prometheus   PrometheusConfig   `yaml:"prometheus"`
	TSDB         TSDBConfig         `yaml:"tsdb"`
	Query        QueryConfig        `yaml:"query"`
	Frontend     FrontendConfig     `yaml:"query_frontend"`
	Rules        RulesConfig        `yaml:"rules"`
	Bucket       BucketConfig       `yaml:"bucket"`
	StoreGateway StoreGatewayConfig `yaml:"store_gateway"`
	Compactor    CompactorConfig    `yaml:"compactor"`
	Peers        PeersConfig        `yaml:"peers"`
	Web          WebConfig          `yaml:"web"`

	// file is the path the config was read from ("" for the embedded default);
	// relative paths inside are resolved against its directory.
	file string
}

// PrometheusConfig points to the user's unchanged prometheus.yml.
type PrometheusConfig struct {
	// ConfigFile is the path of prometheus.yml. Empty selects the embedded
	// default, which scrapes monstackd's own /metrics.
	ConfigFile string `yaml:"config_file"`
}

// TSDBConfig tunes the local TSDB. Block durations are fixed at 2h because the
// shipper uploads only uncompacted blocks (DESIGN.md §3.7).
type TSDBConfig struct {
	Retention            Duration `yaml:"retention"`
	WALCompression       bool     `yaml:"wal_compression"`
	OutOfOrderTimeWindow Duration `yaml:"out_of_order_time_window"`
	MaxExemplars         int64    `yaml:"max_exemplars"`
	// MinFreeSpace is the disk space kept free under the TSDB directory:
	// below it appends pause (queries go on) and start-up is refused,
	// before a full disk can fail the WAL or crash the head's chunk writer.
	MinFreeSpace Bytes `yaml:"min_free_space"`
}

// QueryConfig tunes the querier and the PromQL engines.
type QueryConfig struct {
	ReplicaLabel         string   `yaml:"replica_label"`
	Timeout              Duration `yaml:"timeout"`
	LookbackDelta        Duration `yaml:"lookback_delta"`
	MaxSamples           int      `yaml:"max_samples"`
	MaxConcurrent        int      `yaml:"max_concurrent"`
	MaxConcurrentSelects int      `yaml:"max_concurrent_selects"`
	PartialResponse      bool     `yaml:"partial_response"`
	// AutoDownsampling lets range queries without max_source_resolution
	// read downsampled blocks at step/5 (stock --query.auto-downsampling),
	// so that long ranges read 5m and 1h data where the compactor wrote it.
	AutoDownsampling bool `yaml:"auto_downsampling"`
	// MaxQueryLength bounds each PromQL expression (query, match[]) before
	// it is parsed: parsing cannot be cancelled and grows faster than the
	// expression.
	MaxQueryLength Bytes `yaml:"max_query_length"`
	// MaxRequestBody bounds an API request's body.
	MaxRequestBody Bytes `yaml:"max_request_body"`
	// ShedMemoryRatio and CancelMemoryRatio are shares of the memory limit
	// (GOMEMLIMIT): above the first, new queries get 503; above the second,
	// running queries are cancelled with 503. Ingestion keeps the rest.
	ShedMemoryRatio   float64 `yaml:"shed_memory_ratio"`
	CancelMemoryRatio float64 `yaml:"cancel_memory_ratio"`
}

// RulesConfig tunes rule evaluation and alert delivery.
type RulesConfig struct {
	OutageTolerance Duration `yaml:"outage_tolerance"`
	// ForGracePeriod is Prometheus' rules.alert.for-grace-period; unset, it
	// is DefaultForGracePeriod, or 0 in a pair (see ForGrace).
	ForGracePeriod        *Duration `yaml:"for_grace_period,omitempty"`
	ResendDelay           Duration  `yaml:"resend_delay"`
	NotificationQueueSize int       `yaml:"notification_queue_capacity"`
}

// BucketConfig is the object storage in Thanos' objstore format: a
// bucket.yml file, or its fields inline. Neither selects a FILESYSTEM
// bucket under <data.dir>/bucket.
type BucketConfig struct {
	// ConfigFile is the path of an unchanged Thanos bucket.yml.
	ConfigFile string `yaml:"config_file"`
	// Type, Config and Prefix are bucket.yml's fields, inline.
	Type   string         `yaml:"type,omitempty"`
	Config map[string]any `yaml:"config,omitempty"`
	Prefix string         `yaml:"prefix,omitempty"`
}

// StoreGatewayConfig tunes the store gateway, which serves the bucket's
// blocks to the querier.
type StoreGatewayConfig struct {
	// IndexCacheSize bounds the in-memory cache of index entries (postings,
	// series) read from the bucket; 0 disables it.
	IndexCacheSize Bytes `yaml:"index_cache_size"`
	// ChunkCacheSize bounds the in-memory cache of chunk file ranges read
	// from the bucket, so that repeated queries (dashboards) over the same
	// blocks skip object storage; 0 disables it. Stock thanos store has
	// it only with --store.caching-bucket.config.
	ChunkCacheSize Bytes `yaml:"chunk_cache_size"`
	// SyncInterval is how often the bucket is listed for blocks others
	// wrote (the peer, the compactor); this host's uploads load at once.
	// Stock thanos store's --sync-block-duration.
	SyncInterval Duration `yaml:"sync_interval"`
}

// WebConfig tunes the HTTP side.
type WebConfig struct {
	ExternalURL string `yaml:"external_url"`
}

// Default returns the configuration used when no file is given and the base
// every file is decoded onto.
func Default() *Config {
	return &Config{
		TSDB: TSDBConfig{
			// 0: LocalRetention decides.
			WALCompression: true,
			MaxExemplars:   0,
			// Above a WAL segment or head chunk file's 128 MiB, so that
			// the writes in flight when appends pause still fit.
			MinFreeSpace: 256 << 20,
		},
		Query: QueryConfig{
			ReplicaLabel:         DefaultReplicaLabel,
			Timeout:              Duration(2 * time.Minute),
			LookbackDelta:        Duration(5 * time.Minute),
			MaxSamples:           50_000_000,
			MaxConcurrent:        20,
			MaxConcurrentSelects: 4,
			PartialResponse:      true,
			AutoDownsampling:     true,
			// Generated Grafana queries stay far below 16 KiB; parsing
			// 40 KB took seconds of CPU.
			MaxQueryLength:    16 << 10,
			MaxRequestBody:    1 << 20,
			ShedMemoryRatio:   0.75,
			CancelMemoryRatio: 0.85,
		},
		// Stock thanos store's --index-cache-size; the chunk cache holds
		// the chunks of a few dashboards' recent blocks.
		StoreGateway: StoreGatewayConfig{IndexCacheSize: 250 << 20, ChunkCacheSize: 128 << 20, SyncInterval: Duration(3 * time.Minute)},
		Compactor:    defaultCompactor(),
		Frontend:     defaultFrontend(),
		Peers:        PeersConfig{ResponseTimeout: DefaultPeerResponseTimeout},
		Rules: RulesConfig{
			OutageTolerance:       Duration(time.Hour),
			ResendDelay:           Duration(time.Minute),
			NotificationQueueSize: 10000,
		},
	}
}

// DefaultForGracePeriod is Prometheus' default --rules.alert.for-grace-period.
const DefaultForGracePeriod = Duration(10 * time.Minute)

// ForGrace is the minimum time a restored alert waits before it fires
// (Prometheus' for-grace-period), as set, or by default 10m for a single
// host and 0 in a pair. A single Prometheus restores pending alerts from
// its own TSDB, which has a hole where it was down, and the grace gives
// fresh scrapes a chance first; a replica of a pair restores from the
// pair's record, which its peer kept through the outage, so the alert can
// fire exactly when the pair would have.
func (c *Config) ForGrace() Duration {
	switch {
	case c.Rules.ForGracePeriod != nil:
		return *c.Rules.ForGracePeriod
	case len(c.Peers.Endpoints) > 0:
		return 0
	default:
		return DefaultForGracePeriod
	}
}

// Local retention defaults: with a bucket configured, history is served from
// the bucket and local disk is not spent on it twice.
const (
	DefaultRetention           = Duration(15 * 24 * time.Hour)
	DefaultRetentionWithBucket = Duration(24 * time.Hour)
)

// LocalRetention is tsdb.retention, or its default: 24h with a bucket
// configured (bucket.config_file or an inline bucket), else 15d.
func (c *Config) LocalRetention() Duration {
	switch {
	case c.TSDB.Retention > 0:
		return c.TSDB.Retention
	case c.Bucket.ConfigFile != "" || c.Bucket.Type != "":
		return DefaultRetentionWithBucket
	default:
		return DefaultRetention
	}
}

// File returns the path the config was loaded from, "" for the embedded default.
func (c *Config) File() string { return c.file }

// Path resolves p against the directory of monstack.yml.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.file == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.file), p)
}

// Load reads monstack.yml. An empty filename returns the embedded default.
// Unknown fields and malformed values are errors naming the file and line.
func Load(filename string) (*Config, error) {
	if filename == "" {
		return Default(), nil
	}
	b, err := os.ReadFile(filename)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, inFile(filename, err)
	}
	cfg.file = filename
	return cfg, nil
}

// Parse decodes monstack.yml content onto the defaults and validates it.
func Parse(b []byte) (*Config, error) {
	cfg := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse: %w", withFields(err, &root))
	}
	// A second document would otherwise be ignored without a word.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse: line %d: only one YAML document is allowed", extra.Line)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// inFile prefixes every joined error with the file it came from.
func inFile(file string, err error) error {
	errs := Errors(err)
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		out = append(out, fmt.Errorf("%s: %w", file, e))
	}
	return errors.Join(out...)
}

// Errors splits an error made by errors.Join into one error per problem.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Validate checks the values that decoding cannot. Errors name the field.
func (c *Config) Validate() error {
	var errs []error
	field := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("field %s: %s", name, fmt.Sprintf(format, a...)))
	}
	if c.TSDB.Retention < 0 {
		field("tsdb.retention", "must not be negative")
	}
	if c.TSDB.OutOfOrderTimeWindow < 0 {
		field("tsdb.out_of_order_time_window", "must not be negative")
	}
	if c.TSDB.MaxExemplars < 0 {
		field("tsdb.max_exemplars", "must not be negative")
	}
	if !labelNameRE.MatchString(c.Query.ReplicaLabel) {
		field("query.replica_label", "%q is not a valid label name", c.Query.ReplicaLabel)
	}
	for _, p := range []struct {
		name  string
		value int64
	}{
		{"query.timeout", int64(c.Query.Timeout)},
		{"query.lookback_delta", int64(c.Query.LookbackDelta)},
		{"query.max_samples", int64(c.Query.MaxSamples)},
		{"query.max_concurrent", int64(c.Query.MaxConcurrent)},
		{"query.max_concurrent_selects", int64(c.Query.MaxConcurrentSelects)},
		{"rules.notification_queue_capacity", int64(c.Rules.NotificationQueueSize)},
	} {
		if p.value <= 0 {
			field(p.name, "must be positive")
		}
	}
	for _, p := range []struct {
		name  string
		value Bytes
	}{
		{"query.max_query_length", c.Query.MaxQueryLength},
		{"query.max_request_body", c.Query.MaxRequestBody},
		{"tsdb.min_free_space", c.TSDB.MinFreeSpace},
	} {
		if p.value < 0 {
			field(p.name, "must not be negative (0 means no limit)")
		}
	}
	c.Compactor.validate(field)
	c.Frontend.validate(field)
	if c.StoreGateway.SyncInterval < Duration(time.Second) {
		field("store_gateway.sync_interval", "must be at least 1s")
	}
	if c.StoreGateway.IndexCacheSize < 0 {
		field("store_gateway.index_cache_size", "must not be negative (0 disables the cache)")
	}
	if c.StoreGateway.ChunkCacheSize < 0 {
		field("store_gateway.chunk_cache_size", "must not be negative (0 disables the cache)")
	}
	for _, p := range []struct {
		name  string
		value float64
	}{
		{"query.shed_memory_ratio", c.Query.ShedMemoryRatio},
		{"query.cancel_memory_ratio", c.Query.CancelMemoryRatio},
	} {
		if p.value < 0 || p.value > 1 {
			field(p.name, "%g must be in [0, 1] (0 disables it)", p.value)
		}
	}
	if c.Query.ShedMemoryRatio > 0 && c.Query.CancelMemoryRatio > 0 && c.Query.ShedMemoryRatio > c.Query.CancelMemoryRatio {
		field("query.shed_memory_ratio", "%g must not be above query.cancel_memory_ratio %g", c.Query.ShedMemoryRatio, c.Query.CancelMemoryRatio)
	}
	if c.Bucket.ConfigFile != "" && (c.Bucket.Type != "" || len(c.Bucket.Config) > 0 || c.Bucket.Prefix != "") {
		field("bucket.config_file", "set either config_file or the inline type/config/prefix, not both")
	}
	if c.Bucket.Type == "" && (len(c.Bucket.Config) > 0 || c.Bucket.Prefix != "") {
		field("bucket.type", "missing: config and prefix need a type")
	}
	if c.Rules.ForGracePeriod != nil && *c.Rules.ForGracePeriod < 0 {
		field("rules.for_grace_period", "must not be negative")
	}
	c.Peers.validate(field)
	if c.Web.ExternalURL != "" {
		if u, err := url.Parse(c.Web.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			field("web.external_url", "%q must be an absolute http(s) URL", c.Web.ExternalURL)
		}
	}
	return errors.Join(errs...)
}
