package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"gopkg.in/yaml.v3"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadString writes content as monstack.yml in a fresh temp dir and loads it.
func loadString(t *testing.T, content string) (*Config, string, error) {
	t.Helper()
	file := writeFile(t, t.TempDir(), "monstack.yml", content)
	cfg, err := Load(file)
	return cfg, file, err
}

func mustLoad(t *testing.T, file string) *Config {
	t.Helper()
	cfg, err := Load(file)
	if err != nil {
		t.Fatalf("Load(%s): %v", file, err)
	}
	return cfg
}

func mustRole(t *testing.T, s string) Role {
	t.Helper()
	r, err := ParseRole(s)
	if err != nil {
		t.Fatalf("ParseRole(%q): %v", s, err)
	}
	return r
}

func assertContains(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestLoadEmptyFilenameReturnsDefaults(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("Load(\"\") = %+v, want Default() %+v", cfg, Default())
	}
	if cfg.File() != "" {
		t.Errorf("File() = %q, want \"\" for the embedded default", cfg.File())
	}
}

func TestLoadEmptyFileGivesDefaults(t *testing.T) {
	for name, content := range map[string]string{
		"empty":         "",
		"only comments": "# nothing here\n\n# still nothing\n",
		"explicit null": "~\n",
	} {
		t.Run(name, func(t *testing.T) {
			cfg, file, err := loadString(t, content)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.File() != file {
				t.Errorf("File() = %q, want %q", cfg.File(), file)
			}
			got := *cfg
			got.file = ""
			if !reflect.DeepEqual(&got, Default()) {
				t.Errorf("config from %q = %+v, want defaults %+v", content, got, Default())
			}
		})
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestLoadOverridesDefaults(t *testing.T) {
	cfg, _, err := loadString(t, `
prometheus:
  config_file: prom/prometheus.yml
tsdb:
  retention: 30d
  wal_compression: false
  out_of_order_time_window: 10m
  max_exemplars: 100
  min_free_space: 1GiB
query:
  replica_label: dc_replica
  timeout: 30s
  lookback_delta: 1m
  max_samples: 1000
  max_concurrent: 2
  max_concurrent_selects: 1
  partial_response: false
  auto_downsampling: false
  max_query_length: 4KiB
  max_request_body: 65536
  shed_memory_ratio: 0.5
  cancel_memory_ratio: 0.6
query_frontend:
  enabled: false
  align_range_with_step: false
  query_range:
    split_interval: 12h
    max_retries: 1
    max_query_parallelism: 4
    results_cache:
      enabled: true
      max_freshness: 5m
      config_file: cache.yml
  labels:
    split_interval: 0s
    max_retries: 0
    max_query_parallelism: 2
    results_cache:
      enabled: false
      type: MEMCACHED
      config:
        addresses: [memcached:11211]
  labels_default_time_range: 1h
  answer_cache_size: 8MiB
  log_queries_longer_than: 10s
  query_stats: true
rules:
  outage_tolerance: 2h
  for_grace_period: 5m
  resend_delay: 30s
  notification_queue_capacity: 5
bucket:
  config_file: /etc/monstack/bucket.yml
store_gateway:
  index_cache_size: 64MiB
  chunk_cache_size: 32MiB
  sync_interval: 30s
compactor:
  enabled: false
  lease:
    enabled: false
    ttl: 20s
  interval: 1m
  dir: /scratch/compactor
  concurrency: 2
  downsample_concurrency: 3
  delete_delay: 1h
  consistency_delay: 0s
  deduplication: false
  downsampling: false
  retention:
    raw: 30d
    5m: 90d
    1h: 1y
peers:
  endpoints: [hostb:10901]
  response_timeout: 2s
  tls_config:
    ca_file: ca.crt
    cert_file: a.crt
    key_file: a.key
    server_name: hostb
web:
  external_url: https://prom.example.com/monstack
`)
	if err != nil {
		t.Fatal(err)
	}
	d := func(x time.Duration) Duration { return Duration(x) }
	want := Config{
		Prometheus: PrometheusConfig{ConfigFile: "prom/prometheus.yml"},
		TSDB: TSDBConfig{
			Retention:            d(30 * 24 * time.Hour),
			WALCompression:       false,
			OutOfOrderTimeWindow: d(10 * time.Minute),
			MaxExemplars:         100,
			MinFreeSpace:         1 << 30,
		},
		Query: QueryConfig{
			ReplicaLabel:         "dc_replica",
			Timeout:              d(30 * time.Second),
			LookbackDelta:        d(time.Minute),
			MaxSamples:           1000,
			MaxConcurrent:        2,
			MaxConcurrentSelects: 1,
			PartialResponse:      false,
			MaxQueryLength:       4 << 10,
			MaxRequestBody:       64 << 10,
			ShedMemoryRatio:      0.5,
			CancelMemoryRatio:    0.6,
		},
		Frontend: FrontendConfig{
			QueryRange: FrontendOpConfig{
				SplitInterval: d(12 * time.Hour), MaxRetries: 1, MaxQueryParallelism: 4,
				ResultsCache: ResultsCacheConfig{Enabled: true, MaxFreshness: d(5 * time.Minute), ConfigFile: "cache.yml"},
			},
			Labels: FrontendOpConfig{
				MaxQueryParallelism: 2,
				ResultsCache: ResultsCacheConfig{MaxFreshness: d(time.Minute), Type: "MEMCACHED",
					Config: map[string]any{"addresses": []any{"memcached:11211"}}},
			},
			LabelsDefaultTimeRange: d(time.Hour),
			AnswerCacheSize:        8 << 20,
			LogQueriesLongerThan:   d(10 * time.Second),
			QueryStats:             true,
		},
		Rules: RulesConfig{
			OutageTolerance:       d(2 * time.Hour),
			ForGracePeriod:        ptr(d(5 * time.Minute)),
			ResendDelay:           d(30 * time.Second),
			NotificationQueueSize: 5,
		},
		Bucket:       BucketConfig{ConfigFile: "/etc/monstack/bucket.yml"},
		StoreGateway: StoreGatewayConfig{IndexCacheSize: 64 << 20, ChunkCacheSize: 32 << 20, SyncInterval: d(30 * time.Second)},
		Compactor: CompactorConfig{
			Lease:                 LeaseConfig{TTL: d(20 * time.Second)},
			Interval:              d(time.Minute),
			Dir:                   "/scratch/compactor",
			Concurrency:           2,
			DownsampleConcurrency: 3,
			DeleteDelay:           d(time.Hour),
			Retention:             RetentionConfig{Raw: d(30 * 24 * time.Hour), FiveMin: d(90 * 24 * time.Hour), OneHour: d(365 * 24 * time.Hour)},
		},
		Peers: PeersConfig{
			Endpoints:       []string{"hostb:10901"},
			ResponseTimeout: d(2 * time.Second),
			TLS:             ClientTLSConfig{CAFile: "ca.crt", CertFile: "a.crt", KeyFile: "a.key", ServerName: "hostb"},
		},
		Web: WebConfig{ExternalURL: "https://prom.example.com/monstack"},
	}
	got := *cfg
	got.file = ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadPartialSectionKeepsOtherDefaults(t *testing.T) {
	cfg, _, err := loadString(t, "query:\n  timeout: 10s\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Default().Query
	want.Timeout = Duration(10 * time.Second)
	if cfg.Query != want {
		t.Errorf("Query = %+v, want %+v", cfg.Query, want)
	}
	if cfg.TSDB != Default().TSDB || cfg.Rules != Default().Rules {
		t.Errorf("untouched sections changed: %+v %+v", cfg.TSDB, cfg.Rules)
	}
}

func TestLoadMissingFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "monstack.yml")
	_, err := Load(file)
	assertContains(t, err, file)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap os.ErrNotExist", err)
	}
}

func TestLoadInvalid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		// Every string must appear in the error, besides the file name.
		want []string
	}{
		{
			name:    "unknown top-level field",
			content: "tsdb: {}\nbogus: 1\n",
			want:    []string{"line 2", "field bogus not found"},
		},
		{
			name:    "unknown nested field",
			content: "tsdb:\n  retention: 1d\n  retension: 2d\n",
			want:    []string{"line 3", "field tsdb.retension", "field retension not found"},
		},
		{
			name:    "unknown field in query",
			content: "query:\n  replica_labels: [a]\n",
			want:    []string{"line 2", "field query.replica_labels", "not found"},
		},
		{
			name:    "wrong type for int",
			content: "query:\n  max_samples: lots\n",
			want:    []string{"line 2", "field query.max_samples", "lots"},
		},
		{
			name:    "wrong type for section",
			content: "tsdb: [1, 2]\n",
			want:    []string{"line 1", "TSDBConfig"},
		},
		{
			name:    "peer endpoint without a port",
			content: "peers:\n  endpoints: [hostb:10901, hostb]\n",
			want:    []string{"field peers.endpoints[1]", `"hostb" is not a host:port address`},
		},
		{
			name:    "peer response timeout zero",
			content: "peers:\n  response_timeout: 0s\n",
			want:    []string{"field peers.response_timeout", "must be positive"},
		},
		{
			name:    "peer client certificate without key",
			content: "peers:\n  tls_config: {cert_file: a.crt}\n",
			want:    []string{"field peers.tls_config.key_file", "cert_file needs key_file"},
		},
		{
			name:    "peer tls unknown field",
			content: "peers:\n  tls_config: {ca: a.crt}\n",
			want:    []string{"line 2", "field peers.tls_config", "field ca not found"},
		},
		{
			name:    "malformed yaml",
			content: "tsdb: {retention: 1d\n",
			want:    []string{"line"},
		},
		{
			// Flow style: errors carry only a line, and on this line the
			// outer key (tsdb) is what gets named, not tsdb.retention.
			name:    "bad duration unit, flow style",
			content: "tsdb: {retention: 5x}\n",
			want:    []string{"line 1", "invalid duration", `"5x"`},
		},
		{
			name:    "bad duration unit",
			content: "query:\n  timeout: 1m\ntsdb:\n  wal_compression: true\n  retention: 5x\n",
			want:    []string{"line 5", "field tsdb.retention", "invalid duration", `"5x"`},
		},
		{
			name:    "bad duration syntax",
			content: "rules:\n  resend_delay: soon\n",
			want:    []string{"line 2", "field rules.resend_delay", `"soon"`},
		},
		{
			name:    "duration of the wrong kind",
			content: "rules:\n  for_grace_period: [1m]\n",
			want:    []string{"line 2", "field rules.for_grace_period"},
		},
		{
			// Durations have no sign, so a negative retention is a parse
			// error rather than a Validate error.
			name:    "negative duration",
			content: "tsdb:\n  retention: -1d\n",
			want:    []string{"line 2", "field tsdb.retention", `"-1d"`},
		},
		{
			name:    "zero query.timeout",
			content: "query: {timeout: 0s}\n",
			want:    []string{"field query.timeout", "must be positive"},
		},
		{
			name:    "zero compactor.concurrency",
			content: "compactor: {concurrency: 0}\n",
			want:    []string{"field compactor.concurrency", "must be positive"},
		},
		{
			name:    "compactor.lease.ttl too short",
			content: "compactor: {lease: {ttl: 100ms}}\n",
			want:    []string{"field compactor.lease.ttl", "at least 1s"},
		},
		{
			name:    "raw retention shorter than downsampling needs",
			content: "compactor: {retention: {raw: 1d}}\n",
			want:    []string{"field compactor.retention.raw", "1d16h", "compactor.downsampling: false"},
		},
		{
			name:    "results cache without split interval",
			content: "query_frontend: {query_range: {split_interval: 0s}}\n",
			want:    []string{"field query_frontend.query_range.split_interval", "with the results cache"},
		},
		{
			name:    "results cache file and inline type",
			content: "query_frontend: {labels: {results_cache: {config_file: c.yml, type: REDIS}}}\n",
			want:    []string{"field query_frontend.labels.results_cache.config_file", "not both"},
		},
		{
			name:    "zero query_frontend.query_range.max_query_parallelism",
			content: "query_frontend: {query_range: {max_query_parallelism: 0}}\n",
			want:    []string{"field query_frontend.query_range.max_query_parallelism", "must be positive"},
		},
		{
			name:    "zero query.lookback_delta",
			content: "query: {lookback_delta: 0s}\n",
			want:    []string{"field query.lookback_delta", "must be positive"},
		},
		{
			name:    "zero query.max_samples",
			content: "query: {max_samples: 0}\n",
			want:    []string{"field query.max_samples", "must be positive"},
		},
		{
			name:    "negative query.max_samples",
			content: "query: {max_samples: -5}\n",
			want:    []string{"field query.max_samples", "must be positive"},
		},
		{
			name:    "zero query.max_concurrent",
			content: "query: {max_concurrent: 0}\n",
			want:    []string{"field query.max_concurrent:", "must be positive"},
		},
		{
			name:    "zero query.max_concurrent_selects",
			content: "query: {max_concurrent_selects: 0}\n",
			want:    []string{"field query.max_concurrent_selects", "must be positive"},
		},
		{
			name:    "bad query.max_query_length",
			content: "query:\n  max_query_length: 16 kilobytes\n",
			want:    []string{"line 2", "field query.max_query_length", `invalid size "16 kilobytes"`},
		},
		{
			name:    "negative query.max_request_body",
			content: "query: {max_request_body: -1}\n",
			want:    []string{"field query.max_request_body", "must not be negative"},
		},
		{
			name:    "query.cancel_memory_ratio above 1",
			content: "query: {cancel_memory_ratio: 1.5}\n",
			want:    []string{"field query.cancel_memory_ratio", "1.5 must be in [0, 1]"},
		},
		{
			name:    "shed above cancel",
			content: "query: {shed_memory_ratio: 0.9, cancel_memory_ratio: 0.8}\n",
			want:    []string{"field query.shed_memory_ratio", "must not be above query.cancel_memory_ratio"},
		},
		{
			name:    "negative store_gateway.index_cache_size",
			content: "store_gateway: {index_cache_size: -1}\n",
			want:    []string{"field store_gateway.index_cache_size", "must not be negative"},
		},
		{
			name:    "negative store_gateway.chunk_cache_size",
			content: "store_gateway: {chunk_cache_size: -1}\n",
			want:    []string{"field store_gateway.chunk_cache_size", "must not be negative"},
		},
		{
			name:    "store_gateway.index_cache_size not a size",
			content: "store_gateway:\n  index_cache_size: lots\n",
			want:    []string{"line 2", "field store_gateway.index_cache_size", "lots"},
		},
		{
			name:    "negative tsdb.max_exemplars",
			content: "tsdb: {max_exemplars: -1}\n",
			want:    []string{"field tsdb.max_exemplars", "must not be negative"},
		},
		{
			name:    "zero rules.notification_queue_capacity",
			content: "rules: {notification_queue_capacity: 0}\n",
			want:    []string{"field rules.notification_queue_capacity", "must be positive"},
		},
		{
			name:    "negative rules.notification_queue_capacity",
			content: "rules: {notification_queue_capacity: -1}\n",
			want:    []string{"field rules.notification_queue_capacity", "must be positive"},
		},
		{
			name:    "replica_label starting with a digit",
			content: "query: {replica_label: 1abc}\n",
			want:    []string{"field query.replica_label", `"1abc"`, "not a valid label name"},
		},
		{
			name:    "replica_label with a dash",
			content: "query: {replica_label: my-replica}\n",
			want:    []string{"field query.replica_label", `"my-replica"`},
		},
		{
			name:    "empty replica_label",
			content: "query: {replica_label: \"\"}\n",
			want:    []string{"field query.replica_label", `""`},
		},
		{
			name:    "external_url not http",
			content: "web: {external_url: ftp://example.com/}\n",
			want:    []string{"field web.external_url", `"ftp://example.com/"`, "http(s) URL"},
		},
		{
			name:    "external_url without scheme",
			content: "web: {external_url: /prometheus}\n",
			want:    []string{"field web.external_url"},
		},
		{
			name:    "several invalid fields are all reported",
			content: "query: {timeout: 0s, max_samples: 0}\nrules: {notification_queue_capacity: 0}\n",
			want: []string{
				"field query.timeout",
				"field query.max_samples",
				"field rules.notification_queue_capacity",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, file, err := loadString(t, tc.content)
			if err == nil {
				t.Fatalf("Load(%q) = %+v, want an error", tc.content, cfg)
			}
			if cfg != nil {
				t.Errorf("Load returned a config along with error %v", err)
			}
			if !strings.HasPrefix(err.Error(), file+": ") {
				t.Errorf("error %q does not start with the file name %q", err, file)
			}
			assertContains(t, err, tc.want...)
		})
	}
}

