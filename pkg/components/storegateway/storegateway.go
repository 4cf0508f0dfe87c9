// Package storegateway serves the bucket's blocks to the querier: a Thanos
// BucketStore, synced from one actor, with a retention guard that keeps a
// local TSDB block until the store serves it (no hand-off gap between a
// block's local deletion and the store's next sync).
package storegateway

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/gogo/protobuf/types"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"
	blocksapi "github.com/thanos-io/thanos/pkg/api/blocks"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/extprom"
	"github.com/thanos-io/thanos/pkg/gate"
	"github.com/thanos-io/thanos/pkg/model"
	"github.com/thanos-io/thanos/pkg/store"
	storecache "github.com/thanos-io/thanos/pkg/store/cache"
	"github.com/thanos-io/thanos/pkg/store/hintspb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
)

// Stock thanos store's defaults for what monstack.yml does not expose.
const (
	blockSyncConcurrency      = 20
	blockMetaFetchConcurrency = 32
	maxConcurrentSeries       = 20
	chunkPoolSize             = 2 << 30
	ignoreDeletionMarksDelay  = 24 * time.Hour
	lazyIndexReaderIdle       = 5 * time.Minute
)

// Backoff between failed syncs, capped by the sync interval.
const minBackoff = 5 * time.Second

// Options configure the store gateway.
type Options struct {
	Logger     log.Logger
	Registerer prometheus.Registerer
	Bucket     objstore.InstrumentedBucket
	// Dir holds the index-headers and cached metas; it must be outside the
	// TSDB directory (DESIGN.md §3.16).
	Dir string
	// IndexCacheSize bounds the in-memory index cache; 0 disables it.
	IndexCacheSize int64
	// ChunkCacheSize bounds the in-memory cache of chunk file ranges
	// read from the bucket; 0 disables it.
	ChunkCacheSize int64
	// Interval between syncs while all goes well.
	Interval time.Duration
	// Report receives the sync state for readiness: nil when the last sync
	// loaded every block, else what failed.
	Report func(error)
	// ReplicaLabel titles the bucket UI's block rows (stock
	// --bucket-web-label); a replica's blocks that the compactor merged into
	// one without it are not served.
	ReplicaLabel string
}

// StoreGateway is a BucketStore with its sync actor.
type StoreGateway struct {
	opts    Options
	store   *store.BucketStore
	fetcher *recordingFetcher
	trigger chan struct{}
	blocks  *blocksapi.BlocksAPI

	// served holds the ULIDs the store serves raw data for: its loaded
	// resolution-0 blocks and their compaction sources. Read by the TSDB's
	// retention, written after each sync.
	served atomic.Pointer[map[ulid.ULID]struct{}]
}

// New builds the store; nothing is read from the bucket before Run.
func New(o Options) (*StoreGateway, error) {
	if err := os.MkdirAll(o.Dir, 0o777); err != nil {
		return nil, fmt.Errorf("create store gateway directory: %w", err)
	}
	thanosReg := extprom.WrapRegistererWithPrefix("thanos_", o.Registerer)
	fetcher, err := block.NewMetaFetcher(o.Logger, blockMetaFetchConcurrency, o.Bucket, block.NewConcurrentLister(o.Logger, o.Bucket), o.Dir, thanosReg,
		[]block.MetadataFilter{
			// The shipper uploads meta.json last: a block is complete
			// once listed, and our own uploads are read at once.
			block.NewConsistencyDelayMetaFilter(o.Logger, 0, thanosReg),
			block.NewIgnoreDeletionMarkFilter(o.Logger, o.Bucket, ignoreDeletionMarksDelay, blockMetaFetchConcurrency),
			block.NewDeduplicateFilter(blockMetaFetchConcurrency),
			mergedFilter{replicaLabel: o.ReplicaLabel},
		})
	if err != nil {
		return nil, fmt.Errorf("store gateway meta fetcher: %w", err)
	}
	rf := &recordingFetcher{MetadataFetcher: fetcher, known: map[ulid.ULID]*metadata.Meta{}}
	blocks := newBlocksAPI(o.Logger, o.ReplicaLabel)
	// As stock thanos store: the bucket UI shows what each sync fetched.
	// Set here, before Run: the fetcher's listener is not goroutine-safe.
	fetcher.UpdateOnChange(func(metas []metadata.Meta, err error) {
		blocks.SetGlobal(metas, err)
		blocks.SetLoaded(metas, err)
	})
	chunkPool, err := store.NewDefaultChunkBytesPool(chunkPoolSize)
	if err != nil {
		return nil, fmt.Errorf("store gateway chunk pool: %w", err)
	}
	opts := []store.BucketStoreOption{
		store.WithLogger(o.Logger),
		store.WithRegistry(o.Registerer),
		store.WithQueryGate(gate.New(extprom.WrapRegistererWithPrefix("thanos_bucket_store_series_", o.Registerer), maxConcurrentSeries, gate.Queries)),
		// Store.Series copies the chunks out before the buffers go
		// back to this pool.
		store.WithChunkPool(chunkPool),
		store.WithChunkHashCalculation(true),
		store.WithSeriesMatchRatio(0.5),
	}
	if o.IndexCacheSize > 0 {
		cache, err := storecache.NewInMemoryIndexCacheWithConfig(o.Logger, nil, o.Registerer, storecache.InMemoryIndexCacheConfig{
			MaxSize:     model.Bytes(o.IndexCacheSize),
			MaxItemSize: min(storecache.DefaultInMemoryIndexCacheConfig.MaxItemSize, model.Bytes(o.IndexCacheSize)),
		})
		if err != nil {
			return nil, fmt.Errorf("store gateway index cache: %w", err)
		}
		opts = append(opts, store.WithIndexCache(cache))
	}
	bkt, err := chunkCachingBucket(o)
	if err != nil {
		return nil, err
	}
	bs, err := store.NewBucketStore(bkt, rf, o.Dir,
		store.NewChunksLimiterFactory(0), store.NewSeriesLimiterFactory(0), store.NewBytesLimiterFactory(0),
		store.NewGapBasedPartitioner(store.PartitionerMaxGapSize),
		blockSyncConcurrency, store.DefaultPostingOffsetInMemorySampling,
		false,                      // no series response hints: the querier does not read them
		false, lazyIndexReaderIdle, // index-headers loaded at sync, as stock
		opts...)
	if err != nil {
		return nil, fmt.Errorf("create bucket store: %w", err)
	}
	g := &StoreGateway{opts: o, store: bs, fetcher: rf, trigger: make(chan struct{}, 1), blocks: blocks}
	g.served.Store(&map[ulid.ULID]struct{}{})
	return g, nil
}

