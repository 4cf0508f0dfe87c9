package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/testutil/e2eutil"

	"github.com/monstackd/monstackd/pkg/config"
)

// contiguousBlocks writes n contiguous 2h blocks of two series, 100 samples
// each, into dir, the newest ending at the current 2h boundary, and returns
// their IDs (oldest first) and the end of the newest.
func contiguousBlocks(t *testing.T, dir string, n int, ext labels.Labels) ([]string, time.Time) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	series := []labels.Labels{labels.FromStrings("__name__", "m", "i", "1"), labels.FromStrings("__name__", "m", "i", "2")}
	end := time.Now().Truncate(2 * time.Hour)
	var ids []string
	for i := n; i > 0; i-- {
		mint := end.Add(-time.Duration(i) * 2 * time.Hour)
		id, err := e2eutil.CreateBlock(context.Background(), dir, series, 100, mint.UnixMilli(), mint.Add(2*time.Hour).UnixMilli(), ext, 0, metadata.NoneFunc, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	return ids, end
}

// query runs an instant query on the API at path and returns its result
// as JSON, failing on errors and warnings.
func (d *testDaemon) query(path, expr string, at time.Time, extra string) (string, error) {
	code, body, err := d.get(fmt.Sprintf("%s?query=%s&time=%d%s", path, url.QueryEscape(expr), at.Unix(), extra))
	if err != nil {
		return "", err
	}
	var resp struct {
		Status   string          `json:"status"`
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || code != 200 || resp.Status != "success" || len(resp.Warnings) > 0 {
		return "", fmt.Errorf("%s %s: %d %.300s", path, expr, code, body)
	}
	return string(resp.Data), nil
}

const storeTestProm = "global:\n  external_labels: {cluster: c1}\n"

func replicaA(t *testing.T) Options {
	t.Helper()
	role, err := config.ParseRole("replica-a")
	if err != nil {
		t.Fatal(err)
	}
	return Options{Runtime: config.Runtime{Role: role}}
}

// The hand-off: blocks the shipper uploads are served by the store gateway,
// retention then deletes the local copies, and every answer over the whole
// range, polled throughout, has exactly the samples it had before.
func TestStoreGatewayHandOff(t *testing.T) {
	d := newTestDaemon(t, storeTestProm, replicaA(t), "bucket:\n  type: FILESYSTEM\n  config:\n    directory: %d/bucket\n")
	tsdbDir := filepath.Join(d.opts.Runtime.DataDir, "tsdb")
	// 30h of contiguous blocks: local retention (24h with a bucket)
	// deletes the oldest ones once the store serves them.
	ids, end := contiguousBlocks(t, tsdbDir, 15, labels.EmptyLabels())
	d.start(t)

	at := end.Add(-time.Millisecond)
	queries := []struct{ path, expr, extra string }{
		{"/api/v1/query", "count_over_time(m[31h])", ""},
		{"/api/v1/query", "m[31h]", ""},
		{"/api/v1/query", "m[31h]", "&dedup=false"},
		{"/api/v1/query", "sum(sum_over_time(m[31h]))", ""},
	}
	want := make([]string, len(queries))
	for i, q := range queries {
		got, err := d.query(q.path, q.expr, at, q.extra)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = got
	}
	if !strings.Contains(want[0], `"1500"`) {
		t.Fatalf("before the hand-off, count_over_time %s, want 1500 per series", want[0])
	}
	check := func() {
		t.Helper()
		for i, q := range queries {
			got, err := d.query(q.path, q.expr, at, q.extra)
			if err != nil {
				t.Fatal(err)
			}
			if got != want[i] {
				t.Fatalf("%s%s: got %.400s\nwant %.400s", q.expr, q.extra, got, want[i])
			}
		}
	}
	deleted := func() int {
		n := 0
		for _, id := range ids {
			if _, err := os.Stat(filepath.Join(tsdbDir, id)); os.IsNotExist(err) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for deleted() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no local block deleted within 60s; store blocks loaded %v", gatherValue(t, d, "thanos_bucket_store_blocks_loaded", nil))
		}
		check()
		time.Sleep(20 * time.Millisecond)
	}
	if n := deleted(); n >= len(ids) {
		t.Fatalf("%d of %d local blocks deleted", n, len(ids))
	}
	if v := gatherValue(t, d, "thanos_bucket_store_blocks_loaded", nil); v != float64(len(ids)) {
		t.Errorf("bucket store loaded %v blocks, want %d", v, len(ids))
	}
	// After the hand-off too.
	for range 20 {
		check()
		time.Sleep(50 * time.Millisecond)
	}
}

// While blocks are both local and in the bucket, nothing is counted twice:
// the querier's answers equal those of Prometheus' own API, which reads only
// the local TSDB. The store gateway is on the Stores page.
func TestStoreGatewayNoDoubleCount(t *testing.T) {
	d := newTestDaemon(t, storeTestProm, replicaA(t), "bucket:\n  type: FILESYSTEM\n  config:\n    directory: %d/bucket\ntsdb:\n  retention: 30d\n")
	ids, end := contiguousBlocks(t, filepath.Join(d.opts.Runtime.DataDir, "tsdb"), 6, labels.EmptyLabels())
	d.start(t)
	waitFor(t, 30*time.Second, "all blocks served by the store gateway", func() error {
		if v := gatherValue(t, d, "thanos_bucket_store_blocks_loaded", nil); v != float64(len(ids)) {
			return fmt.Errorf("%v blocks loaded", v)
		}
		return nil
	})
	at := end.Add(-time.Millisecond)
	for _, expr := range []string{"count_over_time(m[13h])", "sum(sum_over_time(m[13h]))", "sum(count_over_time(m[13h]))"} {
		local, err := d.query("/prometheus/api/v1/query", expr, at, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, extra := range []string{"", "&dedup=false"} {
			got, err := d.query("/api/v1/query", expr, at, extra)
			if err != nil {
				t.Fatal(err)
			}
			// Thanos' API adds the external labels; compare values.
			if values(t, got) != values(t, local) {
				t.Errorf("%s%s: querier %s, local TSDB %s", expr, extra, got, local)
			}
		}
	}

	_, body, err := d.get("/api/v1/stores")
	if err != nil {
		t.Fatal(err)
	}
	var stores struct {
		Data map[string][]struct {
			Name      string              `json:"name"`
			LabelSets []map[string]string `json:"labelSets"`
			MinTime   int64               `json:"minTime"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &stores); err != nil {
		t.Fatal(err)
	}
	sg := stores.Data["store"]
	if len(sg) != 1 || sg[0].Name != StoreGateway || len(sg[0].LabelSets) != 1 || sg[0].LabelSets[0]["replica"] != "a" ||
		sg[0].MinTime != end.Add(-12*time.Hour).UnixMilli() {
		t.Errorf("stores page %s, want the store gateway with replica a's blocks from %d", body, end.Add(-12*time.Hour).UnixMilli())
	}
}

// values returns the sample values of a vector result, in order.
func values(t *testing.T, data string) string {
	t.Helper()
	var d struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range d.Result {
		out = append(out, fmt.Sprint(r.Value[1]))
	}
	return strings.Join(out, ",")
}

// A block the store cannot load (truncated index) is counted and reported
// in /-/ready's detail while the other blocks answer.
func TestStoreGatewayCorruptBlock(t *testing.T) {
	d := newTestDaemon(t, storeTestProm, replicaA(t), "bucket:\n  type: FILESYSTEM\n  config:\n    directory: %d/bucket\n")
	bucketDir := filepath.Join(d.dir, "bucket")
	good, end := contiguousBlocks(t, bucketDir, 2, labels.FromStrings("cluster", "c1", "replica", "y"))
	bad, _ := contiguousBlocks(t, bucketDir, 1, labels.FromStrings("cluster", "c1", "replica", "z"))
	if err := os.Truncate(filepath.Join(bucketDir, bad[0], "index"), 100); err != nil {
		t.Fatal(err)
	}
	d.start(t)
	waitFor(t, 30*time.Second, "the corrupt block reported", func() error {
		if v := gatherValue(t, d, "thanos_bucket_store_block_load_failures_total", nil); v < 1 {
			return fmt.Errorf("block load failures %v", v)
		}
		_, body, err := d.get("/-/ready")
		if err != nil {
			return err
		}
		if !strings.Contains(body, "store-gateway: degraded: 1 blocks in the bucket failed to load") || !strings.Contains(body, bad[0]) {
			return fmt.Errorf("ready: %s", body)
		}
		return nil
	})
	if v := gatherValue(t, d, "thanos_bucket_store_blocks_loaded", nil); v != float64(len(good)) {
		t.Errorf("blocks loaded %v, want %d", v, len(good))
	}
	got, err := d.query("/api/v1/query", `count_over_time(m{replica="y"}[5h])`, end.Add(-time.Millisecond), "&dedup=false")
	if err != nil {
		t.Fatal(err)
	}
	if values(t, got) != "200,200" {
		t.Errorf("good blocks answer %s, want 200 samples per series", got)
	}
}

// An unreachable bucket at start: the daemon starts and ingests, the store
// gateway is reported degraded and retries.
func TestStoreGatewayBucketDownAtStart(t *testing.T) {
	d := newTestDaemon(t, fmt.Sprintf(selfScrape, "%s"), replicaA(t),
		"bucket:\n  type: FILESYSTEM\n  config:\n    directory: %d/not-a-dir/bucket\n")
	if err := os.WriteFile(filepath.Join(d.dir, "not-a-dir"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.start(t)
	waitFor(t, 30*time.Second, "store gateway reported degraded", func() error {
		code, body, err := d.get("/-/ready")
		if err != nil {
			return err
		}
		if code != 200 || !strings.Contains(body, "store-gateway: degraded: bucket store initial sync failed") {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	before := gatherValue(t, d, "prometheus_tsdb_head_samples_appended_total", map[string]string{"type": "float"})
	waitFor(t, 10*time.Second, "ingestion", func() error {
		if after := gatherValue(t, d, "prometheus_tsdb_head_samples_appended_total", map[string]string{"type": "float"}); after <= before {
			return fmt.Errorf("%v samples, %v before", after, before)
		}
		return nil
	})
	waitFor(t, 10*time.Second, "up from the local TSDB", func() error {
		got, err := d.query("/api/v1/query", "up", time.Now(), "")
		if err != nil {
			return err
		}
		if values(t, got) != "1" {
			return fmt.Errorf("up %s, want 1", got)
		}
		return nil
	})
}
