package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/client"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/testutil/e2eutil"
)

// blockSpec is a synthetic block: nSeries series of nSamples samples each in
// [mint, maxt), with external labels ext, as a sidecar would ship it.
type blockSpec struct {
	mint, maxt        time.Time
	ext               map[string]string
	nSeries, nSamples int
}

// writeBlock creates the block in dir with Thanos' e2eutil and returns its ID.
func writeBlock(t *testing.T, dir string, s blockSpec) ulid.ULID {
	t.Helper()
	series := make([]labels.Labels, s.nSeries)
	for i := range series {
		series[i] = labels.FromStrings("__name__", "e2e_bucket_metric", "i", strconv.Itoa(i))
	}
	id, err := e2eutil.CreateBlock(context.Background(), dir, series, s.nSamples,
		s.mint.UnixMilli(), s.maxt.UnixMilli(), labels.FromMap(s.ext), 0, metadata.NoneFunc, nil)
	if err != nil {
		t.Fatalf("create block: %v", err)
	}
	// e2eutil marks its blocks "test"; the shipper's are "sidecar".
	bdir := filepath.Join(dir, id.String())
	meta, err := metadata.ReadFromDir(bdir)
	if err != nil {
		t.Fatal(err)
	}
	meta.Thanos.Source = metadata.SidecarSource
	if err := meta.WriteToDir(log.NewNopLogger(), bdir); err != nil {
		t.Fatal(err)
	}
	return id
}

// bucketFixture is a MinIO bucket with a client to upload blocks as the
// shipper does (block.Upload: chunks, index, meta.json last).
type bucketFixture struct {
	minio *minio
	bkt   objstore.Bucket
	dir   string // local block dir
	yml   string // bucket.yml path
}

func newBucketFixture(t *testing.T) *bucketFixture {
	t.Helper()
	m := startMinio(t)
	bkt, err := client.NewBucket(log.NewNopLogger(), []byte(m.bucketYAML()), "e2e", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bkt.Close() })
	dir := t.TempDir()
	return &bucketFixture{minio: m, bkt: bkt, dir: dir, yml: m.writeBucketYAML(filepath.Join(dir, "bucket.yml"))}
}

func (f *bucketFixture) upload(t *testing.T, s blockSpec) ulid.ULID {
	t.Helper()
	id := writeBlock(t, f.dir, s)
	if err := block.Upload(context.Background(), log.NewNopLogger(), f.bkt, filepath.Join(f.dir, id.String()), metadata.NoneFunc); err != nil {
		t.Fatalf("upload %s: %v", id, err)
	}
	return id
}

// uploadPartial uploads a block's chunks and index but no meta.json: an
// upload that died half-way.
func (f *bucketFixture) uploadPartial(t *testing.T, s blockSpec) ulid.ULID {
	t.Helper()
	id := writeBlock(t, f.dir, s)
	ctx := context.Background()
	bdir := filepath.Join(f.dir, id.String())
	if err := objstore.UploadDir(ctx, log.NewNopLogger(), f.bkt, filepath.Join(bdir, block.ChunksDirname), path.Join(id.String(), block.ChunksDirname)); err != nil {
		t.Fatal(err)
	}
	if err := objstore.UploadFile(ctx, log.NewNopLogger(), f.bkt, filepath.Join(bdir, block.IndexFilename), path.Join(id.String(), block.IndexFilename)); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *bucketFixture) tools(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runBin(t, binPath(t, "MONSTACKD_BIN"), append(append([]string{"tools", "bucket"}, args...), "--objstore.config-file="+f.yml)...)
}

// twoHours is the first of two consecutive 2h blocks a day ago, aligned as
// the TSDB aligns them.
func twoHours() time.Time {
	return time.Now().Add(-24 * time.Hour).Truncate(2 * time.Hour).UTC()
}