// Parse decodes only the first YAML document; anything after a "---" is
// silently ignored, unknown fields and invalid values included. This test
// skips (visibly) until that is an error, then enforces it.
func TestLoadRejectsLaterDocuments(t *testing.T) {
	_, file, err := loadString(t, "tsdb: {retention: 1d}\n---\nbogus: 1\nquery: {timeout: 0s}\n")
	if err == nil || !strings.Contains(err.Error(), file+": parse: line 2: only one YAML document is allowed") {
		t.Fatalf("error %v: want the second document rejected with its line", err)
	}
}

func TestLoadJoinedErrorsEachNameFile(t *testing.T) {
	_, file, err := loadString(t, "query: {timeout: 0s, max_samples: 0}\nweb: {external_url: ftp://x}\n")
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("error %q: want one line per invalid field", err)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, file+": field ") {
			t.Errorf("line %q does not start with %q", l, file+": field ")
		}
	}
}

func TestErrors(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	if got := Errors(errors.Join(a, b)); len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Errors(Join(a, b)) = %v, want [a b]", got)
	}
	if got := Errors(a); len(got) != 1 || got[0] != a {
		t.Errorf("Errors(a) = %v, want [a]", got)
	}
	// A wrapped join is one problem as far as Errors is concerned.
	if got := Errors(fmt.Errorf("ctx: %w", errors.Join(a, b))); len(got) != 1 {
		t.Errorf("Errors(wrapped join) = %v, want one error", got)
	}
}

