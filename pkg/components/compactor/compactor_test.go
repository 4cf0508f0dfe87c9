package compactor

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/compact"
	"github.com/thanos-io/thanos/pkg/compact/downsample"
)

func newCompactor(t *testing.T, bkt objstore.InstrumentedBucket, o Options) *Compactor {
	t.Helper()
	o.Logger = log.NewNopLogger()
	if testing.Verbose() {
		o.Logger = log.NewLogfmtLogger(log.NewSyncWriter(testWriter{t}))
	}
	o.Registerer = prometheus.NewRegistry()
	o.Bucket = bkt
	o.Dir = filepath.Join(t.TempDir(), "compactor")
	o.Concurrency, o.DownsampleConcurrency = 1, 1
	if o.Interval == 0 {
		o.Interval = time.Hour
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

const day = 24 * time.Hour

// align truncates t to a multiple of d since the Unix epoch, as the
// compaction levels are aligned.
func align(t time.Time, d time.Duration) time.Time {
	return time.UnixMilli(t.UnixMilli() / d.Milliseconds() * d.Milliseconds())
}

// history uploads both replicas' blocks: seven 2d blocks filling a 14d
// window that ended more than six days ago, then six 2h blocks after it
// (the newest is left out of compaction, as it may be about to grow).
// B scrapes 20s after A.
func history(t *testing.T, bkt objstore.Bucket) (start time.Time, sources []ulid.ULID) {
	t.Helper()
	start = align(time.Now().Add(-20*day), 14*day)
	for r, replica := range []string{"a", "b"} {
		offset := time.Duration(r) * 20 * time.Second
		for i := range 7 {
			from := start.Add(time.Duration(i) * 2 * day)
			sources = append(sources, upload(t, bkt, blockSpec{replica: replica, mint: from, maxt: from.Add(2 * day), offset: offset, level: 3}))
		}
		for i := range 6 {
			from := start.Add(14*day + time.Duration(i)*2*time.Hour)
			sources = append(sources, upload(t, bkt, blockSpec{replica: replica, mint: from, maxt: from.Add(2 * time.Hour), offset: offset}))
		}
	}
	return start, sources
}

func TestCompactionDeduplicatesDownsamplesAndRetains(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	start, sources := history(t, bkt)
	end14d, end8h := start.Add(14*day), start.Add(14*day+8*time.Hour)
	// Raw data is kept if it ends later than 1h after the 14d window: the
	// 14d raw block goes, the 8h one stays, the downsampled ones are kept
	// forever.
	retention := map[compact.ResolutionLevel]time.Duration{compact.ResolutionLevelRaw: time.Since(end14d) - time.Hour}
	c := newCompactor(t, bkt, Options{ReplicaLabels: []string{"replica"}, Downsampling: true, DeleteDelay: time.Hour, Retention: retention})
	if err := c.runPass(ctx); err != nil {
		t.Fatal(err)
	}

	live, marked := bucketBlocks(t, bkt)
	for _, id := range sources {
		if _, ok := marked[id]; !ok {
			t.Errorf("source block %s is not marked for deletion", id)
		}
	}
	type shape struct {
		res        int64
		mint, maxt int64
	}
	var got []shape
	for _, m := range live {
		got = append(got, shape{m.Thanos.Downsample.Resolution, m.MinTime, m.MaxTime})
		if _, ok := m.Thanos.Labels["replica"]; ok {
			t.Errorf("block %s keeps the replica label %v: replicas were not merged", m.ULID, m.Thanos.Labels)
		}
	}
	want := []shape{
		// The 14d raw block is marked by retention, not deleted yet
		// (delete delay 1h).
		{downsample.ResLevel0, end14d.UnixMilli(), end8h.UnixMilli()},
		// The last 2h blocks are only merged A+B: the newest is not
		// compacted further until newer ones come.
		{downsample.ResLevel0, end8h.UnixMilli(), end8h.Add(2 * time.Hour).UnixMilli()},
		{downsample.ResLevel0, end8h.Add(2 * time.Hour).UnixMilli(), end8h.Add(4 * time.Hour).UnixMilli()},
		{downsample.ResLevel1, start.UnixMilli(), end14d.UnixMilli()},
		{downsample.ResLevel2, start.UnixMilli(), end14d.UnixMilli()},
	}
	cmp := func(a, b shape) int {
		if a.res != b.res {
			return int(a.res - b.res)
		}
		return int(a.mint - b.mint)
	}
	slices.SortFunc(got, cmp)
	if !slices.Equal(got, want) {
		t.Fatalf("live blocks %+v, want %+v", got, want)
	}

	// The merged raw blocks hold one copy: every sample once, a step
	// apart, with the value both replicas had.
	var raw14d *metadata.Meta
	for _, m := range marked {
		if m.Thanos.Downsample.Resolution == 0 && m.MinTime == start.UnixMilli() && m.MaxTime == end14d.UnixMilli() {
			raw14d = m
		}
	}
	if raw14d == nil {
		t.Fatal("no 14d raw block")
	}
	if n := len(raw14d.Compaction.Sources); n != 14 {
		t.Errorf("the 14d block has %d sources, want 14 (7 of each replica)", n)
	}
	raw := []ulid.ULID{raw14d.ULID}
	for id, m := range live {
		if m.Thanos.Downsample.Resolution == 0 {
			raw = append(raw, id)
		}
	}
	for _, id := range raw {
		for name, samples := range readBlock(t, bkt, id) {
			i := slices.IndexFunc(testSeries, func(l labels.Labels) bool { return l.String() == name })
			if i < 0 {
				t.Fatalf("block %s has unexpected series %s", id, name)
			}
			// One replica's samples, not both replicas'.
			if n := int(blockMeta(t, bkt, id).MaxTime-blockMeta(t, bkt, id).MinTime) / int(step.Milliseconds()); len(samples) < n-1 || len(samples) > n+1 {
				t.Fatalf("block %s series %s has %d samples, want one copy of %d", id, name, len(samples), n)
			}
			for _, s := range samples {
				if s[1] != value(i, int64(s[0])) {
					t.Fatalf("block %s series %s at %v: %v, want %v", id, name, s[0], s[1], value(i, int64(s[0])))
				}
			}
		}
	}

	// After the delete delay the marked blocks go: the sources and the
	// 14d raw block, which retention marked.
	c = newCompactor(t, bkt, Options{ReplicaLabels: []string{"replica"}, Downsampling: true, Retention: retention})
	for range 2 {
		if err := c.runPass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	live2, marked2 := bucketBlocks(t, bkt)
	if len(marked2) != 0 {
		t.Errorf("%d blocks still marked for deletion after the delay", len(marked2))
	}
	if len(live2) != len(want) {
		t.Errorf("%d live blocks, want the same %d", len(live2), len(want))
	}
	for id := range live2 {
		if _, ok := live[id]; !ok {
			t.Errorf("block %s appeared in a pass with nothing to do", id)
		}
	}
}

func blockMeta(t *testing.T, bkt objstore.Bucket, id ulid.ULID) metadata.Meta {
	t.Helper()
	m, err := block.DownloadMeta(context.Background(), log.NewNopLogger(), bkt, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// reports collects what the compactor reports for readiness.
type reports struct {
	mtx  sync.Mutex
	last error
	n    int
}

func (r *reports) report(err error) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	r.last, r.n = err, r.n+1
}

func (r *reports) get() (error, int) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	return r.last, r.n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run starts c.Run and stops it at the end of the test.
func run(t *testing.T, c *Compactor) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// A block that cannot be compacted halts the compactor: a reported state
// that names the block, retried after a back-off; a no-compact mark on the
// block lets compaction go on without it.
func TestHaltIsAStateAndANoCompactMarkResumes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dedup  bool
		blocks func(t *testing.T, bkt objstore.Bucket, start time.Time) ulid.ULID
	}{
		{
			name:  "corrupt block",
			dedup: true,
			blocks: func(t *testing.T, bkt objstore.Bucket, start time.Time) ulid.ULID {
				var bad ulid.ULID
				for i := range 5 {
					from := start.Add(time.Duration(i) * 2 * time.Hour)
					spec := blockSpec{replica: "a", mint: from, maxt: from.Add(2 * time.Hour)}
					if i == 1 {
						// Its chunks lie outside the range its meta claims.
						spec.shiftMeta = 6 * time.Hour
						spec.mint, spec.maxt = spec.mint.Add(-6*time.Hour), spec.maxt.Add(-6*time.Hour)
						bad = upload(t, bkt, spec)
						continue
					}
					upload(t, bkt, spec)
				}
				return bad
			},
		},
		{
			name: "overlap without deduplication",
			blocks: func(t *testing.T, bkt objstore.Bucket, start time.Time) ulid.ULID {
				for i := range 5 {
					from := start.Add(time.Duration(i) * 2 * time.Hour)
					upload(t, bkt, blockSpec{replica: "a", mint: from, maxt: from.Add(2 * time.Hour)})
				}
				// The same replica's block again, written by something
				// else: it cannot be merged without vertical compaction.
				return upload(t, bkt, blockSpec{replica: "a", mint: start.Add(time.Hour), maxt: start.Add(3 * time.Hour), offset: 30 * time.Second})
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bkt := newBucket(t)
			start := align(time.Now().Add(-3*day), 8*time.Hour)
			bad := tc.blocks(t, bkt, start)
			var r reports
			o := Options{Interval: 200 * time.Millisecond, Report: r.report}
			if tc.dedup {
				o.ReplicaLabels = []string{"replica"}
			}
			c := newCompactor(t, bkt, o)
			run(t, c)
			waitFor(t, "a halt", func() bool { err, _ := r.get(); return err != nil })
			err, _ := r.get()
			if !errors.Is(err, ErrHalted) || !strings.Contains(err.Error(), bad.String()) {
				t.Fatalf("reported %v, want a halt naming block %s", err, bad)
			}
			if v := testutil.ToFloat64(c.halted); v != 1 {
				t.Errorf("thanos_compact_halted %v, want 1", v)
			}

			if err := block.MarkForNoCompact(context.Background(), log.NewNopLogger(), bkt, bad, metadata.ManualNoCompactReason, "test", prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a successful pass", func() bool { return testutil.ToFloat64(c.iterations) > 0 })
			if v := testutil.ToFloat64(c.halted); v != 0 {
				t.Errorf("thanos_compact_halted %v after the mark, want 0", v)
			}
			live, _ := bucketBlocks(t, bkt)
			if _, ok := live[bad]; !ok {
				t.Errorf("block %s was deleted; a no-compact mark only leaves it out", bad)
			}
			var compacted bool
			for _, m := range live {
				compacted = compacted || m.Compaction.Level > 1
			}
			if !compacted {
				t.Error("no block was compacted after the mark")
			}
		})
	}
}

// fakeLease is held from the start; lose makes Check fail.
type fakeLease struct {
	mtx  sync.Mutex
	lost error
}

func (l *fakeLease) Acquired(ctx context.Context) (context.Context, error) { return ctx, ctx.Err() }
func (l *fakeLease) Check() error {
	l.mtx.Lock()
	defer l.mtx.Unlock()
	return l.lost
}

// Without the lease, no write reaches the bucket: a pass that would
// compact uploads nothing and marks nothing.
func TestNoWriteWithoutTheLease(t *testing.T) {
	bkt := newBucket(t)
	start := align(time.Now().Add(-3*day), 8*time.Hour)
	for i := range 5 {
		from := start.Add(time.Duration(i) * 2 * time.Hour)
		upload(t, bkt, blockSpec{replica: "a", mint: from, maxt: from.Add(2 * time.Hour)})
	}
	before, _ := bucketBlocks(t, bkt)
	lease := &fakeLease{lost: errors.New("lease lost: held by replica-b")}
	c := newCompactor(t, bkt, Options{Lease: lease, ReplicaLabels: []string{"replica"}})
	err := c.runPass(context.Background())
	if err == nil || !strings.Contains(err.Error(), "held by replica-b") {
		t.Fatalf("pass without the lease: %v, want the refused write", err)
	}
	after, marked := bucketBlocks(t, bkt)
	if len(after) != len(before) || len(marked) != 0 {
		t.Errorf("the bucket changed without the lease: %d blocks (%d marked), had %d", len(after)+len(marked), len(marked), len(before))
	}

	lease.mtx.Lock()
	lease.lost = nil
	lease.mtx.Unlock()
	if err := c.runPass(context.Background()); err != nil {
		t.Fatalf("pass with the lease: %v", err)
	}
	live, _ := bucketBlocks(t, bkt)
	if !slices.ContainsFunc(slices.Collect(maps.Values(live)), func(m *metadata.Meta) bool { return m.Compaction.Level > 1 }) {
		t.Error("nothing was compacted with the lease held")
	}
}

func TestToDownsample(t *testing.T) {
	id := func(n byte) ulid.ULID { return ulid.ULID{n} }
	meta := func(n byte, res int64, span time.Duration, sources ...ulid.ULID) *metadata.Meta {
		m := &metadata.Meta{}
		m.ULID, m.MinTime, m.MaxTime = id(n), 0, span.Milliseconds()
		m.Thanos.Downsample.Resolution = res
		m.Compaction.Sources = sources
		return m
	}
	metas := map[ulid.ULID]*metadata.Meta{}
	for _, m := range []*metadata.Meta{
		meta(1, 0, 2*day, id(1)),                              // 48h raw: to 5m
		meta(2, 0, 8*time.Hour, id(2)),                        // too short
		meta(3, 0, 14*day, id(30), id(31)),                    // already has a 5m block (4)
		meta(4, downsample.ResLevel1, 14*day, id(30), id(31)), // 5m over 14d: to 1h
		meta(5, downsample.ResLevel1, 2*day, id(50)),          // too short for 1h
		meta(6, downsample.ResLevel2, 14*day, id(60)),
		meta(7, 0, 2*day, id(7)), // marked no-downsample
	} {
		metas[m.ULID] = m
	}
	got := toDownsample(metas, map[ulid.ULID]*metadata.NoDownsampleMark{id(7): {}})
	var ids []ulid.ULID
	for _, m := range got {
		ids = append(ids, m.ULID)
	}
	if want := []ulid.ULID{id(1), id(4)}; !slices.Equal(ids, want) {
		t.Errorf("toDownsample picked %v, want %v", ids, want)
	}
}

// An upload aborted more than two days ago (Thanos'
// PartialUploadThresholdAge: no meta.json, nothing written since) is
// deleted; a recent one, which may still be in progress, is not.
func TestAbortedPartialUploadsCleaned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bucket")
	fs, err := filesystem.NewBucket(dir)
	if err != nil {
		t.Fatal(err)
	}
	bkt := objstore.WrapWithMetrics(fs, prometheus.NewRegistry(), "test")
	start := align(time.Now().Add(-5*day), 2*time.Hour)
	partial := func(from time.Time) ulid.ULID {
		id := upload(t, bkt, blockSpec{replica: "a", mint: from, maxt: from.Add(2 * time.Hour)})
		if err := bkt.Delete(context.Background(), id.String()+"/"+metadata.MetaFilename); err != nil {
			t.Fatal(err)
		}
		return id
	}
	old, recent := partial(start), partial(start.Add(2*time.Hour))
	past := time.Now().Add(-3 * day)
	err = filepath.Walk(filepath.Join(dir, old.String()), func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, past, past)
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newCompactor(t, bkt, Options{ReplicaLabels: []string{"replica"}})
	if err := c.runPass(context.Background()); err != nil {
		t.Fatal(err)
	}
	exists := func(id ulid.ULID) bool {
		ok, err := bkt.Exists(context.Background(), id.String()+"/"+block.IndexFilename)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if exists(old) {
		t.Errorf("the upload aborted 3 days ago (%s) is still there", old)
	}
	if !exists(recent) {
		t.Errorf("the recent partial upload %s was deleted", recent)
	}
}
