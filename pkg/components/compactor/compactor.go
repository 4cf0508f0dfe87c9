// Package compactor is Thanos' compactor in-process: compaction to the
// standard levels, vertical deduplication of the replicas' blocks,
// downsampling, retention per resolution, deletion of marked blocks and of
// aborted uploads. Built from Thanos' pkg/compact; the loop is monstackd's:
// it runs only while this daemon holds the bucket's lease, and an error it
// cannot resolve is a reported, retried state, never a hang.
package compactor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/compact"
	"github.com/thanos-io/thanos/pkg/compact/downsample"
	"github.com/thanos-io/thanos/pkg/extprom"
	"github.com/thanos-io/thanos/pkg/logutil"

	"github.com/monstackd/monstackd/pkg/dedup"
)

// Levels are stock Thanos' compaction levels: 2h blocks become 8h, 2d and
// 14d blocks.
var levels = []int64{
	(2 * time.Hour).Milliseconds(),
	(8 * time.Hour).Milliseconds(),
	(2 * 24 * time.Hour).Milliseconds(),
	(14 * 24 * time.Hour).Milliseconds(),
}

// Stock defaults of the flags monstackd does not expose.
const (
	metaFetchConcurrency  = 32
	blockFilesConcurrency = 1
	// maxBlockIndexSize is --compact.max-block-index-size: a compaction
	// whose output index would be larger is skipped (no-compact mark).
	maxBlockIndexSize = 64 << 30
	// retryBackoff bounds the wait after a transient error (bucket down).
	minRetryBackoff = 5 * time.Second
	// maxHaltBackoff bounds the wait before a halted compaction is tried
	// again; a no-compact mark on a named block retries at once.
	maxHaltBackoff = time.Hour
	// markCheckInterval is how often a halted compactor looks for the
	// operator's no-compact marks.
	markCheckInterval = 30 * time.Second
)

// Lease is the bucket's compactor lease (package lease).
type Lease interface {
	// Acquired waits until this daemon holds the lease; the context it
	// returns ends when the lease is lost.
	Acquired(ctx context.Context) (context.Context, error)
	// Check is nil while the lease is safely held.
	Check() error
}

// Options configure the compactor.
type Options struct {
	Logger     log.Logger
	Registerer prometheus.Registerer
	Bucket     objstore.InstrumentedBucket
	// Dir is the scratch directory (meta cache, blocks being compacted and
	// downsampled), outside the TSDB directory.
	Dir string
	// Lease, if set, must be held for any pass and any write; nil compacts
	// unconditionally.
	Lease Lease

	Interval              time.Duration
	Concurrency           int
	DownsampleConcurrency int
	DeleteDelay           time.Duration
	ConsistencyDelay      time.Duration
	// ReplicaLabels, if any, are removed from the blocks' labels so that
	// the replicas' blocks for the same time merge into one (penalty
	// deduplication).
	ReplicaLabels []string
	Downsampling  bool
	// Retention of each resolution; 0 keeps blocks forever.
	Retention map[compact.ResolutionLevel]time.Duration

	// Report receives the state for readiness: nil while all goes well,
	// else the halt or the error being retried.
	Report func(error)
}

// Compactor runs compaction passes.
type Compactor struct {
	opts   Options
	logger log.Logger
	bkt    objstore.InstrumentedBucket // fenced by the lease

	syncer       *compact.Syncer
	compactor    *compact.BucketCompactor
	noCompact    *compact.GatherNoCompactionMarkFilter
	noDownsample *downsample.GatherNoDownsampleMarkFilter
	deletionMark *block.IgnoreDeletionMarkFilter
	cleaner      *compact.BlocksCleaner
	pass         *passContext

	halted, running             prometheus.Gauge
	iterations, retried         prometheus.Counter
	cleanups, partialDeletes    prometheus.Counter
	blocksCleaned, cleanFailed  prometheus.Counter
	blocksMarked                *prometheus.CounterVec
	downsamples, downsampleFail *prometheus.CounterVec
	downsampleDuration          *prometheus.HistogramVec
}