func TestDurationRoundTrip(t *testing.T) {
	if got := Duration(90 * time.Second).String(); got != "1m30s" {
		t.Errorf("String() = %q, want 1m30s", got)
	}
	if got := Duration(15 * 24 * time.Hour).Std(); got != 360*time.Hour {
		t.Errorf("Std() = %v, want 360h", got)
	}
	// The defaults written out as YAML read back to the same config.
	b, err := yaml.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "min_free_space: 256MiB") {
		t.Errorf("marshalled defaults %q do not write min_free_space as 256MiB", b)
	}
	cfg, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(marshalled defaults): %v\n%s", err, b)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("round trip = %+v, want %+v", cfg, Default())
	}
}

func TestParseErrorsNameField(t *testing.T) {
	// Parse has no file name; the field must still be named.
	_, err := Parse([]byte("query: {timeout: 0s}\n"))
	assertContains(t, err, "field query.timeout")
	_, err = Parse([]byte("nope: 1\n"))
	assertContains(t, err, "line 1", "field nope not found")
}

func TestValidateNegativeDurations(t *testing.T) {
	// Negative durations cannot be written in YAML (see TestLoadInvalid) but
	// Validate guards the struct for programmatic callers.
	cfg := Default()
	cfg.TSDB.Retention = Duration(-time.Hour)
	cfg.TSDB.OutOfOrderTimeWindow = Duration(-time.Minute)
	cfg.Query.Timeout = Duration(-time.Second)
	err := cfg.Validate()
	assertContains(t, err,
		"field tsdb.retention: must not be negative",
		"field tsdb.out_of_order_time_window: must not be negative",
		"field query.timeout: must be positive",
	)
}

