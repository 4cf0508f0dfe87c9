package storegateway

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/store/labelpb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"github.com/thanos-io/thanos/pkg/testutil/e2eutil"
	"google.golang.org/grpc"
)

// seriesServer collects a Series answer.
type seriesServer struct {
	grpc.ServerStream
	ctx    context.Context
	series []*storepb.Series
}

func (s *seriesServer) Context() context.Context { return s.ctx }

func (s *seriesServer) Send(r *storepb.SeriesResponse) error {
	if ser := r.GetSeries(); ser != nil {
		s.series = append(s.series, ser)
	}
	if b := r.GetBatch(); b != nil {
		s.series = append(s.series, b.Series...)
	}
	return nil
}

// The store gateway answers with the external labels merged in (an
// external label wins over the series' own), the replica label left out,
// in labels order although leaving it out reorders the series (monstackd
// builds these labels in one pass: third_party/_thanos/pkg/store/
// bucket_monstackd.go); the chunk cache answers the same the second time,
// from memory.
func TestSeriesLabelsAndChunkCache(t *testing.T) {
	dir, bkt := testBucket(t)
	mint := time.Now().Add(-4 * time.Hour).Truncate(2 * time.Hour)
	ext := labels.FromStrings("cluster", "c1", "replica", "a")
	series := []labels.Labels{
		// With the replica label: {a, replica} sorts after {a, b, replica};
		// without it {a} sorts first.
		labels.FromStrings("__name__", "m", "a", "1"),
		labels.FromStrings("__name__", "m", "a", "1", "b", "x"),
		labels.FromStrings("__name__", "m", "a", "2", "zone", "z"),
		// The external label wins.
		labels.FromStrings("__name__", "m", "a", "3", "cluster", "own"),
	}
	if _, err := e2eutil.CreateBlock(context.Background(), filepath.Join(dir, "bucket"), series, 100,
		mint.UnixMilli(), mint.Add(2*time.Hour).UnixMilli(), ext, 0, metadata.NoneFunc, nil); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	g, err := New(Options{Logger: log.NewNopLogger(), Registerer: reg, Bucket: bkt,
		Dir: filepath.Join(dir, "sg"), IndexCacheSize: 1 << 20, ChunkCacheSize: 1 << 20, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.sync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	var want []labels.Labels
	for _, s := range series {
		b := labels.NewBuilder(s)
		b.Set("cluster", "c1")
		want = append(want, b.Labels())
	}
	slices.SortFunc(want, labels.Compare)

	var first []*storepb.Series
	for pass := range 2 {
		srv := &seriesServer{ctx: context.Background()}
		req := &storepb.SeriesRequest{
			MinTime: mint.UnixMilli(), MaxTime: mint.Add(2 * time.Hour).UnixMilli(),
			Matchers:             []storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "__name__", Value: "m"}},
			WithoutReplicaLabels: []string{"replica"},
		}
		if err := g.Store().Series(req, srv); err != nil {
			t.Fatal(err)
		}
		var got []labels.Labels
		for _, s := range srv.series {
			got = append(got, labelpb.ZLabelsToPromLabels(s.Labels))
			if len(s.Chunks) == 0 {
				t.Errorf("pass %d: %s without chunks", pass, s.PromLabels())
			}
		}
		if !slices.EqualFunc(got, want, labels.Equal) {
			t.Fatalf("pass %d: series\n%v\nwant\n%v", pass, got, want)
		}
		if pass == 0 {
			first = srv.series
			continue
		}
		for i := range first {
			a, err := first[i].Marshal()
			if err != nil {
				t.Fatal(err)
			}
			b, err := srv.series[i].Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("series %d from the cache differs: %v, first %v", i, srv.series[i], first[i])
			}
		}
	}
	if hits := getRangeHits(t, reg); hits == 0 {
		t.Error("no chunk read served from the cache on the second pass")
	}
}

func getRangeHits(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "thanos_store_bucket_cache_operation_hits_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == objstore.OpGetRange {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal("no thanos_store_bucket_cache_operation_hits_total{operation=\"get_range\"}")
	return 0
}

// The chunks of a Series answer stay intact after the call returns, while
// other queries run: the querier reads them in-process after Series has
// returned (a pooled chunk buffer given back at return was reused by the
// next query and corrupted them).
func TestSeriesChunksOutliveTheCall(t *testing.T) {
	dir, bkt := testBucket(t)
	mint := time.Now().Add(-4 * time.Hour).Truncate(2 * time.Hour)
	var series []labels.Labels
	for i := range 200 {
		series = append(series, labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), labels.FromStrings("__name__", "n", "i", fmt.Sprint(i)))
	}
	if _, err := e2eutil.CreateBlock(context.Background(), filepath.Join(dir, "bucket"), series, 240,
		mint.UnixMilli(), mint.Add(2*time.Hour).UnixMilli(), labels.FromStrings("replica", "a"), 0, metadata.NoneFunc, nil); err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{Logger: log.NewNopLogger(), Registerer: prometheus.NewRegistry(), Bucket: bkt,
		Dir: filepath.Join(dir, "sg"), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.sync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	query := func(name string) []*storepb.Series {
		srv := &seriesServer{ctx: context.Background()}
		req := &storepb.SeriesRequest{
			MinTime: mint.UnixMilli(), MaxTime: mint.Add(2 * time.Hour).UnixMilli(),
			Matchers: []storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "__name__", Value: name}},
		}
		if err := g.Store().Series(req, srv); err != nil {
			t.Fatal(err)
		}
		return srv.series
	}
	first := query("m")
	var kept [][]byte
	for _, s := range first {
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, b)
	}
	for range 5 {
		query("n")
	}
	for i, s := range first {
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, kept[i]) {
			t.Fatalf("series %s changed after later queries", s.PromLabels())
		}
	}
}