// `monstackd tools bucket ls` and `inspect` show the blocks a sidecar
// shipped: their ULIDs, time ranges, labels, source, and the series and
// samples that were written.
func TestToolsBucketLsAndInspect(t *testing.T) {
	f := newBucketFixture(t)
	t0 := twoHours()
	a1 := f.upload(t, blockSpec{mint: t0, maxt: t0.Add(2 * time.Hour), ext: map[string]string{"cluster": "e2e", "replica": "a"}, nSeries: 10, nSamples: 120})
	a2 := f.upload(t, blockSpec{mint: t0.Add(2 * time.Hour), maxt: t0.Add(4 * time.Hour), ext: map[string]string{"cluster": "e2e", "replica": "a"}, nSeries: 7, nSamples: 60})
	b1 := f.upload(t, blockSpec{mint: t0, maxt: t0.Add(2 * time.Hour), ext: map[string]string{"cluster": "e2e", "replica": "b"}, nSeries: 3, nSamples: 1000})

	code, out, errOut := f.tools(t, "ls")
	if code != 0 {
		t.Fatalf("ls: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("ls: %d lines, want 3:\n%s", len(lines), out)
	}
	for _, want := range []struct {
		id         ulid.ULID
		mint, maxt time.Time
		labels     string
	}{
		{a1, t0, t0.Add(2 * time.Hour), `{cluster="e2e", replica="a"}`},
		{a2, t0.Add(2 * time.Hour), t0.Add(4 * time.Hour), `{cluster="e2e", replica="a"}`},
		{b1, t0, t0.Add(2 * time.Hour), `{cluster="e2e", replica="b"}`},
	} {
		line := lineWith(out, want.id.String())
		for _, part := range []string{want.mint.Format(time.RFC3339), want.maxt.Format(time.RFC3339), "resolution=0s", "level=1", "source=sidecar", want.labels} {
			if !strings.Contains(line, part) {
				t.Errorf("ls line of %s lacks %q: %q", want.id, part, line)
			}
		}
	}
	// Ordered by min time: a1 and b1 (same range, by ULID) before a2.
	if !strings.HasPrefix(lines[2], a2.String()) {
		t.Errorf("ls: last line is not the later block %s:\n%s", a2, out)
	}

	code, out, errOut = f.tools(t, "ls", "-o", "json")
	if code != 0 {
		t.Fatalf("ls -o json: exit %d\n%s%s", code, out, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var n int
	for dec.More() {
		var m metadata.Meta
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("ls -o json: %v\n%s", err, out)
		}
		if m.ULID == a2 && (m.Stats.NumSeries != 7 || m.Thanos.Labels["replica"] != "a") {
			t.Errorf("ls -o json: %s: %+v", a2, m)
		}
		n++
	}
	if n != 3 {
		t.Errorf("ls -o json: %d metas, want 3", n)
	}

	code, out, errOut = f.tools(t, "inspect")
	if code != 0 {
		t.Fatalf("inspect: exit %d\n%s%s", code, out, errOut)
	}
	header := cells(strings.SplitN(out, "\n", 2)[0])
	if want := []string{"ULID", "FROM", "UNTIL", "RANGE", "#SERIES", "#SAMPLES", "#CHUNKS", "COMP-LEVEL", "COMP-FAILED", "LABELS", "RESOLUTION", "SOURCE"}; !slices.Equal(header, want) {
		t.Fatalf("inspect header %q, want %q\n%s", header, want, out)
	}
	for _, want := range []struct {
		id               ulid.ULID
		series, samples  string
		labels, from, to string
	}{
		{a1, "10", "1,200", "cluster=e2e,replica=a", t0.Format(time.RFC3339), t0.Add(2 * time.Hour).Format(time.RFC3339)},
		{a2, "7", "420", "cluster=e2e,replica=a", t0.Add(2 * time.Hour).Format(time.RFC3339), t0.Add(4 * time.Hour).Format(time.RFC3339)},
		{b1, "3", "3,000", "cluster=e2e,replica=b", t0.Format(time.RFC3339), t0.Add(2 * time.Hour).Format(time.RFC3339)},
	} {
		row := cells(lineWith(out, want.id.String()))
		got := map[string]string{}
		for i, h := range header {
			if i < len(row) {
				got[h] = row[i]
			}
		}
		for col, w := range map[string]string{"#SERIES": want.series, "#SAMPLES": want.samples, "LABELS": want.labels,
			"FROM": want.from, "UNTIL": want.to, "RANGE": "2h0m0s", "COMP-LEVEL": "1", "COMP-FAILED": "false", "RESOLUTION": "0s", "SOURCE": "sidecar"} {
			if got[col] != w {
				t.Errorf("inspect %s: %s = %q, want %q", want.id, col, got[col], w)
			}
		}
	}

	code, out, errOut = f.tools(t, "inspect", "--selector=replica=b", `-l`, `cluster="e2e"`)
	if code != 0 || strings.Contains(out, a1.String()) || strings.Contains(out, a2.String()) || !strings.Contains(out, b1.String()) {
		t.Errorf("inspect --selector=replica=b: exit %d, want only %s\n%s%s", code, b1, out, errOut)
	}
}

// `monstackd tools bucket verify` passes on a sound bucket, reports an
// overlap of two blocks of the same labels and an aborted partial upload,
// and exits 1 for either.
func TestToolsBucketVerify(t *testing.T) {
	f := newBucketFixture(t)
	t0 := twoHours()
	a := map[string]string{"cluster": "e2e", "replica": "a"}
	f.upload(t, blockSpec{mint: t0, maxt: t0.Add(2 * time.Hour), ext: a, nSeries: 5, nSamples: 100})
	f.upload(t, blockSpec{mint: t0.Add(2 * time.Hour), maxt: t0.Add(4 * time.Hour), ext: a, nSeries: 5, nSamples: 100})
	// The other replica's blocks cover the same time: other labels, no overlap.
	f.upload(t, blockSpec{mint: t0, maxt: t0.Add(2 * time.Hour), ext: map[string]string{"cluster": "e2e", "replica": "b"}, nSeries: 5, nSamples: 100})

	code, out, errOut := f.tools(t, "verify")
	if code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("verify of a sound bucket: exit %d\n%s%s", code, out, errOut)
	}

	// A partial upload younger than the age is an upload in progress.
	partial := f.uploadPartial(t, blockSpec{mint: t0.Add(4 * time.Hour), maxt: t0.Add(6 * time.Hour), ext: a, nSeries: 2, nSamples: 10})
	if code, out, errOut := f.tools(t, "verify"); code != 0 {
		t.Fatalf("verify with a fresh partial upload: exit %d\n%s%s", code, out, errOut)
	}
	time.Sleep(2 * time.Second)
	code, out, errOut = f.tools(t, "verify", "--partial-upload-age=1s")
	if code != 1 || !strings.Contains(errOut, "partial_upload: block "+partial.String()+": no meta.json") {
		t.Fatalf("verify with an aborted partial upload: exit %d, want 1 naming %s\n%s%s", code, partial, out, errOut)
	}

	overlap := f.upload(t, blockSpec{mint: t0.Add(time.Hour), maxt: t0.Add(3 * time.Hour), ext: a, nSeries: 5, nSamples: 100})
	code, out, errOut = f.tools(t, "verify")
	if code != 1 || !strings.Contains(errOut, "overlapped_blocks: found overlapped blocks") || !strings.Contains(errOut, overlap.String()) {
		t.Fatalf("verify with an overlap: exit %d, want 1 naming %s\n%s%s", code, overlap, out, errOut)
	}
	if strings.Contains(errOut, "partial_upload") {
		t.Errorf("verify: the fresh partial upload was reported with the default age\n%s", errOut)
	}
}

// The bucket monstackd reads and stock Thanos reads are the same: `thanos
// tools bucket verify` passes on a bucket monstackd's verify passes, and
// both list the same ULIDs.
func TestToolsBucketMatchesStockThanos(t *testing.T) {
	f := newBucketFixture(t)
	t0 := twoHours()
	var ids []string
	for i, replica := range []string{"a", "a", "b"} {
		start := t0.Add(time.Duration(i%2) * 2 * time.Hour)
		if replica == "b" {
			start = t0
		}
		id := f.upload(t, blockSpec{mint: start, maxt: start.Add(2 * time.Hour), ext: map[string]string{"replica": replica}, nSeries: 4, nSamples: 50})
		ids = append(ids, id.String())
	}
	slices.Sort(ids)

	thanos := binPath(t, "THANOS_BIN")
	if code, out, errOut := runBin(t, thanos, "tools", "bucket", "verify", "--objstore.config-file="+f.yml); code != 0 {
		t.Fatalf("thanos tools bucket verify: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := f.tools(t, "verify"); code != 0 {
		t.Fatalf("monstackd tools bucket verify: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut := runBin(t, thanos, "tools", "bucket", "ls", "--objstore.config-file="+f.yml)
	if code != 0 {
		t.Fatalf("thanos tools bucket ls: exit %d\n%s%s", code, out, errOut)
	}
	stock := strings.Fields(out)
	slices.Sort(stock)
	code, out, errOut = f.tools(t, "ls")
	if code != 0 {
		t.Fatalf("monstackd tools bucket ls: exit %d\n%s%s", code, out, errOut)
	}
	var ours []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		ours = append(ours, strings.Fields(line)[0])
	}
	slices.Sort(ours)
	if !slices.Equal(stock, ids) || !slices.Equal(ours, ids) {
		t.Fatalf("ULIDs: thanos %v, monstackd %v, uploaded %v", stock, ours, ids)
	}

	// Stock verify only logs an overlap and exits 0; monstackd's exits 1.
	f.upload(t, blockSpec{mint: t0.Add(time.Hour), maxt: t0.Add(3 * time.Hour), ext: map[string]string{"replica": "a"}, nSeries: 4, nSamples: 50})
	code, out, errOut = runBin(t, thanos, "tools", "bucket", "verify", "--objstore.config-file="+f.yml)
	if !strings.Contains(out+errOut, "found overlapped blocks") {
		t.Errorf("thanos tools bucket verify does not see the overlap: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := f.tools(t, "verify"); code != 1 || !strings.Contains(errOut, "overlapped_blocks") {
		t.Errorf("monstackd tools bucket verify with an overlap: exit %d\n%s%s", code, out, errOut)
	}
}

// The bucket comes from monstack.yml (bucket.yml or inline) unless
// --objstore.config-file is given; errors name that source and never show
// the secret key.
func TestToolsBucketConfigSourcesAndSecrets(t *testing.T) {
	f := newBucketFixture(t)
	t0 := twoHours()
	id := f.upload(t, blockSpec{mint: t0, maxt: t0.Add(2 * time.Hour), ext: map[string]string{"replica": "a"}, nSeries: 2, nSamples: 10})
	bin := binPath(t, "MONSTACKD_BIN")
	dir := t.TempDir()

	// monstack.yml → bucket.yml, and monstack.yml inline: both list the block.
	writeFile(t, filepath.Join(dir, "bucket.yml"), f.minio.bucketYAML())
	writeFile(t, filepath.Join(dir, "via-file.yml"), "bucket:\n  config_file: bucket.yml\n")
	writeFile(t, filepath.Join(dir, "inline.yml"), "bucket:\n"+indentLines(f.minio.bucketYAML(), "  "))
	for _, cfg := range []string{"via-file.yml", "inline.yml"} {
		code, out, errOut := runBin(t, bin, "tools", "bucket", "ls", "--config.file="+filepath.Join(dir, cfg), "--data.dir="+dir)
		if code != 0 || !strings.Contains(out, id.String()) {
			t.Errorf("ls with %s: exit %d, want %s\n%s%s", cfg, code, id, out, errOut)
		}
	}
	// --objstore.config-file wins over monstack.yml.
	writeFile(t, filepath.Join(dir, "elsewhere.yml"), "bucket:\n  type: FILESYSTEM\n  config:\n    directory: "+filepath.Join(dir, "empty")+"\n")
	if code, out, errOut := runBin(t, bin, "tools", "bucket", "ls", "--config.file="+filepath.Join(dir, "elsewhere.yml"), "--objstore.config-file="+f.yml); code != 0 || !strings.Contains(out, id.String()) {
		t.Errorf("ls with --objstore.config-file over monstack.yml: exit %d\n%s%s", code, out, errOut)
	}

	const planted = "PLANTED-secret-5e7d9c"
	wrongSecret := strings.Replace(f.minio.bucketYAML(), minioSecretKey, planted, 1)
	deadEndpoint := strings.Replace(wrongSecret, f.minio.endpoint(), freeAddr(t), 1)
	writeFile(t, filepath.Join(dir, "wrong-secret.yml"), wrongSecret)
	writeFile(t, filepath.Join(dir, "inline-dead.yml"), "bucket:\n"+indentLines(deadEndpoint, "  "))
	writeFile(t, filepath.Join(dir, "bad-field.yml"), strings.Replace(wrongSecret, "insecure: true", "insecure: notabool", 1))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bucket.yml with a wrong secret", []string{"--objstore.config-file=" + filepath.Join(dir, "wrong-secret.yml")}, "bucket of " + filepath.Join(dir, "wrong-secret.yml") + ": "},
		{"inline, endpoint down", []string{"--config.file=" + filepath.Join(dir, "inline-dead.yml")}, "bucket of " + filepath.Join(dir, "inline-dead.yml") + " field bucket: "},
		{"bucket.yml with an invalid field", []string{"--objstore.config-file=" + filepath.Join(dir, "bad-field.yml")}, filepath.Join(dir, "bad-field.yml") + ": "},
	} {
		for _, sub := range []string{"ls", "inspect", "verify"} {
			args := append([]string{"tools", "bucket", sub, "--timeout=20s", "--data.dir=" + dir}, tc.args...)
			code, out, errOut := runBin(t, bin, args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("%s: %s: exit %d, want 1 and %q\n%s%s", tc.name, sub, code, tc.want, out, errOut)
			}
			if strings.Contains(out+errOut, planted) || strings.Contains(out+errOut, minioSecretKey) {
				t.Errorf("%s: %s: output shows the secret key:\n%s%s", tc.name, sub, out, errOut)
			}
		}
	}
}

// lineWith returns the first line of out containing s.
func lineWith(out, s string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// cells splits a table row "| a | b |" or "a | b |" into trimmed cells.
func cells(row string) []string {
	var out []string
	for _, c := range strings.Split(row, "|") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

func indentLines(s, prefix string) string {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			b.WriteString(prefix + line)
		}
	}
	return b.String()
}
