package config

import (
	"path/filepath"
	"time"
)

// CompactorConfig tunes the in-process Thanos compactor. Both daemons of a
// pair carry it; the lease in the bucket picks the one that runs it.
type CompactorConfig struct {
	// Enabled runs the compactor on this daemon (while it holds the lease).
	Enabled bool `yaml:"enabled"`
	// Lease makes the daemons sharing a bucket take turns.
	Lease LeaseConfig `yaml:"lease"`
	// Interval between compaction passes; stock thanos compact's
	// --wait-interval.
	Interval Duration `yaml:"interval"`
	// Dir is the scratch directory for blocks being compacted and
	// downsampled; default <data.dir>/compactor, outside the TSDB.
	Dir string `yaml:"dir"`
	// Concurrency is how many groups compact at once (--compact.concurrency);
	// DownsampleConcurrency how many blocks downsample at once.
	Concurrency           int `yaml:"concurrency"`
	DownsampleConcurrency int `yaml:"downsample_concurrency"`
	// DeleteDelay is how long a block marked for deletion stays readable
	// (--delete-delay): store gateways that have not synced yet still
	// serve it.
	DeleteDelay Duration `yaml:"delete_delay"`
	// ConsistencyDelay is how old a block must be before it is compacted
	// (--consistency-delay), for buckets that list new objects late.
	ConsistencyDelay Duration `yaml:"consistency_delay"`
	// Deduplication merges the replicas' blocks for the same time into one
	// block (vertical compaction, penalty algorithm, on query.replica_label).
	// Irreversible: the bucket then holds one copy of the history.
	Deduplication bool `yaml:"deduplication"`
	// Downsampling writes 5m and 1h blocks from raw data, as stock Thanos.
	Downsampling bool `yaml:"downsampling"`
	// Retention per resolution; 0 keeps blocks forever (stock default).
	Retention RetentionConfig `yaml:"retention"`
}

// LeaseConfig is the compactor lease: an object in the bucket written with
// conditional puts (S3, MinIO) or exclusive creates (FILESYSTEM).
type LeaseConfig struct {
	// Enabled competes for the lease. Off, this daemon compacts
	// unconditionally: for providers without conditional writes, on exactly
	// one daemon per bucket.
	Enabled bool `yaml:"enabled"`
	// TTL is how long the lease lasts without renewal: a standby takes over
	// this long after the holder's last renewal.
	TTL Duration `yaml:"ttl"`
}

// RetentionConfig is the retention of each resolution's blocks in the bucket.
type RetentionConfig struct {
	Raw     Duration `yaml:"raw"`
	FiveMin Duration `yaml:"5m"`
	OneHour Duration `yaml:"1h"`
}

// Stock thanos compact's thresholds (cmd/thanos/compact.go): raw data must
// live until blocks are big enough to be downsampled to 5m, 5m data until
// they are big enough for 1h.
const (
	minRawRetentionWithDownsampling = Duration(40 * time.Hour)
	min5mRetentionWithDownsampling  = Duration(10 * 24 * time.Hour)
)

func defaultCompactor() CompactorConfig {
	return CompactorConfig{
		Enabled:               true,
		Lease:                 LeaseConfig{Enabled: true, TTL: Duration(30 * time.Second)},
		Interval:              Duration(5 * time.Minute),
		Concurrency:           1,
		DownsampleConcurrency: 1,
		DeleteDelay:           Duration(48 * time.Hour),
		ConsistencyDelay:      Duration(30 * time.Minute),
		Deduplication:         true,
		Downsampling:          true,
	}
}

// CompactorDir is the compactor's scratch directory.
func (c *Config) CompactorDir(rt Runtime) string {
	if c.Compactor.Dir != "" {
		return c.Path(c.Compactor.Dir)
	}
	return filepath.Join(rt.DataDir, "compactor")
}

func (c *CompactorConfig) validate(field func(name, format string, a ...any)) {
	if c.Interval < Duration(time.Second) {
		field("compactor.interval", "must be at least 1s")
	}
	if c.Concurrency <= 0 {
		field("compactor.concurrency", "must be positive")
	}
	if c.DownsampleConcurrency <= 0 {
		field("compactor.downsample_concurrency", "must be positive")
	}
	for _, p := range []struct {
		name  string
		value Duration
	}{
		{"compactor.delete_delay", c.DeleteDelay},
		{"compactor.consistency_delay", c.ConsistencyDelay},
		{"compactor.retention.raw", c.Retention.Raw},
		{"compactor.retention.5m", c.Retention.FiveMin},
		{"compactor.retention.1h", c.Retention.OneHour},
	} {
		if p.value < 0 {
			field(p.name, "must not be negative")
		}
	}
	if c.Lease.TTL < Duration(time.Second) {
		field("compactor.lease.ttl", "must be at least 1s")
	}
	if c.Downsampling {
		if r := c.Retention.Raw; r > 0 && r < minRawRetentionWithDownsampling {
			field("compactor.retention.raw", "%s is shorter than the %s after which raw blocks are downsampled to 5m: raise it, or set compactor.downsampling: false", r, minRawRetentionWithDownsampling)
		}
		if r := c.Retention.FiveMin; r > 0 && r < min5mRetentionWithDownsampling {
			field("compactor.retention.5m", "%s is shorter than the %s after which 5m blocks are downsampled to 1h: raise it, or set compactor.downsampling: false", r, min5mRetentionWithDownsampling)
		}
	}
}
