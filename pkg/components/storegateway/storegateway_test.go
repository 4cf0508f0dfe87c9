package storegateway

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
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/testutil/e2eutil"
)

// The retention guard keeps a block until the store serves it, then lets
// it go; empty blocks are never kept.
func TestKeepUntilServed(t *testing.T) {
	dir, bkt := testBucket(t)
	mint := time.Now().Add(-4 * time.Hour).Truncate(2 * time.Hour)
	id, err := e2eutil.CreateBlock(context.Background(), filepath.Join(dir, "bucket"), []labels.Labels{labels.FromStrings("__name__", "m")}, 10,
		mint.UnixMilli(), mint.Add(2*time.Hour).UnixMilli(), labels.FromStrings("replica", "a"), 0, metadata.NoneFunc, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{Logger: log.NewNopLogger(), Registerer: prometheus.NewRegistry(), Bucket: bkt,
		Dir: filepath.Join(dir, "sg"), IndexCacheSize: 1 << 20, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	meta := tsdb.BlockMeta{ULID: id, Stats: tsdb.BlockStats{NumSamples: 10}}
	if !g.Keep(meta) {
		t.Fatal("block kept before the store serves it: want true")
	}
	if g.Keep(tsdb.BlockMeta{ULID: ulid.MustNew(1, nil)}) {
		t.Error("empty block kept")
	}
	reports := make(chan error, 10)
	g.opts.Report = func(err error) { reports <- err }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	if err := <-reports; err != nil {
		t.Fatalf("first sync: %v", err)
	}
	if g.Keep(meta) {
		t.Error("block kept although the store serves it")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// testBucket is a FILESYSTEM bucket under dir/bucket, instrumented as the
// daemon's is.
func testBucket(t *testing.T) (dir string, bkt objstore.InstrumentedBucket) {
	t.Helper()
	dir = t.TempDir()
	fs, err := filesystem.NewBucket(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, objstore.WrapWithMetrics(fs, nil, "test")
}
