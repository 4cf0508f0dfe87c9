package compactor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/compact/downsample"
	"github.com/thanos-io/thanos/pkg/logutil"
)

// toDownsample picks the blocks to downsample, with stock Thanos' rules: a
// raw block becomes 5m once it spans 40h and a 5m block 1h once it spans
// 10 days (so that each output chunk holds enough samples), unless every
// one of its sources is already in a block of the target resolution, or it
// is marked no-downsample. Oldest first.
func toDownsample(metas map[ulid.ULID]*metadata.Meta, noDownsample map[ulid.ULID]*metadata.NoDownsampleMark) []*metadata.Meta {
	covered := map[int64]map[ulid.ULID]bool{downsample.ResLevel1: {}, downsample.ResLevel2: {}}
	for _, m := range metas {
		if c, ok := covered[m.Thanos.Downsample.Resolution]; ok {
			for _, id := range m.Compaction.Sources {
				c[id] = true
			}
		}
	}
	var out []*metadata.Meta
	for id, m := range metas {
		if _, ok := noDownsample[id]; ok {
			continue
		}
		target, span := targetOf(m.Thanos.Downsample.Resolution)
		if target == 0 || m.MaxTime-m.MinTime < span {
			continue
		}
		if !slices.ContainsFunc(m.Compaction.Sources, func(s ulid.ULID) bool { return !covered[target][s] }) {
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *metadata.Meta) int { return a.ULID.Compare(b.ULID) })
	return out
}

// targetOf returns the resolution a block of resolution res is downsampled
// to and the span it needs first; 0 for 1h blocks.
func targetOf(res int64) (target, span int64) {
	switch res {
	case downsample.ResLevel0:
		return downsample.ResLevel1, downsample.ResLevel1DownsampleRange
	case downsample.ResLevel1:
		return downsample.ResLevel2, downsample.ResLevel2DownsampleRange
	}
	return 0, 0
}

// downsample downsamples the eligible blocks, DownsampleConcurrency at a
// time; the first error stops the pass.
func (c *Compactor) downsample(ctx context.Context, metas map[ulid.ULID]*metadata.Meta) error {
	todo := toDownsample(metas, c.noDownsample.NoDownsampleMarkedBlocks())
	if len(todo) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg   sync.WaitGroup
		work = make(chan *metadata.Meta)
	)
	for range c.opts.DownsampleConcurrency {
		wg.Go(func() {
			for m := range work {
				if err := c.downsampleBlock(ctx, m); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, m := range todo {
		select {
		case work <- m:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// downsampleBlock downloads m, writes its downsampled block and uploads it.
func (c *Compactor) downsampleBlock(ctx context.Context, m *metadata.Meta) error {
	res := m.Thanos.ResolutionString()
	target, _ := targetOf(m.Thanos.Downsample.Resolution)
	c.downsamples.WithLabelValues(res).Inc()
	err := c.downsampleTo(ctx, m, target)
	if err != nil {
		c.downsampleFail.WithLabelValues(res).Inc()
		return fmt.Errorf("downsample block %s to %s: %w", m.ULID, time.Duration(target)*time.Millisecond, err)
	}
	return nil
}

func (c *Compactor) downsampleTo(ctx context.Context, m *metadata.Meta, target int64) error {
	dir := filepath.Join(c.opts.Dir, "downsample")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	in := filepath.Join(dir, m.ULID.String())
	defer os.RemoveAll(in)
	if err := block.Download(ctx, c.logger, c.bkt, m.ULID, in, objstore.WithFetchConcurrency(blockFilesConcurrency)); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if err := block.VerifyIndex(ctx, c.logger, filepath.Join(in, block.IndexFilename), m.MinTime, m.MaxTime); err != nil {
		return halt(fmt.Errorf("input block %s index not valid: %w", m.ULID, err))
	}
	var pool chunkenc.Pool = chunkenc.NewPool()
	if m.Thanos.Downsample.Resolution > 0 {
		pool = downsample.NewPool()
	}
	b, err := tsdb.OpenBlock(logutil.GoKitLogToSlog(c.logger), in, pool, nil)
	if err != nil {
		return halt(fmt.Errorf("open block %s: %w", m.ULID, err))
	}
	defer b.Close()

	begin := time.Now()
	id, err := downsample.Downsample(ctx, c.logger, m, b, dir, target)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, id.String())
	defer os.RemoveAll(out)
	c.downsampleDuration.WithLabelValues(m.Thanos.ResolutionString()).Observe(time.Since(begin).Seconds())

	stats, err := block.GatherIndexHealthStats(ctx, c.logger, filepath.Join(out, block.IndexFilename), m.MinTime, m.MaxTime)
	if err == nil {
		err = stats.AnyErr()
	}
	if err != nil {
		return halt(fmt.Errorf("downsampled block %s index not valid: %w", id, err))
	}
	meta, err := metadata.ReadFromDir(out)
	if err != nil {
		return fmt.Errorf("read meta of %s: %w", id, err)
	}
	meta.Thanos.IndexStats.ChunkMaxSize = max(meta.Thanos.IndexStats.ChunkMaxSize, stats.ChunkMaxSize)
	meta.Thanos.IndexStats.SeriesMaxSize = max(meta.Thanos.IndexStats.SeriesMaxSize, stats.SeriesMaxSize)
	if err := meta.WriteToDir(c.logger, out); err != nil {
		return fmt.Errorf("write meta of %s: %w", id, err)
	}
	// meta.json goes last: until it is there, readers see no block.
	if err := block.Upload(ctx, c.logger, c.bkt, out, metadata.NoneFunc); err != nil {
		return fmt.Errorf("upload downsampled block %s: %w", id, err)
	}
	level.Info(c.logger).Log("msg", "downsampled block", "from", m.ULID, "to", id, "resolution", time.Duration(target)*time.Millisecond,
		"duration", time.Since(begin).Round(time.Millisecond))
	return nil
}

// halt marks err as one that retrying soon would not resolve.
func halt(err error) error { return fmt.Errorf("%w: %w", ErrHalted, err) }