// Store returns the store as the querier reads it, in-process.
func (g *StoreGateway) Store() *Store { return &Store{BucketStore: g.store} }

// Trigger asks for a sync now (the shipper uploaded blocks).
func (g *StoreGateway) Trigger() {
	select {
	case g.trigger <- struct{}{}:
	default:
	}
}

// Keep is the TSDB's retention guard: a local block stays until the store
// serves its data (the shipper uploads it under the same ULID; a block the
// compactor merged is served through the merged block's sources). Empty
// blocks are never uploaded, so they may go.
func (g *StoreGateway) Keep(m tsdb.BlockMeta) bool {
	if m.Stats.NumSamples == 0 {
		return false
	}
	return !g.Serves(m.ULID)
}

// Serves reports whether the store serves the raw data of block id.
func (g *StoreGateway) Serves(id ulid.ULID) bool {
	_, ok := (*g.served.Load())[id]
	return ok
}

// Run syncs until ctx ends: the initial sync, retried with backoff while it
// fails, then every Interval and at once when triggered. A failure never
// ends the actor: the daemon goes on ingesting and answering from the local
// TSDB, and retention keeps every block the store does not serve.
func (g *StoreGateway) Run(ctx context.Context) error {
	var (
		wait, backoff time.Duration
		initial       = true
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		case <-g.trigger:
		}
		begin := time.Now()
		err := g.sync(ctx, initial)
		if ctx.Err() != nil {
			return nil
		}
		failed := g.refreshServed(ctx)
		switch {
		case err != nil:
			backoff = min(max(2*backoff, minBackoff), g.opts.Interval)
			wait = backoff
			what := "sync"
			if initial {
				what = "initial sync"
			}
			err = fmt.Errorf("bucket store %s failed, retrying in %s: %w", what, wait, err)
			level.Warn(g.opts.Logger).Log("msg", "bucket store sync failed", "err", err)
		default:
			if initial {
				level.Info(g.opts.Logger).Log("msg", "bucket store ready", "init_duration", time.Since(begin), "blocks", len(*g.served.Load()))
			}
			initial, backoff, wait = false, 0, g.opts.Interval
			if len(failed) > 0 {
				// Thanos retries them at every sync; say which.
				err = fmt.Errorf("%d blocks in the bucket failed to load (see thanos_bucket_store_block_load_failures_total and the log), the first %s", len(failed), failed[0])
			}
		}
		if g.opts.Report != nil {
			g.opts.Report(err)
		}
	}
}

func (g *StoreGateway) sync(ctx context.Context, initial bool) error {
	if initial {
		return g.store.InitialSync(ctx)
	}
	return g.store.SyncBlocks(ctx)
}

