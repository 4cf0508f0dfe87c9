package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Blocks a stock Prometheus + Thanos sidecar ship are ones monstackd reads:
// `monstackd tools bucket verify` passes on that bucket and `ls` lists them
// with the sidecar's external labels (the other direction, stock thanos
// verifying what monstackd shipped, is in TestShipperMinioOutage).
func TestStockSidecarBucket(t *testing.T) {
	m := startMinio(t)
	dir := t.TempDir()
	promDir := mkdir(t, dir, "prometheus")
	end := time.Now().Add(-6 * time.Hour).Truncate(2 * time.Hour)
	var ids []string
	for i := 2; i > 0; i-- {
		ids = append(ids, writeTSDBBlock(t, promDir, end.Add(-time.Duration(i)*2*time.Hour), 30, 60).String())
	}
	bucketFile := m.writeBucketYAML(filepath.Join(dir, "bucket.yml"))
	promYAML := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promYAML, "global:\n  external_labels: {cluster: stock, replica: s}\n")
	promAddr := freeAddr(t)
	startProcess(t, "prometheus", binPath(t, "STOCK_PROMETHEUS_BIN"), nil,
		"--config.file="+promYAML, "--storage.tsdb.path="+promDir,
		"--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h",
		"--web.listen-address="+promAddr)
	waitHTTP200(t, "http://"+promAddr+"/-/ready", 60*time.Second)
	scHTTP := freeAddr(t)
	startProcess(t, "thanos sidecar", binPath(t, "THANOS_BIN"), nil, "sidecar",
		"--tsdb.path="+promDir, "--prometheus.url=http://"+promAddr, "--objstore.config-file="+bucketFile,
		"--http-address="+scHTTP, "--grpc-address="+freeAddr(t))
	eventually(t, 90*time.Second, "the stock sidecar uploading both blocks", func() error {
		got := bucketBlocks(t, m)
		for _, id := range ids {
			if !contains(got[id], "meta.json") {
				return fmt.Errorf("block %s not uploaded yet: %v", id, got)
			}
		}
		return nil
	})

	bin := binPath(t, "MONSTACKD_BIN")
	if code, out, errOut := runBin(t, bin, "tools", "bucket", "verify", "--objstore.config-file="+bucketFile); code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Errorf("monstackd tools bucket verify on a stock sidecar's bucket: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runBin(t, bin, "tools", "bucket", "ls", "--objstore.config-file="+bucketFile)
	if code != 0 {
		t.Fatalf("monstackd tools bucket ls: exit %d\n%s%s", code, out, errOut)
	}
	for _, id := range ids {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, id) {
				line = l
			}
		}
		if !strings.Contains(line, `cluster="stock"`) || !strings.Contains(line, `replica="s"`) || !strings.Contains(line, "sidecar") {
			t.Errorf("ls line for %s: %q, want the sidecar's labels and source\n%s", id, line, out)
		}
	}
}
