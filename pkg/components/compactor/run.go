package compactor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/compact"
)

// ErrHalted wraps an error the compactor cannot resolve by retrying soon:
// overlapping blocks it cannot merge, a corrupt block. Ingestion, shipping
// and queries go on; the pass is tried again after a back-off, or at once
// when an operator marks a named block no-compact.
var ErrHalted = errors.New("compaction halted")

func (c *Compactor) metrics(reg prometheus.Registerer) {
	f := promauto.With(reg)
	// Stock thanos compact's names, so that its dashboards and alerts work.
	c.halted = f.NewGauge(prometheus.GaugeOpts{
		Name: "thanos_compact_halted",
		Help: "Set to 1 while the compactor is halted on an error it cannot resolve by itself (retried after a back-off).",
	})
	c.iterations = f.NewCounter(prometheus.CounterOpts{
		Name: "thanos_compact_iterations_total",
		Help: "Total number of iterations that were executed successfully.",
	})
	c.retried = f.NewCounter(prometheus.CounterOpts{
		Name: "thanos_compact_retries_total",
		Help: "Total number of retries after retriable compactor error.",
	})
	c.cleanups = f.NewCounter(prometheus.CounterOpts{
		Name: "thanos_compact_block_cleanup_loops_total",
		Help: "Total number of concurrent cleanup loops of partially uploaded blocks and marked blocks that were executed successfully.",
	})
	c.partialDeletes = f.NewCounter(prometheus.CounterOpts{
		Name: "thanos_compact_aborted_partial_uploads_deletion_attempts_total",
		Help: "Total number of started deletions of blocks that are assumed aborted and only partially uploaded.",
	})
	c.blocksCleaned = f.NewCounter(prometheus.CounterOpts{
		Name: "thanos_compact_blocks_cleaned_total",
		Help: "Total number of blocks deleted in compactor.",
	})
	c.cleanFailed = f.NewCounter(prometheus.CounterOpts{
		Name: "thanos_compact_block_cleanup_failures_total",
		Help: "Failures encountered while deleting blocks in compactor.",
	})
	c.blocksMarked = f.NewCounterVec(prometheus.CounterOpts{
		Name: "thanos_compact_blocks_marked_total",
		Help: "Total number of blocks marked in compactor.",
	}, []string{"marker", "reason"})
	c.downsamples = f.NewCounterVec(prometheus.CounterOpts{
		Name: "thanos_compact_downsample_total",
		Help: "Total number of downsampling attempts.",
	}, []string{"resolution"})
	c.downsampleFail = f.NewCounterVec(prometheus.CounterOpts{
		Name: "thanos_compact_downsample_failures_total",
		Help: "Total number of failed downsampling attempts.",
	}, []string{"resolution"})
	c.downsampleDuration = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "thanos_compact_downsample_duration_seconds",
		Help:    "Duration of downsample runs",
		Buckets: []float64{60, 300, 900, 1800, 3600, 7200, 14400},
	}, []string{"resolution"})
	c.running = f.NewGauge(prometheus.GaugeOpts{
		Name: "monstackd_compactor_running",
		Help: "1 while this daemon runs the compactor (it holds the lease, or runs without one).",
	})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "thanos_delete_delay_seconds",
		Help: "Configured delete delay in seconds.",
	}, func() float64 { return c.opts.DeleteDelay.Seconds() })
}

// Run compacts until ctx ends: while this daemon holds the lease, a pass
// every Interval. Errors never end it: transient ones are retried with a
// back-off, a halt after a longer one.
func (c *Compactor) Run(ctx context.Context) error {
	for {
		held := ctx
		if c.opts.Lease != nil {
			var err error
			if held, err = c.opts.Lease.Acquired(ctx); err != nil {
				return nil
			}
			level.Info(c.logger).Log("msg", "lease held: compacting")
		}
		c.running.Set(1)
		c.holding(held)
		c.running.Set(0)
		if ctx.Err() != nil {
			return nil
		}
		level.Warn(c.logger).Log("msg", "lease lost: compaction stopped until it is held again")
		// A halt is the holder's to report; this daemon is a standby now.
		c.halted.Set(0)
		c.report(nil)
	}
}