// refreshServed records which blocks the store has loaded and returns the
// blocks of the last fetch that it could not load. The BucketStore does not
// export its block list; a LabelNames call over all time lists the blocks it
// queried in its response hints, reading only the index-headers.
func (g *StoreGateway) refreshServed(ctx context.Context) (failed []ulid.ULID) {
	resp, err := g.store.LabelNames(ctx, &storepb.LabelNamesRequest{Start: math.MinInt64, End: math.MaxInt64, Limit: 1})
	if err != nil {
		level.Warn(g.opts.Logger).Log("msg", "listing the loaded blocks failed; keeping the previous list", "err", err)
		return nil
	}
	var hints hintspb.LabelNamesResponseHints
	if resp.Hints == nil || types.UnmarshalAny(resp.Hints, &hints) != nil {
		level.Warn(g.opts.Logger).Log("msg", "no block list in the bucket store's label names hints; keeping the previous list")
		return nil
	}
	loaded := map[ulid.ULID]bool{}
	for _, b := range hints.QueriedBlocks {
		if id, err := ulid.Parse(b.Id); err == nil {
			loaded[id] = true
		}
	}
	metas, last := g.fetcher.metas(loaded)
	served := map[ulid.ULID]struct{}{}
	for id := range loaded {
		m, ok := metas[id]
		if !ok || m.Thanos.Downsample.Resolution != 0 {
			continue
		}
		served[id] = struct{}{}
		for _, src := range m.Compaction.Sources {
			served[src] = struct{}{}
		}
	}
	g.served.Store(&served)
	for id := range last {
		if !loaded[id] {
			failed = append(failed, id)
		}
	}
	slices.SortFunc(failed, func(a, b ulid.ULID) int { return a.Compare(b) })
	return failed
}

// Close releases the blocks and index-headers.
func (g *StoreGateway) Close() error { return g.store.Close() }

// recordingFetcher remembers the metas the BucketStore was given, for the
// compaction sources of its loaded blocks.
type recordingFetcher struct {
	block.MetadataFetcher

	mtx   sync.Mutex
	known map[ulid.ULID]*metadata.Meta
	last  map[ulid.ULID]*metadata.Meta
}

func (f *recordingFetcher) Fetch(ctx context.Context) (map[ulid.ULID]*metadata.Meta, map[ulid.ULID]error, error) {
	metas, partial, err := f.MetadataFetcher.Fetch(ctx)
	if metas != nil {
		f.mtx.Lock()
		for id, m := range metas {
			f.known[id] = m
		}
		if err == nil {
			f.last = metas
		}
		f.mtx.Unlock()
	}
	return metas, partial, err
}

// metas returns the known metas and the last complete fetch, forgetting
// metas of blocks neither loaded nor in that fetch.
func (f *recordingFetcher) metas(loaded map[ulid.ULID]bool) (known, last map[ulid.ULID]*metadata.Meta) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	for id := range f.known {
		if _, ok := f.last[id]; !ok && !loaded[id] {
			delete(f.known, id)
		}
	}
	return f.known, f.last
}

// Store is the BucketStore as an in-process StoreAPI for the querier.
type Store struct {
	*store.BucketStore
}

// ExtLabelSets returns the external label sets of the loaded blocks.
func (s *Store) ExtLabelSets() []labels.Labels {
	sets := s.LabelSet()
	out := make([]labels.Labels, 0, len(sets))
	for _, ls := range sets {
		out = append(out, ls.PromLabels())
	}
	return out
}

// Matches reports whether matchers may select data here: the ProxyStore
// already checks them against the external label sets.
func (s *Store) Matches([]*labels.Matcher) bool { return true }

// Series is the BucketStore's, with the chunks copied out of its pooled
// buffers as they are sent: the BucketStore gives the buffers back to its
// pool when Series returns, as stock thanos store can once it has
// marshalled them to gRPC, but the querier here reads them afterwards, and
// a concurrent query reusing the buffers corrupted them ("EOF" errors or
// wrong samples). One copy into a few large slabs costs less than not
// pooling (a buffer per chunk read and per chunk).
func (s *Store) Series(req *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error {
	return s.BucketStore.Series(req, &copyingServer{Store_SeriesServer: srv})
}

// chunkSlabSize is the smallest slab copyingServer allocates: a few
// hundred chunks.
const chunkSlabSize = 256 << 10

// copyingServer copies the chunk bytes of the series it sends into slabs
// of its own, which the series keep alive.
type copyingServer struct {
	storepb.Store_SeriesServer
	slab []byte
}

func (c *copyingServer) Send(r *storepb.SeriesResponse) error {
	if s := r.GetSeries(); s != nil {
		c.copyChunks(s)
	}
	if b := r.GetBatch(); b != nil {
		for _, s := range b.Series {
			c.copyChunks(s)
		}
	}
	return c.Store_SeriesServer.Send(r)
}

func (c *copyingServer) copyChunks(s *storepb.Series) {
	for i := range s.Chunks {
		ch := &s.Chunks[i]
		for _, f := range []*storepb.Chunk{ch.Raw, ch.Count, ch.Sum, ch.Min, ch.Max, ch.Counter} {
			if f != nil {
				f.Data = c.copy(f.Data)
			}
		}
	}
}

func (c *copyingServer) copy(b []byte) []byte {
	if cap(c.slab)-len(c.slab) < len(b) {
		c.slab = make([]byte, 0, max(chunkSlabSize, len(b)))
	}
	n := len(c.slab)
	c.slab = append(c.slab, b...)
	return c.slab[n:len(c.slab):len(c.slab)]
}
