package supervisor

import (
	"context"
	"fmt"
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

// Completed blocks are uploaded once with the role's external labels and
// source sidecar; once uploaded, local retention (24h with a bucket) may
// delete the local copies, not before.
func TestShipperUploadsBlocks(t *testing.T) {
	role, err := config.ParseRole("replica-a")
	if err != nil {
		t.Fatal(err)
	}
	d := newTestDaemon(t, "global:\n  external_labels: {cluster: c1}\n", Options{Runtime: config.Runtime{Role: role}},
		"bucket:\n  type: FILESYSTEM\n  config:\n    directory: %d/bucket\n")
	tsdbDir := filepath.Join(d.opts.Runtime.DataDir, "tsdb")
	if err := os.MkdirAll(tsdbDir, 0o777); err != nil {
		t.Fatal(err)
	}
	// Three 2h blocks two days old and a recent one, as the TSDB writes
	// them; Prometheus' retention counts from the newest block.
	series := []labels.Labels{labels.FromStrings("__name__", "m", "i", "1"), labels.FromStrings("__name__", "m", "i", "2")}
	start := time.Now().Add(-48 * time.Hour).Truncate(2 * time.Hour)
	recent := time.Now().Add(-4 * time.Hour).Truncate(2 * time.Hour)
	var ids []string
	for _, mint := range []time.Time{start, start.Add(2 * time.Hour), start.Add(4 * time.Hour), recent} {
		id, err := e2eutil.CreateBlock(context.Background(), tsdbDir, series, 100, mint.UnixMilli(), mint.Add(2*time.Hour).UnixMilli(), labels.EmptyLabels(), 0, metadata.NoneFunc, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	d.start(t)

	bucketDir := filepath.Join(d.dir, "bucket")
	waitFor(t, 30*time.Second, "four blocks uploaded", func() error {
		for _, id := range ids {
			m, err := metadata.ReadFromDir(filepath.Join(bucketDir, id))
			if err != nil {
				return err
			}
			if got := labels.FromMap(m.Thanos.Labels); !labels.Equal(got, labels.FromStrings("cluster", "c1", "replica", "a")) {
				return fmt.Errorf("block %s labels %s", id, got)
			}
			if m.Thanos.Source != metadata.SidecarSource {
				return fmt.Errorf("block %s source %q", id, m.Thanos.Source)
			}
		}
		return nil
	})
	// Retention then removes the local copies (reloaded every 15s).
	waitFor(t, 45*time.Second, "old local copies deleted after upload", func() error {
		for _, id := range ids[:3] {
			if _, err := os.Stat(filepath.Join(tsdbDir, id)); err == nil {
				return fmt.Errorf("block %s still local", id)
			}
		}
		return nil
	})
	if v := gatherValue(t, d, "monstackd_shipper_pending_blocks", nil); v != 0 {
		t.Errorf("pending blocks %v", v)
	}
	if _, err := os.Stat(filepath.Join(tsdbDir, ids[3])); err != nil {
		t.Errorf("the recent block was deleted: %v", err)
	}
	if v := gatherValue(t, d, "thanos_shipper_uploads_total", nil); v != 4 {
		t.Errorf("thanos_shipper_uploads_total %v, want 4 (each block once)", v)
	}
}

// With a bucket that fails, the daemon starts and ingests, the shipper
// reports the pending blocks in /-/ready's detail and the metrics, and
// retention keeps every block that is not uploaded.
func TestShipperKeepsBlocksWhileBucketFails(t *testing.T) {
	role, err := config.ParseRole("replica-a")
	if err != nil {
		t.Fatal(err)
	}
	d := newTestDaemon(t, fmt.Sprintf(selfScrape, "%s"), Options{Runtime: config.Runtime{Role: role}},
		"bucket:\n  type: FILESYSTEM\n  config:\n    directory: %d/not-a-dir/bucket\n")
	if err := os.WriteFile(filepath.Join(d.dir, "not-a-dir"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tsdbDir := filepath.Join(d.opts.Runtime.DataDir, "tsdb")
	if err := os.MkdirAll(tsdbDir, 0o777); err != nil {
		t.Fatal(err)
	}
	series := []labels.Labels{labels.FromStrings("__name__", "m", "i", "1")}
	var ids []string
	for _, age := range []time.Duration{72 * time.Hour, 48 * time.Hour, 4 * time.Hour} {
		mint := time.Now().Add(-age).Truncate(2 * time.Hour)
		id, err := e2eutil.CreateBlock(context.Background(), tsdbDir, series, 10, mint.UnixMilli(), mint.Add(2*time.Hour).UnixMilli(), labels.EmptyLabels(), 0, metadata.NoneFunc, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	d.start(t)
	waitFor(t, 30*time.Second, "pending blocks reported", func() error {
		code, body, err := d.get("/-/ready")
		if err != nil {
			return err
		}
		if code != 200 || !strings.Contains(body, "shipper: degraded: 3 blocks pending upload") {
			return fmt.Errorf("%d %s", code, body)
		}
		if v := gatherValue(t, d, "monstackd_shipper_pending_blocks", nil); v != 3 {
			return fmt.Errorf("pending blocks metric %v", v)
		}
		return nil
	})
	// Past two block reloads, which apply retention: nothing deleted,
	// scraping goes on.
	before := gatherValue(t, d, "prometheus_tsdb_head_samples_appended_total", map[string]string{"type": "float"})
	reloads := gatherValue(t, d, "prometheus_tsdb_reloads_total", nil)
	waitFor(t, 45*time.Second, "two block reloads", func() error {
		if v := gatherValue(t, d, "prometheus_tsdb_reloads_total", nil); v < reloads+2 {
			return fmt.Errorf("%v reloads, %v before", v, reloads)
		}
		return nil
	})
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(tsdbDir, id)); err != nil {
			t.Errorf("block %s not uploaded yet was deleted: %v", id, err)
		}
	}
	if after := gatherValue(t, d, "prometheus_tsdb_head_samples_appended_total", map[string]string{"type": "float"}); after <= before {
		t.Errorf("ingestion stopped: %v samples, %v before", after, before)
	}
}
