package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A stock `thanos query --endpoint=<monstackd gRPC>` queries monstackd's
// StoreAPI: the Info API advertises the external labels, Series returns the
// scraped samples, and dedup on the replica label works as with a sidecar.
func TestStockThanosQueryReadsStoreAPI(t *testing.T) {
	dir := t.TempDir()
	nodeAddr := freeAddr(t)
	startProcess(t, "node_exporter", binPath(t, "NODE_EXPORTER_BIN"), nil, "--web.listen-address="+nodeAddr, "--no-collector.systemd")
	waitHTTP200(t, "http://"+nodeAddr+"/metrics", 30*time.Second)

	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  external_labels:
    cluster: e2e
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [%q]
`, nodeAddr))
	writeFile(t, filepath.Join(dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\n")
	d := startDaemon(t, filepath.Join(dir, "data"), nil, "--config.file="+filepath.Join(dir, "monstack.yml"), "--role=replica-a")

	qHTTP, qGRPC := freeAddr(t), freeAddr(t)
	startProcess(t, "thanos query", binPath(t, "THANOS_BIN"), nil, "query",
		"--http-address="+qHTTP, "--grpc-address="+qGRPC,
		"--endpoint-strict="+d.grpc, "--query.replica-label=replica")
	q := &daemon{http: qHTTP}
	waitHTTP200(t, q.url("/-/ready"), 60*time.Second)

	eventually(t, 60*time.Second, "the monstackd store in thanos query", func() error {
		data, err := q.api("/api/v1/stores", nil)
		if err != nil {
			return err
		}
		var stores map[string][]struct {
			Name      string              `json:"name"`
			LabelSets []map[string]string `json:"labelSets"`
			MinTime   int64               `json:"minTime"`
		}
		if err := json.Unmarshal(data, &stores); err != nil {
			return err
		}
		for _, ss := range stores {
			for _, s := range ss {
				if s.Name == d.grpc && len(s.LabelSets) == 1 && s.LabelSets[0]["replica"] == "a" && s.LabelSets[0]["cluster"] == "e2e" {
					return nil
				}
			}
		}
		return fmt.Errorf("stores %s", data)
	})

	eventually(t, 60*time.Second, `up{job="node"} via thanos query`, func() error {
		for _, dedup := range []string{"true", "false"} {
			data, err := q.api("/api/v1/query", url.Values{"query": {`up{job="node"}`}, "dedup": {dedup}})
			if err != nil {
				return err
			}
			var v struct {
				Result []sample `json:"result"`
			}
			if err := json.Unmarshal(data, &v); err != nil {
				return err
			}
			if len(v.Result) != 1 || v.Result[0].Value[1] != "1" {
				return fmt.Errorf("dedup=%s: %s", dedup, data)
			}
			_, hasReplica := v.Result[0].Metric["replica"]
			if hasReplica != (dedup == "false") {
				return fmt.Errorf("dedup=%s: labels %v", dedup, v.Result[0].Metric)
			}
		}
		return nil
	})

	// The label APIs go through the same StoreAPI.
	data, err := q.api("/api/v1/label/job/values", nil)
	if err != nil || !strings.Contains(string(data), `"node"`) {
		t.Fatalf("label values through thanos query: %s, %v", data, err)
	}
}