func TestValidateAcceptsBoundaryValues(t *testing.T) {
	cfg := Default()
	cfg.TSDB.Retention = 0 // zero: no time-based retention
	cfg.TSDB.OutOfOrderTimeWindow = 0
	cfg.TSDB.MaxExemplars = 0
	cfg.Query.ReplicaLabel = "_r2"
	cfg.Query.MaxSamples = 1
	cfg.Rules.NotificationQueueSize = 1
	cfg.Web.ExternalURL = "http://localhost:9090/"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	cfg.Web.ExternalURL = "https://example.com"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestPath(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "conf/monstack.yml", "")
	cfg := mustLoad(t, file)
	abs := filepath.Join(dir, "elsewhere", "prometheus.yml")
	for in, want := range map[string]string{
		"":                  "",
		"prometheus.yml":    filepath.Join(dir, "conf", "prometheus.yml"),
		"sub/bucket.yml":    filepath.Join(dir, "conf", "sub", "bucket.yml"),
		"../prometheus.yml": filepath.Join(dir, "prometheus.yml"),
		abs:                 abs,
	} {
		if got := cfg.Path(in); got != want {
			t.Errorf("Path(%q) = %q, want %q", in, got, want)
		}
	}
	// The embedded default has no directory: paths stay as given.
	if got := Default().Path("prometheus.yml"); got != "prometheus.yml" {
		t.Errorf("Default().Path(prometheus.yml) = %q, want it unchanged", got)
	}
}

