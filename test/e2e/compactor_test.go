package e2e

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
)

// compactStep is the synthetic replicas' scrape interval; replica b scrapes
// 20s after a. A sample's value depends on its series and the minute
// only, so that the replicas agree on every value, and any deduplication
// (at query time or in the compactor) gives the same answers.
const compactStep = time.Minute

// replicas are the synthetic pair: b scrapes 20s after a.
var replicas = []struct {
	name   string
	offset time.Duration
}{{"a", 0}, {"b", 20 * time.Second}}

// uploadReplica uploads replica's 2h blocks over [from, to) as its shipper
// would, and returns their IDs.
func uploadReplica(t *testing.T, bkt objstore.Bucket, replica string, from, to time.Time, offset time.Duration) []ulid.ULID {
	t.Helper()
	return uploadReplicaBlocks(t, bkt, replica, from, to, offset, 2*time.Hour)
}

// uploadReplicaBlocks is uploadReplica with blocks of span (2d: blocks
// compacted before).
func uploadReplicaBlocks(t *testing.T, bkt objstore.Bucket, replica string, from, to time.Time, offset, span time.Duration) []ulid.ULID {
	t.Helper()
	return uploadReplicaSeries(t, bkt, replica, from, to, offset, span, 10)
}

// uploadReplicaSeries is uploadReplicaBlocks with n series.
func uploadReplicaSeries(t *testing.T, bkt objstore.Bucket, replica string, from, to time.Time, offset, span time.Duration, n int) []ulid.ULID {
	t.Helper()
	var ids []ulid.ULID
	for mint := from; mint.Before(to); mint = mint.Add(span) {
		dir := t.TempDir()
		var series []storage.Series
		for i := range n {
			var samples []chunks.Sample
			for ts := mint.Add(offset); ts.Before(mint.Add(span)); ts = ts.Add(compactStep) {
				samples = append(samples, pt{t: ts.UnixMilli(), v: float64(ts.Unix()/60%10000 + int64(100*i))})
			}
			series = append(series, storage.NewListSeries(labels.FromStrings("__name__", "e2e_compact", "i", strconv.Itoa(i)), samples))
		}
		// Twice the span: the head takes samples back to half its range
		// behind the newest, and each series starts at mint again.
		bdir, err := tsdb.CreateBlock(series, dir, 2*span.Milliseconds(), promslog.NewNopLogger())
		if err != nil {
			t.Fatal(err)
		}
		meta, err := metadata.ReadFromDir(bdir)
		if err != nil {
			t.Fatal(err)
		}
		// The TSDB's block range, whatever the first and last samples.
		meta.MinTime, meta.MaxTime = mint.UnixMilli(), mint.Add(span).UnixMilli()
		meta.Thanos = metadata.Thanos{Labels: map[string]string{"cluster": "e2e", "replica": replica}, Source: metadata.SidecarSource}
		if err := meta.WriteToDir(log.NewNopLogger(), bdir); err != nil {
			t.Fatal(err)
		}
		if err := block.Upload(context.Background(), log.NewNopLogger(), bkt, bdir, metadata.NoneFunc); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, meta.ULID)
	}
	return ids
}

// alignTo truncates t to a multiple of d since the Unix epoch, as the
// compaction levels are aligned.
func alignTo(t time.Time, d time.Duration) time.Time {
	return time.UnixMilli(t.UnixMilli() / d.Milliseconds() * d.Milliseconds())
}