// holding runs passes until ctx (the lease) ends.
func (c *Compactor) holding(ctx context.Context) {
	var retry, halt time.Duration
	for {
		err := c.runPass(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := c.opts.Interval
		var named []ulid.ULID
		switch {
		case err == nil:
			retry, halt = 0, 0
			c.iterations.Inc()
			c.halted.Set(0)
		case errors.Is(err, ErrHalted):
			halt = min(max(2*halt, c.opts.Interval), maxHaltBackoff)
			wait = halt
			named = blocksIn(err)
			c.halted.Set(1)
			err = fmt.Errorf("%w; retrying in %s, or once a block it names is marked no-compact", err, wait)
			level.Error(c.logger).Log("msg", "compaction halted", "err", err)
		default:
			retry = min(max(2*retry, minRetryBackoff), c.opts.Interval)
			wait = retry
			c.retried.Inc()
			err = fmt.Errorf("%w; retrying in %s", err, wait)
			level.Warn(c.logger).Log("msg", "compaction failed", "err", err)
		}
		c.report(err)
		if !c.wait(ctx, wait, named) {
			return
		}
	}
}

// wait waits d, or less when one of the named blocks gets a no-compact mark.
func (c *Compactor) wait(ctx context.Context, d time.Duration, named []ulid.ULID) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(min(markCheckInterval, d))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return true
		case <-tick.C:
			for _, id := range named {
				if ok, _ := c.bkt.Exists(ctx, id.String()+"/"+metadata.NoCompactMarkFilename); ok {
					level.Info(c.logger).Log("msg", "block marked no-compact: retrying the halted compaction", "block", id)
					return true
				}
			}
		}
	}
}

func (c *Compactor) report(err error) {
	if c.opts.Report != nil {
		c.opts.Report(err)
	}
}

// runPass is one iteration of stock thanos compact: compaction, two
// downsampling passes (the second downsamples the first's 5m blocks to 1h),
// retention, deletion of marked blocks and of aborted partial uploads.
func (c *Compactor) runPass(ctx context.Context) error {
	c.pass.set(ctx)
	defer c.pass.set(nil)
	if err := c.compactor.Compact(ctx); err != nil {
		return classify(err, "compaction")
	}
	if c.opts.Downsampling {
		for _, pass := range []string{"first", "second"} {
			if err := c.syncer.SyncMetas(ctx); err != nil {
				return classify(err, fmt.Sprintf("sync before the %s downsampling pass", pass))
			}
			if err := c.downsample(ctx, c.syncer.Metas()); err != nil {
				return classify(err, fmt.Sprintf("%s downsampling pass", pass))
			}
		}
	}
	if err := c.syncer.SyncMetas(ctx); err != nil {
		return classify(err, "sync before retention")
	}
	if err := compact.ApplyRetentionPolicyByResolution(ctx, c.logger, c.bkt, c.syncer.Metas(), c.opts.Retention,
		c.blocksMarked.WithLabelValues(metadata.DeletionMarkFilename, "")); err != nil {
		return classify(err, "retention")
	}
	return c.clean(ctx)
}

// clean deletes the blocks whose deletion mark is older than the delete
// delay and the uploads aborted more than two days ago (Thanos'
// PartialUploadThresholdAge), skipping blocks already marked.
func (c *Compactor) clean(ctx context.Context) error {
	compact.BestEffortCleanAbortedPartialUploads(ctx, c.logger, c.syncer.Partial(), c.bkt,
		c.partialDeletes, c.blocksCleaned, c.cleanFailed, c.deletionMark.DeletionMarkBlocks())
	deleted, err := c.cleaner.DeleteMarkedBlocks(ctx)
	if err != nil {
		return classify(err, "delete marked blocks")
	}
	if err := c.syncer.GarbageCollect(ctx, deleted); err != nil {
		return classify(err, "garbage collection")
	}
	c.cleanups.Inc()
	return nil
}

// classify wraps err with what failed, as ErrHalted for Thanos' halt errors
// (pkg/errors causes, which fmt's wrapping would hide from
// compact.IsHaltError).
func classify(err error, what string) error {
	if compact.IsHaltError(err) && !errors.Is(err, ErrHalted) {
		return fmt.Errorf("%w: %s: %w", ErrHalted, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// blocksIn lists the block IDs an error message names.
func blocksIn(err error) []ulid.ULID {
	var out []ulid.ULID
	seen := map[ulid.ULID]bool{}
	for _, m := range ulidRE.FindAllString(err.Error(), -1) {
		id, perr := ulid.ParseStrict(m)
		if perr != nil || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out
}

// ulidRE matches a block ID in an error message.
var ulidRE = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{26}\b`)

// passContext is the context Prometheus' leveled compactor holds for its
// life; it forwards to the running pass's context, and is cancelled
// between passes.
type passContext struct {
	mtx sync.RWMutex
	ctx context.Context
}

func newPassContext() *passContext {
	p := &passContext{}
	p.set(nil)
	return p
}

func (p *passContext) set(ctx context.Context) {
	if ctx == nil {
		done, cancel := context.WithCancel(context.Background())
		cancel()
		ctx = done
	}
	p.mtx.Lock()
	p.ctx = ctx
	p.mtx.Unlock()
}

func (p *passContext) get() context.Context {
	p.mtx.RLock()
	defer p.mtx.RUnlock()
	return p.ctx
}

func (p *passContext) Deadline() (time.Time, bool) { return p.get().Deadline() }
func (p *passContext) Done() <-chan struct{}       { return p.get().Done() }
func (p *passContext) Err() error                  { return p.get().Err() }
func (p *passContext) Value(key any) any           { return p.get().Value(key) }
