package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"
)

// rawQuery runs an instant query at `at` and returns the result's JSON
// (without the Thanos API's analysis), failing on errors and warnings.
func rawQuery(d *daemon, path, expr string, at time.Time, extra string) (string, error) {
	u := fmt.Sprintf("%s?query=%s&time=%d%s", d.url(path), url.QueryEscape(expr), at.Unix(), extra)
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" || len(r.Warnings) > 0 {
		return "", fmt.Errorf("%s %s: %d %.300s", path, expr, resp.StatusCode, body)
	}
	var data struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(r.Data, &data); err != nil {
		return "", err
	}
	return string(data.Result), nil
}

// History in a real MinIO: the shipper uploads 30h of blocks, the store
// gateway loads them, local retention (24h with a bucket) deletes the old
// local copies; every answer over the whole range, polled throughout, equals
// the local-only answer taken before, and no sample is counted twice.
func TestBucketHistoryHandOff(t *testing.T) {
	m := startMinio(t)
	s := &shipperSetup{m: m, dir: t.TempDir(), httpAddr: freeAddr(t)}
	s.dataDir = filepath.Join(s.dir, "data")
	s.tsdbDir = mkdir(t, s.dataDir, "tsdb")
	bucketFile := m.writeBucketYAML(filepath.Join(s.dir, "bucket.yml"))
	writeFile(t, filepath.Join(s.dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\nbucket:\n  config_file: "+bucketFile+"\nstore_gateway:\n  sync_interval: 2s\n")
	writeFile(t, filepath.Join(s.dir, "prometheus.yml"), "global:\n  external_labels: {cluster: e2e}\n")
	s.args = []string{"--config.file=" + filepath.Join(s.dir, "monstack.yml"), "--role=replica-a"}
	end := time.Now().Truncate(2 * time.Hour)
	for i := 15; i > 0; i-- {
		mint := end.Add(-time.Duration(i) * 2 * time.Hour)
		s.ids = append(s.ids, writeTSDBBlock(t, s.tsdbDir, mint, 20, 100))
	}
	d := startDaemonAt(t, s.httpAddr, s.dataDir, nil, s.args...)

	at := end.Add(-time.Millisecond)
	queries := []struct{ expr, extra string }{
		{"sum(count_over_time(e2e_bucket_metric[31h]))", ""},
		{"sum(sum_over_time(e2e_bucket_metric[31h]))", ""},
		{"e2e_bucket_metric[31h]", ""},
		{"e2e_bucket_metric[31h]", "&dedup=false"},
	}
	want := make([]string, len(queries))
	for i, q := range queries {
		// Prometheus' own API reads the local TSDB only: the reference.
		local, err := rawQuery(d, "/prometheus/api/v1/query", q.expr, at, "")
		if err != nil {
			t.Fatal(err)
		}
		want[i] = local
	}
	if !strings.Contains(want[0], `"30000"`) {
		t.Fatalf("local count %s, want 20 series × 100 samples × 15 blocks", want[0])
	}
	// The querier's answers have the external labels; compare values only
	// through the aggregations, and the raw ones against their first answer.
	for i, q := range queries[2:] {
		got, err := rawQuery(d, "/api/v1/query", q.expr, at, q.extra)
		if err != nil {
			t.Fatal(err)
		}
		want[2+i] = got
	}
	check := func(stage string) {
		t.Helper()
		for i, q := range queries {
			got, err := rawQuery(d, "/api/v1/query", q.expr, at, q.extra)
			if err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
			if got != want[i] {
				t.Fatalf("%s: %s%s\n got %.300s\nwant %.300s", stage, q.expr, q.extra, got, want[i])
			}
		}
	}
	deleted := func() int {
		n := 0
		for _, id := range s.ids {
			if _, err := os.Stat(filepath.Join(s.tsdbDir, id.String())); os.IsNotExist(err) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(90 * time.Second)
	for deleted() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d local blocks deleted within 90s", deleted())
		}
		check("during the hand-off")
		time.Sleep(50 * time.Millisecond)
	}
	check("after the hand-off")
	if err := s.uploadedOnce(t); err != nil {
		t.Error(err)
	}
	t.Logf("%d of %d local blocks handed off to the bucket", deleted(), len(s.ids))

	// A corrupt block in the bucket is reported; the rest still answers.
	bad := writeBlock(t, t.TempDir(), blockSpec{mint: end.Add(-40 * time.Hour), maxt: end.Add(-38 * time.Hour),
		ext: map[string]string{"cluster": "other", "replica": "x"}, nSeries: 5, nSamples: 10})
	ctx := context.Background()
	if _, err := m.client().PutObject(ctx, minioBucket, bad.String()+"/index", strings.NewReader("not an index"), -1, miniogo.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	metaJSON := fmt.Sprintf(`{"ulid":%q,"minTime":%d,"maxTime":%d,"stats":{"numSamples":50,"numSeries":5},"compaction":{"level":1,"sources":[%q]},"version":1,"thanos":{"labels":{"cluster":"other","replica":"x"},"downsample":{"resolution":0},"source":"sidecar"}}`,
		bad.String(), end.Add(-40*time.Hour).UnixMilli(), end.Add(-38*time.Hour).UnixMilli(), bad.String())
	if _, err := m.client().PutObject(ctx, minioBucket, bad.String()+"/meta.json", strings.NewReader(metaJSON), -1, miniogo.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the corrupt block reported", func() error {
		_, body, err := httpGet(d.url("/-/ready"))
		if err != nil {
			return err
		}
		if !strings.Contains(string(body), "store-gateway: degraded") || !strings.Contains(string(body), bad.String()) {
			return fmt.Errorf("%s", body)
		}
		return nil
	})
	if v, err := d.metric("thanos_bucket_store_block_load_failures_total"); err != nil || v < 1 {
		t.Errorf("thanos_bucket_store_block_load_failures_total %v %v", v, err)
	}
	check("with a corrupt block in the bucket")
}