func TestSelfTarget(t *testing.T) {
	for in, want := range map[string]string{
		":9090":          "localhost:9090",
		"0.0.0.0:9090":   "localhost:9090",
		"[::]:9090":      "localhost:9090",
		"127.0.0.1:8080": "127.0.0.1:8080",
		"[::1]:8080":     "[::1]:8080",
		"myhost:1":       "myhost:1",
		"no-port":        "no-port",
	} {
		if got := selfTarget(in); got != want {
			t.Errorf("selfTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

func staticTargets(t *testing.T, sc *promconfig.ScrapeConfig) []string {
	t.Helper()
	var targets []string
	for _, sd := range sc.ServiceDiscoveryConfigs {
		static, ok := sd.(discovery.StaticConfig)
		if !ok {
			t.Fatalf("job %s: service discovery %T, want static", sc.JobName, sd)
		}
		for _, tg := range static {
			for _, tset := range tg.Targets {
				targets = append(targets, string(tset[model.AddressLabel]))
			}
		}
	}
	return targets
}

func TestLoadPrometheusEmbeddedDefault(t *testing.T) {
	for addr, want := range map[string]string{
		":9090":          "localhost:9090",
		"10.0.0.1:19090": "10.0.0.1:19090",
	} {
		pcfg, err := Default().LoadPrometheus(Runtime{Role: mustRole(t, "standalone"), HTTPAddress: addr}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(pcfg.ScrapeConfigs) != 1 || pcfg.ScrapeConfigs[0].JobName != "monstackd" {
			t.Fatalf("scrape configs = %v, want one job monstackd", pcfg.ScrapeConfigs)
		}
		if got := staticTargets(t, pcfg.ScrapeConfigs[0]); !reflect.DeepEqual(got, []string{want}) {
			t.Errorf("HTTP address %q: targets = %q, want [%q]", addr, got, want)
		}
		if got := time.Duration(pcfg.GlobalConfig.ScrapeInterval); got != 15*time.Second {
			t.Errorf("scrape_interval = %s, want 15s", got)
		}
		if !pcfg.GlobalConfig.ExternalLabels.IsEmpty() {
			t.Errorf("standalone external labels = %s, want none", pcfg.GlobalConfig.ExternalLabels)
		}
	}
}

func TestLoadPrometheusEmbeddedDefaultWithConfigFile(t *testing.T) {
	// monstack.yml without prometheus.config_file still gets the embedded default.
	cfg := mustLoad(t, writeFile(t, t.TempDir(), "monstack.yml", "tsdb: {retention: 1d}\n"))
	pcfg, err := cfg.LoadPrometheus(Runtime{Role: mustRole(t, "replica-b"), HTTPAddress: ":9191"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := staticTargets(t, pcfg.ScrapeConfigs[0]); !reflect.DeepEqual(got, []string{"localhost:9191"}) {
		t.Errorf("targets = %q", got)
	}
	if got := pcfg.GlobalConfig.ExternalLabels.Get("replica"); got != "b" {
		t.Errorf("replica external label = %q, want b", got)
	}
}

// loadProm writes prometheus.yml next to a monstack.yml that points to it by a
// relative path, and loads it for role.
func loadProm(t *testing.T, monstackYML, promYML, role string) (*promconfig.Config, string, error) {
	t.Helper()
	dir := t.TempDir()
	promFile := writeFile(t, dir, "prometheus.yml", promYML)
	cfg := mustLoad(t, writeFile(t, dir, "monstack.yml", monstackYML+"\nprometheus: {config_file: prometheus.yml}\n"))
	pcfg, err := cfg.LoadPrometheus(Runtime{Role: mustRole(t, role), HTTPAddress: ":9090"}, nil)
	return pcfg, promFile, err
}

func TestLoadPrometheusDuplicateJobNames(t *testing.T) {
	_, file, err := loadProm(t, "", `
scrape_configs:
  - job_name: node
    static_configs: [{targets: ["a:9100"]}]
  - job_name: node
    static_configs: [{targets: ["b:9100"]}]
`, "standalone")
	assertContains(t, err, file, `"node"`)
}

func TestLoadPrometheusMissingFile(t *testing.T) {
	dir := t.TempDir()
	cfg := mustLoad(t, writeFile(t, dir, "monstack.yml", "prometheus: {config_file: prom/prometheus.yml}\n"))
	_, err := cfg.LoadPrometheus(Runtime{Role: mustRole(t, "standalone"), HTTPAddress: ":9090"}, nil)
	// The relative path is resolved against monstack.yml's directory.
	assertContains(t, err, filepath.Join(dir, "prom", "prometheus.yml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap os.ErrNotExist", err)
	}
}

func TestLoadPrometheusInvalidFile(t *testing.T) {
	_, file, err := loadProm(t, "", "global:\n  scrape_interval: 5q\n", "standalone")
	assertContains(t, err, file)
}

func TestLoadPrometheusReplicaLabelMergedWithFileLabels(t *testing.T) {
	pcfg, _, err := loadProm(t, "", `
global:
  external_labels:
    env: prod
    region: eu
`, "replica-a")
	if err != nil {
		t.Fatal(err)
	}
	want := labels.FromStrings("env", "prod", "region", "eu", "replica", "a")
	if got := pcfg.GlobalConfig.ExternalLabels; !labels.Equal(got, want) {
		t.Errorf("external labels = %s, want %s", got, want)
	}
}

func TestLoadPrometheusReplicaLabelSameValueInFileIsFine(t *testing.T) {
	pcfg, _, err := loadProm(t, "", "global:\n  external_labels: {replica: a}\n", "replica-a")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pcfg.GlobalConfig.ExternalLabels, labels.FromStrings("replica", "a"); !labels.Equal(got, want) {
		t.Errorf("external labels = %s, want %s", got, want)
	}
}

func TestLoadPrometheusReplicaLabelConflict(t *testing.T) {
	_, file, err := loadProm(t, "", "global:\n  external_labels: {env: prod, replica: b}\n", "replica-a")
	assertContains(t, err, file, "global.external_labels.replica", `"b"`, "replica-a")
}

func TestLoadPrometheusCustomReplicaLabel(t *testing.T) {
	_, file, err := loadProm(t, "query: {replica_label: dc_replica}",
		"global:\n  external_labels: {dc_replica: x}\n", "replica-a")
	assertContains(t, err, file, "global.external_labels.dc_replica")

	pcfg, _, err := loadProm(t, "query: {replica_label: dc_replica}",
		"global:\n  external_labels: {replica: keep-me}\n", "replica-a")
	if err != nil {
		t.Fatal(err)
	}
	want := labels.FromStrings("dc_replica", "a", "replica", "keep-me")
	if got := pcfg.GlobalConfig.ExternalLabels; !labels.Equal(got, want) {
		t.Errorf("external labels = %s, want %s", got, want)
	}
	// The drop rule targets the configured label, not "replica".
	rcs := pcfg.AlertingConfig.AlertRelabelConfigs
	got, keep := relabel.Process(labels.FromStrings("alertname", "x", "dc_replica", "a", "replica", "keep-me"), rcs...)
	if want := labels.FromStrings("alertname", "x", "replica", "keep-me"); !keep || !labels.Equal(got, want) {
		t.Errorf("relabelled alert = %s (keep %t), want %s", got, keep, want)
	}
}

func TestLoadPrometheusStandaloneLeavesFileLabels(t *testing.T) {
	pcfg, _, err := loadProm(t, "", "global:\n  external_labels: {replica: manual}\n", "standalone")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pcfg.GlobalConfig.ExternalLabels, labels.FromStrings("replica", "manual"); !labels.Equal(got, want) {
		t.Errorf("external labels = %s, want %s", got, want)
	}
}

func TestLoadPrometheusAlertRelabelDropsReplica(t *testing.T) {
	for _, role := range []string{"standalone", "replica-a"} {
		t.Run(role, func(t *testing.T) {
			pcfg, _, err := loadProm(t, "", `
alerting:
  alert_relabel_configs:
    - source_labels: [severity]
      target_label: team
      replacement: ops
`, role)
			if err != nil {
				t.Fatal(err)
			}
			rcs := pcfg.AlertingConfig.AlertRelabelConfigs
			if len(rcs) != 2 {
				t.Fatalf("got %d alert relabel configs, want the file's one plus the replica drop", len(rcs))
			}
			if rcs[0].TargetLabel != "team" {
				t.Errorf("first alert relabel config = %+v, want the file's own first", rcs[0])
			}
			if rcs[1].Action != relabel.LabelDrop {
				t.Errorf("appended action = %s, want labeldrop", rcs[1].Action)
			}

			got, keep := relabel.Process(labels.FromStrings("alertname", "x", "replica", "a"), rcs[1])
			if want := labels.FromStrings("alertname", "x"); !keep || !labels.Equal(got, want) {
				t.Errorf("relabelled alert = %s (keep %t), want %s", got, keep, want)
			}
			// The regex is anchored: labels merely containing "replica" survive.
			in := labels.FromStrings("alertname", "x", "replica_set", "rs1", "myreplica", "m")
			got, keep = relabel.Process(in.Copy(), rcs...)
			want := labels.FromStrings("alertname", "x", "myreplica", "m", "replica_set", "rs1", "team", "ops")
			if !keep || !labels.Equal(got, want) {
				t.Errorf("relabelled alert = %s (keep %t), want %s", got, keep, want)
			}
		})
	}
}

func TestLoadPrometheusServiceDiscoveryPlugins(t *testing.T) {
	pcfg, _, err := loadProm(t, "", `
scrape_configs:
  - job_name: k8s-pods
    kubernetes_sd_configs:
      - role: pod
        namespaces: {names: [monitoring]}
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        action: keep
        regex: "true"
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
  - job_name: consul
    consul_sd_configs:
      - server: localhost:8500
        services: [web]
    relabel_configs:
      - source_labels: [__meta_consul_service]
        target_label: service
  - job_name: dns
    dns_sd_configs:
      - names: [_prometheus._tcp.example.com]
  - job_name: files
    file_sd_configs:
      - files: [targets/*.json]
        refresh_interval: 1m
    metric_relabel_configs:
      - regex: go_.*
        source_labels: [__name__]
        action: drop
`, "standalone")
	if err != nil {
		t.Fatal(err)
	}
	wantSD := map[string]string{
		"k8s-pods": "kubernetes",
		"consul":   "consul",
		"dns":      "dns",
		"files":    "file",
	}
	if len(pcfg.ScrapeConfigs) != len(wantSD) {
		t.Fatalf("got %d scrape configs, want %d", len(pcfg.ScrapeConfigs), len(wantSD))
	}
	for _, sc := range pcfg.ScrapeConfigs {
		if len(sc.ServiceDiscoveryConfigs) != 1 {
			t.Errorf("job %s: %d SD configs, want 1", sc.JobName, len(sc.ServiceDiscoveryConfigs))
			continue
		}
		if got := sc.ServiceDiscoveryConfigs[0].Name(); got != wantSD[sc.JobName] {
			t.Errorf("job %s: SD %q, want %q", sc.JobName, got, wantSD[sc.JobName])
		}
	}
	if n := len(pcfg.ScrapeConfigs[0].RelabelConfigs); n != 2 {
		t.Errorf("k8s-pods: %d relabel configs, want 2", n)
	}
}

// checkSetup writes monstack.yml with extra content into dir and loads it.
func checkSetup(t *testing.T, dir, monstackYML string) *Config {
	t.Helper()
	return mustLoad(t, writeFile(t, dir, "monstack.yml", monstackYML))
}

func runtimeFor(t *testing.T, dir string) Runtime {
	return Runtime{Role: mustRole(t, "replica-a"), DataDir: filepath.Join(dir, "data"), HTTPAddress: ":9090"}
}

func TestCheckValidSetup(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "prometheus.yml", `
rule_files:
  - rules/*.yml
  - nothing-matches-this/*.yml
scrape_configs:
  - job_name: self
    static_configs: [{targets: ["localhost:9090"]}]
`)
	writeFile(t, dir, "rules/good.yml", `
groups:
  - name: g
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: Down
        expr: up == 0
        for: 5m
`)
	writeFile(t, dir, "bucket.yml", "type: FILESYSTEM\nconfig:\n  directory: "+filepath.Join(dir, "bucket")+"\n")
	cfg := checkSetup(t, dir, "prometheus: {config_file: prometheus.yml}\nbucket: {config_file: bucket.yml}\n")
	if errs := cfg.Check(runtimeFor(t, dir), nil); len(errs) != 0 {
		t.Fatalf("Check() = %v, want no errors", errs)
	}
}

func TestCheckEmbeddedDefaults(t *testing.T) {
	dir := t.TempDir()
	if errs := Default().Check(runtimeFor(t, dir), nil); len(errs) != 0 {
		t.Fatalf("Check() = %v, want no errors", errs)
	}
	// The default bucket is a FILESYSTEM bucket under the data dir.
	content, file, err := Default().BucketYAML(runtimeFor(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(file, "embedded") {
		t.Errorf("file = %q, want the embedded marker", file)
	}
	for _, want := range []string{"FILESYSTEM", filepath.Join(dir, "data", "bucket")} {
		if !strings.Contains(string(content), want) {
			t.Errorf("embedded bucket.yml %q does not contain %q", content, want)
		}
	}
}

func TestCheckRuleFileWithInvalidExpression(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "prometheus.yml", "rule_files: [rules/*.yml]\n")
	good := writeFile(t, dir, "rules/a-good.yml", "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n")
	bad := writeFile(t, dir, "rules/b-bad.yml", "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: sum(up\n")
	cfg := checkSetup(t, dir, "prometheus: {config_file: prometheus.yml}\n")
	errs := cfg.Check(runtimeFor(t, dir), nil)
	if len(errs) != 1 {
		t.Fatalf("Check() = %v, want exactly one error", errs)
	}
	assertContains(t, errs[0], bad, "could not parse expression")
	if strings.Contains(errs[0].Error(), good) {
		t.Errorf("error %q names the valid rule file", errs[0])
	}
}

func TestCheckRuleFileNotYAML(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "prometheus.yml", "rule_files: [rules.yml]\n")
	bad := writeFile(t, dir, "rules.yml", "groups:\n  - name: g\n    rulez: []\n")
	cfg := checkSetup(t, dir, "prometheus: {config_file: prometheus.yml}\n")
	errs := cfg.Check(runtimeFor(t, dir), nil)
	if len(errs) == 0 {
		t.Fatal("Check() = no errors, want one naming the rule file")
	}
	assertContains(t, errs[0], bad)
}

func TestCheckRuleFilesBadGlob(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "prometheus.yml", "rule_files: ['rules/[.yml']\n")
	cfg := checkSetup(t, dir, "prometheus: {config_file: prometheus.yml}\n")
	errs := cfg.Check(runtimeFor(t, dir), nil)
	if len(errs) != 1 {
		t.Fatalf("Check() = %v, want one bad pattern error", errs)
	}
	assertContains(t, errs[0], filepath.Join(dir, "prometheus.yml"), "rule_files", `"`+filepath.Join(dir, "rules/[.yml")+`"`)
}

func TestCheckPrometheusErrorIsReported(t *testing.T) {
	dir := t.TempDir()
	prom := writeFile(t, dir, "prometheus.yml", "scrape_configs:\n  - job_name: a\n  - job_name: a\n")
	cfg := checkSetup(t, dir, "prometheus: {config_file: prometheus.yml}\n")
	errs := cfg.Check(runtimeFor(t, dir), nil)
	if len(errs) != 1 {
		t.Fatalf("Check() = %v, want one error", errs)
	}
	assertContains(t, errs[0], prom)
}

func TestCheckBucketErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    []string
	}{
		{"unknown type", "type: NOPE\nconfig: {}\n", []string{"field type", `"NOPE" is not supported`}},
		{"bad provider config", "type: S3\nconfig: {bucket: b}\n", []string{"field config"}},
		{"missing type", "config:\n  directory: /tmp/x\n", []string{"field type"}},
		{"malformed yaml", "type: [FILESYSTEM\n", []string{"parse"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bucket := writeFile(t, dir, "conf/bucket.yml", tc.content)
			cfg := checkSetup(t, dir, "bucket: {config_file: conf/bucket.yml}\n")
			errs := cfg.Check(runtimeFor(t, dir), nil)
			if len(errs) != 1 {
				t.Fatalf("Check() = %v, want one error", errs)
			}
			assertContains(t, errs[0], append([]string{bucket}, tc.want...)...)
		})
	}
}

func TestCheckBucketMissingFile(t *testing.T) {
	dir := t.TempDir()
	cfg := checkSetup(t, dir, "bucket: {config_file: bucket.yml}\n")
	errs := cfg.Check(runtimeFor(t, dir), nil)
	if len(errs) != 1 {
		t.Fatalf("Check() = %v, want one error", errs)
	}
	assertContains(t, errs[0], filepath.Join(dir, "bucket.yml"))
	if !errors.Is(errs[0], os.ErrNotExist) {
		t.Errorf("error %v does not wrap os.ErrNotExist", errs[0])
	}
}

// The peers' TLS files are read by check config, relative to monstack.yml,
// and a missing one names its field.
func TestCheckPeerTLSFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ca.crt", "x")
	cfg := checkSetup(t, dir, "peers:\n  endpoints: [hostb:10901]\n  tls_config: {ca_file: ca.crt, cert_file: a.crt, key_file: a.key}\n")
	errs := cfg.Check(runtimeFor(t, dir), nil)
	if len(errs) != 2 {
		t.Fatalf("Check() = %v, want two errors", errs)
	}
	assertContains(t, errs[0], "field peers.tls_config.cert_file", filepath.Join(dir, "a.crt"))
	assertContains(t, errs[1], "field peers.tls_config.key_file", filepath.Join(dir, "a.key"))
	if tls := cfg.PeerTLS(); !tls.On() || tls.CAFile != filepath.Join(dir, "ca.crt") {
		t.Errorf("PeerTLS() = %+v, want TLS on with the CA resolved against %s", tls, dir)
	}
	if (ClientTLSConfig{}).On() {
		t.Error("an empty tls_config turns TLS on")
	}
}

func TestCheckReportsEveryFile(t *testing.T) {
	// A broken prometheus.yml does not hide a broken bucket.yml.
	dir := t.TempDir()
	prom := writeFile(t, dir, "prometheus.yml", "global: {scrape_interval: never}\n")
	bucket := writeFile(t, dir, "bucket.yml", "type: NOPE\n")
	cfg := checkSetup(t, dir, "prometheus: {config_file: prometheus.yml}\nbucket: {config_file: bucket.yml}\n")
	errs := cfg.Check(runtimeFor(t, dir), nil)
	if len(errs) != 2 {
		t.Fatalf("Check() = %v, want two errors", errs)
	}
	assertContains(t, errs[0], prom)
	assertContains(t, errs[1], bucket)
}

func TestRuleFilesExpandsGlobs(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "r/a.yml", "")
	b := writeFile(t, dir, "r/b.yml", "")
	writeFile(t, dir, "r/c.txt", "")
	pcfg := &promconfig.Config{RuleFiles: []string{filepath.Join(dir, "r/*.yml"), filepath.Join(dir, "none/*.yml")}}
	got, err := RuleFiles(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a, b}; !reflect.DeepEqual(got, want) {
		t.Errorf("RuleFiles = %q, want %q", got, want)
	}
	_, err = RuleFiles(&promconfig.Config{RuleFiles: []string{"[bad"}})
	assertContains(t, err, `"[bad"`)
}

// GOGC: prometheus.yml's runtime.gogc wins, even when it says Prometheus'
// 75; then the environment; then monstackd's default.
func TestLoadPrometheusGoGC(t *testing.T) {
	for _, c := range []struct {
		name, env, prom string
		want            int
	}{
		{"default", "", "global: {scrape_interval: 15s}\n", DefaultGoGC},
		{"file", "", "runtime: {gogc: 75}\n", 75},
		{"file over environment", "120", "runtime: {gogc: 60}\n", 60},
		// Prometheus reads GOGC from the environment at start-up.
		{"environment", "120", "global: {scrape_interval: 15s}\n", promconfig.DefaultRuntimeConfig.GoGC},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("GOGC", c.env)
			}
			pcfg, _, err := loadProm(t, "", c.prom, "standalone")
			if err != nil {
				t.Fatal(err)
			}
			if pcfg.Runtime.GoGC != c.want {
				t.Errorf("GOGC %d, want %d", pcfg.Runtime.GoGC, c.want)
			}
		})
	}
	pcfg, err := Default().LoadPrometheus(Runtime{Role: mustRole(t, "standalone"), HTTPAddress: ":9090"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pcfg.Runtime.GoGC != DefaultGoGC {
		t.Errorf("embedded default: GOGC %d, want %d", pcfg.Runtime.GoGC, DefaultGoGC)
	}
}

// Local retention defaults to 24h with a bucket configured, 15d without;
// a value in the file wins.
func TestLocalRetention(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    Duration
	}{
		{"", DefaultRetention},
		{"bucket:\n  config_file: bucket.yml\n", DefaultRetentionWithBucket},
		{"bucket:\n  type: FILESYSTEM\n  config: {directory: /tmp/b}\n", DefaultRetentionWithBucket},
		{"tsdb:\n  retention: 3d\nbucket:\n  config_file: bucket.yml\n", Duration(72 * time.Hour)},
	} {
		cfg, err := Parse([]byte(tc.content))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.LocalRetention(); got != tc.want {
			t.Errorf("%q: LocalRetention %s, want %s", tc.content, got, tc.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// The for grace period is Prometheus' 10m on a single host and 0 in a
// pair, unless set.
func TestForGrace(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    time.Duration
	}{
		{"", 10 * time.Minute},
		{"peers: {endpoints: [b:10901]}\n", 0},
		{"peers: {endpoints: [b:10901]}\nrules: {for_grace_period: 2m}\n", 2 * time.Minute},
		{"rules: {for_grace_period: 0s}\n", 0},
	} {
		cfg, err := Parse([]byte(tc.content))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.ForGrace(); got != Duration(tc.want) {
			t.Errorf("%q: ForGrace() = %s, want %s", tc.content, got, tc.want)
		}
	}
}