// New builds the compactor; nothing is read from the bucket before Run.
func New(o Options) (*Compactor, error) {
	if o.Concurrency <= 0 || o.DownsampleConcurrency <= 0 {
		return nil, errors.New("compactor concurrency must be positive")
	}
	if err := os.MkdirAll(o.Dir, 0o777); err != nil {
		return nil, fmt.Errorf("create compactor directory: %w", err)
	}
	c := &Compactor{opts: o, logger: o.Logger, pass: newPassContext()}
	c.bkt = o.Bucket
	if o.Lease != nil {
		c.bkt = fence(o.Bucket, o.Lease.Check)
	}
	c.metrics(o.Registerer)

	// The block fetcher's and Prometheus' compactor's metrics have the
	// store gateway's and the local TSDB's names: in one process they are
	// told apart by a label, the names (and dashboards) stay.
	shared := prometheus.WrapRegistererWith(prometheus.Labels{"module": "compactor"}, o.Registerer)
	thanosReg := extprom.WrapRegistererWithPrefix("thanos_", shared)
	// Blocks marked for deletion are still compacted from for half the
	// delay, until their replacement is surely visible (as stock).
	c.deletionMark = block.NewIgnoreDeletionMarkFilter(o.Logger, c.bkt, o.DeleteDelay/2, metaFetchConcurrency)
	duplicates := block.NewDeduplicateFilter(metaFetchConcurrency)
	c.noCompact = compact.NewGatherNoCompactionMarkFilter(o.Logger, c.bkt, metaFetchConcurrency)
	c.noDownsample = downsample.NewGatherNoDownsampleMarkFilter(o.Logger, c.bkt, metaFetchConcurrency)
	base, err := block.NewBaseFetcher(o.Logger, metaFetchConcurrency, c.bkt, block.NewConcurrentLister(o.Logger, c.bkt), filepath.Join(o.Dir, "meta"), thanosReg)
	if err != nil {
		return nil, fmt.Errorf("compactor meta fetcher: %w", err)
	}
	filters := []block.MetadataFilter{
		block.NewConsistencyDelayMetaFilter(o.Logger, o.ConsistencyDelay, thanosReg),
		c.deletionMark,
		block.NewReplicaLabelRemover(o.Logger, o.ReplicaLabels),
		duplicates,
		c.noCompact,
	}
	if o.Downsampling {
		filters = append(filters, c.noDownsample)
	}
	gcMarked := c.blocksMarked.WithLabelValues(metadata.DeletionMarkFilename, "")
	garbage := promauto.With(o.Registerer).NewCounter(prometheus.CounterOpts{
		Name: "thanos_compact_garbage_collected_blocks_total",
		Help: "Total number of blocks marked for deletion by compactor.",
	})
	c.syncer, err = compact.NewMetaSyncer(o.Logger, o.Registerer, c.bkt, base.NewMetaFetcher(thanosReg, filters), duplicates, c.deletionMark, gcMarked, garbage, 0)
	if err != nil {
		return nil, fmt.Errorf("compactor syncer: %w", err)
	}

	vertical := len(o.ReplicaLabels) > 0
	merge := storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge)
	if vertical {
		merge = dedup.ChunkSeriesMerge
	}
	// Prometheus' compactor takes one context for its life; each pass
	// swaps in its own, so that losing the lease or shutting down stops a
	// compaction in progress.
	comp, err := tsdb.NewLeveledCompactor(c.pass, shared, logutil.GoKitLogToSlog(o.Logger), levels, downsample.NewPool(), merge)
	if err != nil {
		return nil, fmt.Errorf("compactor: %w", err)
	}
	noCompactMarked := func(reason metadata.NoCompactReason) prometheus.Counter {
		return c.blocksMarked.WithLabelValues(metadata.NoCompactMarkFilename, string(reason))
	}
	grouper := compact.NewDefaultGrouper(o.Logger, c.bkt, false, vertical, o.Registerer, gcMarked, garbage,
		noCompactMarked(metadata.OutOfOrderChunksNoCompactReason), metadata.NoneFunc, blockFilesConcurrency, 1)
	large := compact.WithLargeTotalIndexSizeFilter(compact.NewPlanner(o.Logger, levels, c.noCompact),
		c.bkt, maxBlockIndexSize, noCompactMarked(metadata.IndexSizeExceedingNoCompactReason))
	var planner compact.Planner = large
	if vertical {
		planner = compact.WithVerticalCompactionDownsampleFilter(large, c.bkt, noCompactMarked(metadata.DownsampleVerticalCompactionNoCompactReason))
	}
	c.cleaner = compact.NewBlocksCleaner(o.Logger, c.bkt, c.deletionMark, o.DeleteDelay, c.blocksCleaned, c.cleanFailed)
	c.compactor, err = compact.NewBucketCompactor(o.Logger, c.syncer, skipNoCompact{grouper, c.noCompact}, planner, comp,
		filepath.Join(o.Dir, "compact"), c.bkt, o.Concurrency, true, c.cleaner)
	if err != nil {
		return nil, fmt.Errorf("compactor: %w", err)
	}
	return c, nil
}

// skipNoCompact leaves the blocks marked no-compact out of every group.
// Stock Thanos checks a group for overlaps before it plans and skips marked
// blocks only when planning, so an overlap halts it even after an operator
// marked one of the blocks; here the mark takes the block out of
// compaction, and downsampling and retention still see it.
type skipNoCompact struct {
	compact.Grouper
	marks *compact.GatherNoCompactionMarkFilter
}

func (g skipNoCompact) Groups(blocks map[ulid.ULID]*metadata.Meta) ([]*compact.Group, error) {
	marked := g.marks.NoCompactMarkedBlocks()
	if len(marked) == 0 {
		return g.Grouper.Groups(blocks)
	}
	keep := make(map[ulid.ULID]*metadata.Meta, len(blocks))
	for id, m := range blocks {
		if _, ok := marked[id]; !ok {
			keep[id] = m
		}
	}
	return g.Grouper.Groups(keep)
}
