package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// setup is one side of the comparison.
type setup struct {
	name  string
	procs []*proc
	// api is the public query endpoint (Grafana's data source URL).
	api string
	// tsdb is the process that ingests; its /metrics counts samples.
	tsdb *proc
	// metrics is tsdb's /metrics URL.
	metrics string
}

func (s *setup) start() error {
	for _, p := range s.procs {
		if err := p.start(); err != nil {
			return err
		}
	}
	for _, p := range s.procs {
		if _, err := p.waitReady(time.Now(), 5*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func (s *setup) pids() []int {
	var pids []int
	for _, p := range s.procs {
		pids = append(pids, p.pid())
	}
	return pids
}

type bins struct {
	monstackd, prometheus, thanos, target, minio string
}

func addrs(n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

// writePrometheusYAML writes the prometheus.yml both setups load unchanged.
// Identical external labels give both the same scrape offsets, so they
// scrape the deterministic targets at the same instants. replica is the
// replica external label; "" leaves it out (a monstackd of a pair takes it
// from its role).
func writePrometheusYAML(path string, sc scale, targets []string, replica string) error {
	timeout := sc.ScrapeInterval
	if timeout > 10*time.Second {
		timeout = 10 * time.Second
	}
	replicaLine := ""
	if replica != "" {
		replicaLine = "    replica: " + replica + "\n"
	}
	y := fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
  evaluation_interval: %s
  external_labels:
    cluster: bench
%sscrape_configs:
  - job_name: bench
    static_configs:
      - targets: ['%s']
`, sc.ScrapeInterval, timeout, sc.ScrapeInterval, replicaLine, strings.Join(targets, "', '"))
	return os.WriteFile(path, []byte(y), 0o644)
}

// stockSetup is the per-host half of the stock architecture: Prometheus,
// Thanos sidecar, Thanos query (replica label) and query-frontend.
func stockSetup(b bins, work, promYAML string) (*setup, *proc, error) {
	a, err := addrs(7)
	if err != nil {
		return nil, nil, err
	}
	promHTTP, scHTTP, scGRPC, qHTTP, qGRPC, feHTTP := a[0], a[1], a[2], a[3], a[4], a[5]
	dir := filepath.Join(work, "stock")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	prom := newPrometheus(b, dir, "prometheus", promYAML, promHTTP)
	sidecar := newSidecar(b, dir, "thanos sidecar", promHTTP, scHTTP, scGRPC)
	query := &proc{
		name: "thanos query", bin: b.thanos, logFile: filepath.Join(dir, "query.log"),
		readyURL: "http://" + qHTTP + "/-/ready",
		args: []string{"query", "--http-address=" + qHTTP, "--grpc-address=" + qGRPC,
			"--endpoint=" + scGRPC, "--query.replica-label=replica"},
	}
	frontend := &proc{
		name: "thanos query-frontend", bin: b.thanos, logFile: filepath.Join(dir, "frontend.log"),
		readyURL: "http://" + feHTTP + "/-/ready",
		args:     []string{"query-frontend", "--http-address=" + feHTTP, "--query-frontend.downstream-url=http://" + qHTTP},
	}
	s := &setup{
		name: "stock", procs: []*proc{prom, sidecar, query, frontend},
		api: "http://" + feHTTP, tsdb: prom, metrics: "http://" + promHTTP + "/metrics",
	}
	return s, prom, nil
}

// newPrometheus is a stock Prometheus with its TSDB in dir/prometheus and 2h
// blocks, as a sidecar's shipper needs.
func newPrometheus(b bins, dir, name, promYAML, httpAddr string) *proc {
	return &proc{
		name: name, bin: b.prometheus, logFile: filepath.Join(dir, "prometheus.log"),
		readyURL: "http://" + httpAddr + "/-/ready",
		args: []string{
			"--config.file=" + promYAML,
			"--storage.tsdb.path=" + filepath.Join(dir, "prometheus"),
			"--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h",
			"--web.listen-address=" + httpAddr, "--web.enable-lifecycle",
		},
	}
}

// newSidecar is a Thanos sidecar of the Prometheus newPrometheus(…, dir, …)
// that listens on promHTTP.
func newSidecar(b bins, dir, name, promHTTP, httpAddr, grpcAddr string) *proc {
	return &proc{
		name: name, bin: b.thanos, logFile: filepath.Join(dir, "sidecar.log"),
		readyURL: "http://" + httpAddr + "/-/ready",
		args: []string{"sidecar", "--tsdb.path=" + filepath.Join(dir, "prometheus"), "--prometheus.url=http://" + promHTTP,
			"--http-address=" + httpAddr, "--grpc-address=" + grpcAddr},
	}
}

// monstackdSetup is one daemon with the same prometheus.yml.
func monstackdSetup(b bins, work, promYAML string) (*setup, error) {
	a, err := addrs(2)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(work, "monstackd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "monstack.yml")
	if err := os.WriteFile(cfg, []byte("prometheus:\n  config_file: "+promYAML+"\n"), 0o644); err != nil {
		return nil, err
	}
	m := &proc{
		name: "monstackd", bin: b.monstackd, logFile: filepath.Join(dir, "monstackd.log"),
		readyURL: "http://" + a[0] + "/-/ready",
		args: []string{"--role=replica-a", "--config.file=" + cfg, "--data.dir=" + filepath.Join(dir, "data"),
			"--http.address=" + a[0], "--grpc.address=" + a[1]},
	}
	return &setup{name: "monstackd", procs: []*proc{m}, api: "http://" + a[0], tsdb: m, metrics: "http://" + a[0] + "/metrics"}, nil
}
