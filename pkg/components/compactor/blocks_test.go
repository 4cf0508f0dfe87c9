package compactor

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/logutil"
)

// Test data: series sampled every step, each value a function of its
// series and timestamp only, so that both replicas agree and any
// deduplicated answer can be checked sample by sample.
const step = time.Minute

var testSeries = []labels.Labels{
	labels.FromStrings("__name__", "up", "job", "node"),
	labels.FromStrings("__name__", "requests_total", "job", "node", "code", "200"),
	labels.FromStrings("__name__", "requests_total", "job", "node", "code", "500"),
}

func value(i int, ts int64) float64 { return float64(i+1) * float64(ts/1000) }

func newBucket(t *testing.T) objstore.InstrumentedBucket {
	t.Helper()
	bkt, err := filesystem.NewBucket(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	return objstore.WrapWithMetrics(bkt, prometheus.NewRegistry(), "test")
}

// blockSpec is one block to upload: a replica's samples over [mint, maxt),
// the first at mint+offset. shiftMeta moves the meta's range away from the
// samples, which makes a corrupt block (chunks outside its range).
type blockSpec struct {
	replica    string
	mint, maxt time.Time
	offset     time.Duration
	level      int
	shiftMeta  time.Duration
}

// upload writes the block and uploads it as the sidecar would.
func upload(t *testing.T, bkt objstore.Bucket, b blockSpec) ulid.ULID {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	w, err := tsdb.NewBlockWriter(logutil.GoKitLogToSlog(log.NewNopLogger()), dir, b.maxt.Sub(b.mint).Milliseconds())
	if err != nil {
		t.Fatal(err)
	}
	app := w.Appender(ctx)
	for ts := b.mint.Add(b.offset).UnixMilli(); ts < b.maxt.UnixMilli(); ts += step.Milliseconds() {
		for i, l := range testSeries {
			if _, err := app.Append(0, l, ts, value(i, ts)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	id, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	bdir := filepath.Join(dir, id.String())
	m, err := metadata.ReadFromDir(bdir)
	if err != nil {
		t.Fatal(err)
	}
	m.MinTime, m.MaxTime = b.mint.Add(b.shiftMeta).UnixMilli(), b.maxt.Add(b.shiftMeta).UnixMilli()
	m.Compaction.Level = max(b.level, 1)
	m.Thanos = metadata.Thanos{
		Labels:     map[string]string{"replica": b.replica, "cluster": "test"},
		Source:     metadata.SidecarSource,
		Downsample: metadata.ThanosDownsample{Resolution: 0},
	}
	if err := m.WriteToDir(log.NewNopLogger(), bdir); err != nil {
		t.Fatal(err)
	}
	if err := block.Upload(ctx, log.NewNopLogger(), bkt, bdir, metadata.NoneFunc); err != nil {
		t.Fatal(err)
	}
	return id
}

// bucketBlocks reads every block's meta, with whether it is marked for
// deletion.
func bucketBlocks(t *testing.T, bkt objstore.Bucket) (live, marked map[ulid.ULID]*metadata.Meta) {
	t.Helper()
	ctx := context.Background()
	live, marked = map[ulid.ULID]*metadata.Meta{}, map[ulid.ULID]*metadata.Meta{}
	err := bkt.Iter(ctx, "", func(name string) error {
		id, ok := block.IsBlockDir(name)
		if !ok {
			return nil
		}
		m, err := block.DownloadMeta(ctx, log.NewNopLogger(), bkt, id)
		if err != nil {
			return nil // partial
		}
		if ok, _ := bkt.Exists(ctx, id.String()+"/"+metadata.DeletionMarkFilename); ok {
			marked[id] = &m
		} else {
			live[id] = &m
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return live, marked
}

// readBlock returns each series' samples in block id.
func readBlock(t *testing.T, bkt objstore.Bucket, id ulid.ULID) map[string][][2]float64 {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), id.String())
	if err := block.Download(ctx, log.NewNopLogger(), bkt, id, dir); err != nil {
		t.Fatal(err)
	}
	b, err := tsdb.OpenBlock(nil, dir, chunkenc.NewPool(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q, err := tsdb.NewBlockQuerier(b, b.MinTime(), b.MaxTime())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][][2]float64{}
	ss := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for ss.Next() {
		s := ss.At()
		it := s.Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[s.Labels().String()] = append(out[s.Labels().String()], [2]float64{float64(ts), v})
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