// liveBlocks lists the bucket's blocks that are not marked for deletion.
func liveBlocks(t *testing.T, bkt objstore.Bucket) ([]metadata.Meta, error) {
	t.Helper()
	ctx := context.Background()
	var out []metadata.Meta
	err := bkt.Iter(ctx, "", func(name string) error {
		id, ok := block.IsBlockDir(name)
		if !ok {
			return nil
		}
		if marked, err := bkt.Exists(ctx, id.String()+"/"+metadata.DeletionMarkFilename); err != nil || marked {
			return err
		}
		m, err := block.DownloadMeta(ctx, log.NewNopLogger(), bkt, id)
		if err != nil {
			return nil // an upload in progress
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// liveBytes is the size of the live blocks' objects.
func liveBytes(t *testing.T, bkt objstore.Bucket) int64 {
	t.Helper()
	ctx := context.Background()
	blocks, err := liveBlocks(t, bkt)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, m := range blocks {
		err := bkt.Iter(ctx, m.ULID.String()+"/", func(name string) error {
			a, err := bkt.Attributes(ctx, name)
			n += a.Size
			return err
		}, objstore.WithRecursiveIter())
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// merged checks that every live block in [from, to) holds both replicas
// (no replica label) and that the live blocks cover it exactly once.
func merged(t *testing.T, bkt objstore.Bucket, from, to time.Time) error {
	blocks, err := liveBlocks(t, bkt)
	if err != nil {
		return err
	}
	var covered time.Duration
	for _, m := range blocks {
		if m.MaxTime <= from.UnixMilli() || m.MinTime >= to.UnixMilli() || m.Thanos.Downsample.Resolution != 0 {
			continue
		}
		if r, ok := m.Thanos.Labels["replica"]; ok {
			return fmt.Errorf("block %s of replica %s is not merged yet", m.ULID, r)
		}
		covered += time.Duration(m.MaxTime-m.MinTime) * time.Millisecond
	}
	if covered != to.Sub(from) {
		return fmt.Errorf("merged blocks cover %s of %s", covered, to.Sub(from))
	}
	return nil
}

// compactorConfig is monstack.yml for a daemon compacting the fixture's
// bucket at test speed.
func compactorConfig(t *testing.T, dir, bucketYML, compactor string, extra ...string) string {
	t.Helper()
	writeFile(t, filepath.Join(dir, "prometheus.yml"), "global: {external_labels: {cluster: e2e}}\n")
	p := filepath.Join(dir, "monstack.yml")
	writeFile(t, p, fmt.Sprintf(`prometheus: {config_file: prometheus.yml}
bucket: {config_file: %s}
store_gateway: {sync_interval: 1s}
compactor: %s
`, bucketYML, compactor)+strings.Join(extra, ""))
	return p
}

// noFrontend asks the querier directly. The query-frontend aligns a
// range to its step and splits it at midnight UTC into queries that each
// deduplicate the replicas anew: at the first step of a day, the two
// replicas' answer may come from the other replica than the merged
// block's, which the compactor chained across midnight.
const noFrontend = "query_frontend: {enabled: false}\n"

// The compactor merges replica a's and b's blocks into one copy, and
// queries over the merged blocks answer exactly what the querier's
// deduplication answered over the two replicas' blocks.
func TestCompactorMergesReplicasQueriesUnchanged(t *testing.T) {
	f := newBucketFixture(t)
	from := alignTo(time.Now().Add(-3*24*time.Hour), 8*time.Hour)
	to := from.Add(16 * time.Hour)
	var sources []ulid.ULID
	for _, r := range replicas {
		sources = append(sources, uploadReplica(t, f.bkt, r.name, from, to, r.offset)...)
	}

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	queries := []struct {
		q    string
		step time.Duration
	}{
		{`e2e_compact`, 5 * time.Minute},
		{`sum(e2e_compact)`, time.Minute},
		{`count_over_time(e2e_compact[10m])`, 7 * time.Minute},
		{`max_over_time(e2e_compact{i="3"}[1h])`, 13 * time.Minute},
	}
	answers := func(d *daemon) []queryResult {
		t.Helper()
		var out []queryResult
		for _, q := range queries {
			// Half a minute after a's samples and 10s after b's: both
			// replicas' latest sample is of the same minute.
			r, err := query(d, q.q, from.Add(30*time.Second), to.Add(-30*time.Second), q.step, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Result) == 0 || len(r.Warnings) > 0 {
				t.Fatalf("%s: %d series, warnings %v", q.q, len(r.Result), r.Warnings)
			}
			out = append(out, r)
		}
		return out
	}

	// Before: the store gateway serves both replicas' 16 blocks.
	cfg := compactorConfig(t, dir, f.yml, "{enabled: false}", noFrontend)
	d := startDaemon(t, data, nil, "--role=replica-a", "--config.file="+cfg)
	eventually(t, 60*time.Second, "the replicas' blocks loaded", func() error {
		if v, err := d.metric("thanos_bucket_store_blocks_loaded"); err != nil || int(v) != len(sources) {
			return fmt.Errorf("blocks loaded %v %v", v, err)
		}
		return nil
	})
	before := answers(d)
	sizeBefore := liveBytes(t, f.bkt)
	d.signal(t, syscall.SIGTERM)
	if code := d.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// After: the compactor merged them, the store gateway serves the
	// merged blocks only.
	cfg = compactorConfig(t, dir, f.yml, "{interval: 1s, consistency_delay: 0s, lease: {ttl: 5s}}", noFrontend)
	d = startDaemon(t, data, nil, "--role=replica-a", "--config.file="+cfg)
	eventually(t, 120*time.Second, "the replicas' blocks merged", func() error { return merged(t, f.bkt, from, to) })
	eventually(t, 60*time.Second, "the merged blocks loaded in place of their sources", func() error {
		if err := merged(t, f.bkt, from, to); err != nil {
			return err
		}
		live, err := liveBlocks(t, f.bkt)
		if err != nil {
			return err
		}
		if v, err := d.metric("thanos_bucket_store_blocks_loaded"); err != nil || int(v) != len(live) {
			return fmt.Errorf("blocks loaded %v %v, want %d", v, err, len(live))
		}
		return nil
	})
	after := answers(d)
	sizeAfter := liveBytes(t, f.bkt)
	t.Logf("live blocks in the bucket: %d bytes for both replicas, %d merged (%.2f)", sizeBefore, sizeAfter, float64(sizeAfter)/float64(sizeBefore))
	if float64(sizeAfter) > 0.6*float64(sizeBefore) {
		t.Errorf("merged blocks take %d bytes of the replicas' %d: not one copy", sizeAfter, sizeBefore)
	}
	// Compared up to the last minute: where all data ends, b's last sample
	// comes 20s after a's, and the querier takes it (a is exhausted) while
	// the merged block does not (a goes on in the next block, where there
	// is one).
	for i, q := range queries {
		if diff := sameAnswer(before[i], after[i], to.Add(-time.Minute)); diff != "" {
			t.Errorf("%s: answers differ before and after compaction:%s", q.q, diff)
		}
	}
	if code, out, errOut := f.tools(t, "verify"); code != 0 {
		t.Errorf("monstackd tools bucket verify: exit %d\n%s%s", code, out, errOut)
	}
}

// leaseHeld reads whether d holds the compactor lease.
func leaseHeld(d *daemon) (bool, error) {
	v, err := d.metric("monstackd_compactor_lease_held")
	return v == 1, err
}

// Two weeks of both replicas' 2d blocks are merged into one 14d block,
// downsampled to 5m and 1h; raw retention then deletes the raw blocks
// (delete delay 0). Long-range queries with max_source_resolution=auto are
// answered from the downsampled blocks, as in stock Thanos, while
// raw-resolution ones find nothing.
func TestCompactorDownsamplesAndRetains(t *testing.T) {
	f := newBucketFixture(t)
	from := alignTo(time.Now().Add(-20*24*time.Hour), 14*24*time.Hour)
	to := from.Add(14 * 24 * time.Hour)
	for _, r := range replicas {
		uploadReplicaBlocks(t, f.bkt, r.name, from, to, r.offset, 48*time.Hour)
		// Newer blocks: the newest block is never compacted (it may be
		// about to grow), and the 14d window must be complete without it.
		uploadReplica(t, f.bkt, r.name, to, to.Add(4*time.Hour), r.offset)
	}
	dir := t.TempDir()
	cfg := compactorConfig(t, dir, f.yml, "{interval: 1s, consistency_delay: 0s, delete_delay: 0s, retention: {raw: 40h}}")
	d := startDaemon(t, filepath.Join(dir, "data"), nil, "--role=replica-a", "--config.file="+cfg)
	eventually(t, 180*time.Second, "only merged 5m and 1h blocks left", func() error {
		blocks, err := liveBlocks(t, f.bkt)
		if err != nil {
			return err
		}
		var res []int64
		for _, m := range blocks {
			if m.MinTime != from.UnixMilli() || m.MaxTime != to.UnixMilli() {
				return fmt.Errorf("live block at resolution %dms over [%d, %d)", m.Thanos.Downsample.Resolution, m.MinTime, m.MaxTime)
			}
			if _, ok := m.Thanos.Labels["replica"]; ok {
				return fmt.Errorf("block %s has the replica label: %v", m.ULID, m.Thanos.Labels)
			}
			res = append(res, m.Thanos.Downsample.Resolution)
		}
		slices.Sort(res)
		if want := []int64{(5 * time.Minute).Milliseconds(), time.Hour.Milliseconds()}; !slices.Equal(res, want) {
			return fmt.Errorf("live blocks of resolutions %v, want %v", res, want)
		}
		if v, err := d.metric("thanos_bucket_store_blocks_loaded"); err != nil || v != 2 {
			return fmt.Errorf("blocks loaded %v %v", v, err)
		}
		return nil
	})
	// Through the query-frontend, which aligns a range to its step: the
	// range is aligned already. No max_source_resolution is "auto" there
	// (query.auto_downsampling).
	span := func(step time.Duration) (time.Time, time.Time) {
		return from.Add(time.Hour + step - 1).Truncate(step), to.Add(-time.Hour).Truncate(step)
	}
	at := func(res string, step time.Duration) queryResult {
		t.Helper()
		start, end := span(step)
		params := url.Values{}
		if res != "" {
			params.Set("max_source_resolution", res)
		}
		r, err := query(d, `max_over_time(e2e_compact{i="3"}[1h])`, start, end, step, params)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, c := range []struct {
		res  string
		step time.Duration
	}{{"auto", time.Hour}, {"auto", 6 * time.Hour}, {"", 6 * time.Hour}} {
		r := at(c.res, c.step)
		start, end := span(c.step)
		if n := int(end.Sub(start)/c.step) + 1; len(r.Result) != 1 || len(r.Result[0].Values) != n {
			t.Errorf("max_source_resolution=%q over 14 days at step %s: %d series, want one of %d points", c.res, c.step, len(r.Result), n)
			continue
		}
		// The aggregates' windows put the hour's maximum within 5
		// minutes (5m) or an hour (1h) of its last minute.
		v, _ := strconv.ParseFloat(r.Result[0].Values[0][1].(string), 64)
		if want := float64(start.Unix()/60%10000 + 300); math.Abs(v-want) > 60 {
			t.Errorf("max_source_resolution=%q, step %s: first point %v, want about %v", c.res, c.step, v, want)
		}
	}
	if r := at("0s", time.Hour); len(r.Result) != 0 {
		t.Errorf("raw resolution after raw retention: %d series, want none", len(r.Result))
	}
}

// A corrupt block halts the compactor: the ready detail, the metric and the
// log name it, ingestion and queries go on; once an operator marks it
// no-compact (with stock `thanos tools bucket mark`), compaction goes on
// without it.
func TestCompactorHaltIsAState(t *testing.T) {
	f := newBucketFixture(t)
	from := alignTo(time.Now().Add(-3*24*time.Hour), 8*time.Hour)
	uploadReplica(t, f.bkt, "a", from, from.Add(10*time.Hour), 0)
	bad := uploadCorrupt(t, f.bkt, "a", from.Add(2*time.Hour))
	dir := t.TempDir()
	cfg := compactorConfig(t, dir, f.yml, "{interval: 1s, consistency_delay: 0s}")
	// The daemon scrapes itself: ingestion to watch while it is halted.
	addr := freeAddr(t)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(
		"global: {scrape_interval: 1s, external_labels: {cluster: e2e}}\nscrape_configs: [{job_name: self, static_configs: [{targets: [%q]}]}]\n", addr))
	d := startDaemonAt(t, addr, filepath.Join(dir, "data"), nil, "--role=replica-a", "--config.file="+cfg)
	eventually(t, 60*time.Second, "the halt reported", func() error {
		if body := readyDetail(t, d); !strings.Contains(body, "compactor: degraded: compaction halted") || !strings.Contains(body, bad.String()) {
			return fmt.Errorf("ready detail %q", body)
		}
		if v, err := d.metric("thanos_compact_halted"); err != nil || v != 1 {
			return fmt.Errorf("thanos_compact_halted %v %v", v, err)
		}
		return nil
	})
	if code, _, _ := httpGet(d.url("/-/ready")); code != 200 {
		t.Errorf("/-/ready %d with the compactor halted: ingestion and queries go on", code)
	}
	// Samples keep coming in: the count of self-scrapes grows.
	count := func() (float64, error) { return d.scalarOf(`count_over_time(up{job="self"}[1h])`, time.Time{}) }
	var first float64
	eventually(t, 30*time.Second, "a self-scrape", func() (err error) { first, err = count(); return err })
	eventually(t, 30*time.Second, "ingestion and queries while halted", func() error {
		if v, err := count(); err != nil || v <= first {
			return fmt.Errorf("self-scrapes %v (were %v) %v", v, first, err)
		}
		return nil
	})
	if !strings.Contains(d.out.String(), bad.String()) {
		t.Error("the log does not name the block")
	}

	code, out, errOut := runBin(t, binPath(t, "THANOS_BIN"), "tools", "bucket", "mark", "--objstore.config-file="+f.yml,
		"--id="+bad.String(), "--marker=no-compact-mark.json", "--details=e2e: corrupt")
	if code != 0 {
		t.Fatalf("thanos tools bucket mark: exit %d\n%s%s", code, out, errOut)
	}
	eventually(t, 60*time.Second, "compaction going on without the block", func() error {
		if v, err := d.metric("thanos_compact_halted"); err != nil || v != 0 {
			return fmt.Errorf("thanos_compact_halted %v %v", v, err)
		}
		if v, err := d.metric("thanos_compact_iterations_total"); err != nil || v < 1 {
			return fmt.Errorf("thanos_compact_iterations_total %v %v", v, err)
		}
		return nil
	})
	if body := readyDetail(t, d); strings.Contains(body, "compactor: degraded") {
		t.Errorf("ready detail still degraded: %q", body)
	}
}

// SIGTERM while the compactor works: the daemon exits at once, cleanly,
// and no partial block becomes visible: every block with a meta.json has
// all its files, the bucket verifies, and after a restart the compaction
// completes.
func TestCompactorShutdownDuringCompaction(t *testing.T) {
	f := newBucketFixture(t)
	from := alignTo(time.Now().Add(-20*24*time.Hour), 14*24*time.Hour)
	to := from.Add(14 * 24 * time.Hour)
	for _, r := range replicas {
		uploadReplicaSeries(t, f.bkt, r.name, from, to, r.offset, 48*time.Hour, 200)
		uploadReplica(t, f.bkt, r.name, to, to.Add(4*time.Hour), r.offset)
	}
	dir := t.TempDir()
	cfg := compactorConfig(t, dir, f.yml, "{interval: 1s, consistency_delay: 0s}")
	d := startDaemon(t, filepath.Join(dir, "data"), nil, "--role=replica-a", "--config.file="+cfg)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(d.out.String(), "downloaded and verified blocks; compacting blocks") {
		if time.Now().After(deadline) {
			t.Fatal("no compaction started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.signal(t, syscall.SIGTERM)
	stopped := time.Now()
	if code := d.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM during a compaction", code)
	}
	took := time.Since(stopped)
	t.Logf("stopped %s after SIGTERM during a compaction", took.Round(time.Millisecond))
	// Abandoned, not finished first: the pair's merge takes far longer
	// than the stop did.
	if strings.Contains(d.out.String(), `msg="compacted blocks"`) {
		t.Error("the compaction in progress finished before the daemon stopped")
	}
	if took > 5*time.Second {
		t.Errorf("stopping took %s: the compaction did not stop with the daemon", took)
	}
	complete := func() error {
		blocks, err := liveBlocks(t, f.bkt)
		if err != nil {
			return err
		}
		for _, m := range blocks {
			for _, file := range m.Thanos.Files {
				if file.RelPath == block.MetaFilename {
					continue
				}
				if ok, err := f.bkt.Exists(context.Background(), m.ULID.String()+"/"+file.RelPath); err != nil || !ok {
					return fmt.Errorf("block %s has a meta.json but no %s (%v)", m.ULID, file.RelPath, err)
				}
			}
		}
		return nil
	}
	if err := complete(); err != nil {
		t.Error(err)
	}
	if code, out, errOut := f.tools(t, "verify"); code != 0 {
		t.Errorf("monstackd tools bucket verify after the stop: exit %d\n%s%s", code, out, errOut)
	}

	d = startDaemon(t, filepath.Join(dir, "data"), nil, "--role=replica-a", "--config.file="+cfg)
	eventually(t, 120*time.Second, "the compaction completed after the restart", func() error { return merged(t, f.bkt, from, to) })
	if err := complete(); err != nil {
		t.Error(err)
	}
}

// uploadCorrupt uploads a 2h block of replica whose chunks lie outside
// the range its meta.json claims (6h later), which compaction cannot take.
func uploadCorrupt(t *testing.T, bkt objstore.Bucket, replica string, mint time.Time) ulid.ULID {
	t.Helper()
	dir := t.TempDir()
	var samples []chunks.Sample
	for ts := mint.Add(-6 * time.Hour); ts.Before(mint.Add(-4 * time.Hour)); ts = ts.Add(compactStep) {
		samples = append(samples, pt{t: ts.UnixMilli(), v: 1})
	}
	bdir, err := tsdb.CreateBlock([]storage.Series{storage.NewListSeries(labels.FromStrings("__name__", "e2e_corrupt"), samples)},
		dir, (4 * time.Hour).Milliseconds(), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	meta, err := metadata.ReadFromDir(bdir)
	if err != nil {
		t.Fatal(err)
	}
	meta.MinTime, meta.MaxTime = mint.UnixMilli(), mint.Add(2*time.Hour).UnixMilli()
	meta.Thanos = metadata.Thanos{Labels: map[string]string{"cluster": "e2e", "replica": replica}, Source: metadata.SidecarSource}
	if err := meta.WriteToDir(log.NewNopLogger(), bdir); err != nil {
		t.Fatal(err)
	}
	if err := block.Upload(context.Background(), log.NewNopLogger(), bkt, bdir, metadata.NoneFunc); err != nil {
		t.Fatal(err)
	}
	return meta.ULID
}

// sharedBucket is a bucket both daemons use: MinIO, or a FILESYSTEM
// directory (two daemons on one host).
type sharedBucket struct {
	bkt objstore.Bucket
	yml string // bucket.yml
}

// Two daemons share the bucket: exactly one compacts. SIGKILLed, the
// holder's lease expires and the other takes over and compacts what is
// new; restarted, the first stays standby. With MinIO (conditional puts)
// and with a FILESYSTEM bucket (exclusive creates).
func TestCompactorLeasePair(t *testing.T) {
	t.Run("minio", func(t *testing.T) {
		f := newBucketFixture(t)
		testLeasePair(t, sharedBucket{bkt: f.bkt, yml: f.yml})
	})
	t.Run("filesystem", func(t *testing.T) {
		dir := t.TempDir()
		bkt, err := filesystem.NewBucket(filepath.Join(dir, "bucket"))
		if err != nil {
			t.Fatal(err)
		}
		yml := filepath.Join(dir, "bucket.yml")
		writeFile(t, yml, fmt.Sprintf("type: FILESYSTEM\nconfig: {directory: %q}\n", filepath.Join(dir, "bucket")))
		testLeasePair(t, sharedBucket{bkt: bkt, yml: yml})
	})
}

func testLeasePair(t *testing.T, f sharedBucket) {
	const ttl = 4 * time.Second
	w1 := alignTo(time.Now().Add(-4*24*time.Hour), 8*time.Hour)
	for _, r := range replicas {
		uploadReplica(t, f.bkt, r.name, w1, w1.Add(16*time.Hour), r.offset)
	}
	compactor := fmt.Sprintf("{interval: 1s, consistency_delay: 0s, lease: {ttl: %s}}", ttl)
	type host struct {
		dir, http, grpc string
		role            string
		d               *daemon
	}
	hosts := []*host{{role: "replica-a"}, {role: "replica-b"}}
	start := func(h *host) {
		t.Helper()
		if h.dir == "" {
			h.dir, h.http, h.grpc = t.TempDir(), freeAddr(t), freeAddr(t)
		}
		cfg := compactorConfig(t, h.dir, f.yml, compactor)
		h.d = startDaemonAddrs(t, h.http, h.grpc, filepath.Join(h.dir, "data"), nil, "--role="+h.role, "--config.file="+cfg)
	}
	for _, h := range hosts {
		start(h)
	}
	// holder returns the index of the one daemon holding the lease.
	holder := func(alive ...int) (int, error) {
		n, who := 0, -1
		for _, i := range alive {
			held, err := leaseHeld(hosts[i].d)
			if err != nil {
				return -1, err
			}
			if held {
				n, who = n+1, i
			}
		}
		if n != 1 {
			return -1, fmt.Errorf("%d holders", n)
		}
		return who, nil
	}
	var first int
	eventually(t, 30*time.Second, "one holder", func() (err error) { first, err = holder(0, 1); return err })
	eventually(t, 120*time.Second, "the first window merged", func() error { return merged(t, f.bkt, w1, w1.Add(16*time.Hour)) })
	// Sampled over time: always the same single holder, and only it runs
	// compaction passes.
	for range 10 {
		if who, err := holder(0, 1); err != nil || who != first {
			t.Fatalf("holder %d (%v), want %s alone", who, err, hosts[first].role)
		}
		time.Sleep(200 * time.Millisecond)
	}
	standby := 1 - first
	if v, err := hosts[standby].d.metric("thanos_compact_iterations_total"); err != nil || v != 0 {
		t.Errorf("the standby %s ran %v compaction passes (%v)", hosts[standby].role, v, err)
	}
	if body := readyDetail(t, hosts[first].d); !strings.Contains(body, "compactor lease: holder "+hosts[first].role) {
		t.Errorf("the holder's /-/ready detail does not name it the holder:\n%s", body)
	}
	if body := readyDetail(t, hosts[standby].d); !strings.Contains(body, "standby: held by "+hosts[first].role) {
		t.Errorf("the standby's /-/ready detail does not name the holder:\n%s", body)
	}
	// The bucket UI, as a person sees it, says who holds the lease.
	checkPage(t, binPath(t, "CHROMIUM_BIN"), artifactsDir(t), strings.ReplaceAll(t.Name(), "/", "-")+"-bucket-ui", hosts[standby].d.url("/bucket/"), func(dom string) error {
		if !strings.Contains(dom, "Compactor lease: standby: held by "+hosts[first].role) {
			return fmt.Errorf("no lease line naming %s on the bucket UI", hosts[first].role)
		}
		return nil
	})

	code, out, errOut := runBin(t, binPath(t, "MONSTACKD_BIN"), "components", "--role="+hosts[standby].role,
		"--config.file="+filepath.Join(hosts[standby].dir, "monstack.yml"), "--data.dir="+filepath.Join(hosts[standby].dir, "data"))
	if code != 0 || !strings.Contains(out, "compactor lease: held by "+hosts[first].role) || !strings.Contains(out, "this daemon's role: "+hosts[standby].role) {
		t.Errorf("monstackd components: exit %d, no lease state naming %s:\n%s%s", code, hosts[first].role, out, errOut)
	}

	// The holder dies; new blocks arrive; the standby takes over after the
	// lease expires and compacts them.
	hosts[first].d.signal(t, syscall.SIGKILL)
	hosts[first].d.wait(t, 10*time.Second)
	killed := time.Now()
	w2 := w1.Add(24 * time.Hour)
	for _, r := range replicas {
		uploadReplica(t, f.bkt, r.name, w2, w2.Add(16*time.Hour), r.offset)
	}
	eventually(t, 3*ttl, "the standby holding the lease", func() error {
		if held, err := leaseHeld(hosts[standby].d); err != nil || !held {
			return fmt.Errorf("held %v %v", held, err)
		}
		return nil
	})
	takeover := time.Since(killed)
	t.Logf("takeover %s after the holder's SIGKILL (lease TTL %s)", takeover.Round(10*time.Millisecond), ttl)
	if renew := ttl / 3; takeover > ttl+renew+2*time.Second {
		t.Errorf("takeover took %s, more than TTL %s + renew interval %s", takeover, ttl, renew)
	}
	if takeover < ttl-ttl/3-time.Second {
		t.Errorf("takeover after %s: before the lease (TTL %s) could have expired", takeover, ttl)
	}
	eventually(t, 120*time.Second, "the second window merged by the new holder", func() error { return merged(t, f.bkt, w2, w2.Add(16*time.Hour)) })

	// Restarted, the first daemon stays standby.
	start(hosts[first])
	for range 3 * int(ttl/(250*time.Millisecond)) {
		if who, err := holder(0, 1); err != nil || who != standby {
			t.Fatalf("after the restart: holder %d (%v), want %s alone", who, err, hosts[standby].role)
		}
		time.Sleep(250 * time.Millisecond)
	}

	if code, out, errOut := runBin(t, binPath(t, "MONSTACKD_BIN"), "tools", "bucket", "verify", "--objstore.config-file="+f.yml); code != 0 {
		t.Errorf("monstackd tools bucket verify: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runBin(t, binPath(t, "THANOS_BIN"), "tools", "bucket", "verify", "--objstore.config-file="+f.yml)
	if code != 0 {
		t.Errorf("thanos tools bucket verify: exit %d\n%s%s", code, out, errOut)
	}
}

func readyDetail(t *testing.T, d *daemon) string {
	t.Helper()
	_, body, err := httpGet(d.url("/-/ready"))
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
