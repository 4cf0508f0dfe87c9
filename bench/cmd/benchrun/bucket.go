package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The bucket phase: the workload's past as 2h blocks in a MinIO bucket,
// read by the stock store path (thanos store + thanos query) and by
// monstackd's in-process store gateway, side by side on a quiet machine.

const (
	bucketName  = "bench"
	minioUser   = "benchadmin"
	minioSecret = "benchsecret"
	// historyBlock is the span of one history block (Prometheus' level 1).
	historyBlock = 2 * time.Hour
	// bucketEvalBeforeEnd places the bucket queries' evaluation time inside
	// the history, far enough from its end that every range and rate window
	// of the query set lies in the blocks.
	bucketEvalBeforeEnd = time.Hour
)

// bucketSetups are the processes of the bucket phase.
type bucketSetups struct {
	stock *setup // thanos store + thanos query
	store *proc
	query *proc
	mon   *setup // monstackd with the bucket and nothing to scrape
	idle  *setup // monstackd without a bucket, for its baseline memory
}

// runBucketPhase writes the history, uploads it, starts both setups on it
// and adds the phase's figures and result comparisons to r.
func runBucketPhase(r *report, sc scale, queries, dashboard []querySpec, b bins, work, base string) error {
	dir := filepath.Join(work, "bucket")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	minioProc, minioAddr, err := startMinio(b.minio, dir)
	if err != nil {
		return err
	}
	defer minioProc.kill(syscall.SIGTERM, 30*time.Second)
	if err := makeBucket(minioAddr); err != nil {
		return err
	}
	bucketYAML := filepath.Join(dir, "bucket.yml")
	if err := writeBucketYAML(bucketYAML, minioAddr); err != nil {
		return err
	}

	// Blocks end at the last 2h boundary, so the whole history is in the
	// past and in whole blocks.
	end := time.Now().Truncate(historyBlock)
	start := end.Add(-sc.History)
	blocks := int(sc.History / historyBlock)
	blocksDir := filepath.Join(dir, "blocks")
	log.Printf("bucket phase: writing %d blocks of %d series (%s of history)", blocks, sc.HistorySeries, sc.History)
	if err := writeHistory(b.target, blocksDir, sc, start, end, 0); err != nil {
		return err
	}
	if err := uploadReplicaBlocks(b.thanos, blocksDir, bucketYAML, "a"); err != nil {
		return err
	}

	bs, err := newBucketSetups(b, dir, bucketYAML)
	if err != nil {
		return err
	}
	defer bs.stop()
	for _, s := range []*setup{bs.stock, bs.mon, bs.idle} {
		if err := s.start(); err != nil {
			return err
		}
	}
	at := end.Add(-bucketEvalBeforeEnd)
	if err := bs.waitLoaded(blocks, at); err != nil {
		return err
	}

	profDone := make(chan []string, 1)
	go func() { profDone <- profile(bs.mon, base+"-bucket", sc.ProfileSeconds) }()
	lat, cpuStock, cpuMon, err := measureBucketQueries(sc, queries, bs, at)
	if err != nil {
		return err
	}
	r.Profiles = append(r.Profiles, <-profDone...)
	for _, q := range queries {
		l := lat[q.Name]
		r.Figures = append(r.Figures, newFigure("bucket query "+q.Name, "ms", "stock store path", l["stock"], l["monstackd"], 0.5))
	}
	r.Figures = append(r.Figures, newFigure("bucket CPU per pass over the query set", "s", "stock store path", cpuStock, cpuMon, 0))
	if err := bucketMemory(r, sc, bs); err != nil {
		return err
	}
	for _, q := range queries {
		r.Compared++
		if d := compareAt(q, bs.stock, bs.mon, at); d != "" {
			r.Mismatches = append(r.Mismatches, fmt.Sprintf("bucket %s: %s", q.Name, d))
		}
	}
	return runFrontendFigures(r, sc, dashboard, b, dir, bucketYAML, filepath.Join(dir, "prometheus.yml"), bs, blocks, at)
}

// startMinio runs MinIO on a fresh data directory, as the e2e tests do.
func startMinio(bin, dir string) (*proc, string, error) {
	a, err := addrs(2)
	if err != nil {
		return nil, "", err
	}
	data := filepath.Join(dir, "minio")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, "", err
	}
	p := &proc{
		name: "minio", bin: bin, logFile: filepath.Join(dir, "minio.log"),
		readyURL: "http://" + a[0] + "/minio/health/live",
		args:     []string{"server", "--quiet", "--address=" + a[0], "--console-address=" + a[1], data},
		env: []string{"MINIO_ROOT_USER=" + minioUser, "MINIO_ROOT_PASSWORD=" + minioSecret,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1", "HOME=" + data},
	}
	if err := p.start(); err != nil {
		return nil, "", err
	}
	if _, err := p.waitReady(time.Now(), time.Minute); err != nil {
		p.kill(syscall.SIGTERM, 10*time.Second)
		return nil, "", err
	}
	return p, a[0], nil
}

func makeBucket(addr string) error {
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(minioUser, minioSecret, "")})
	if err != nil {
		return fmt.Errorf("minio client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.MakeBucket(ctx, bucketName, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketName, err)
	}
	return nil
}

// writeBucketYAML writes the Thanos objstore config every process of the
// phase reads, unchanged.
func writeBucketYAML(path, addr string) error {
	y := fmt.Sprintf(`type: S3
config:
  bucket: %s
  endpoint: %s
  access_key: %s
  secret_key: %s
  insecure: true
`, bucketName, addr, minioUser, minioSecret)
	return os.WriteFile(path, []byte(y), 0o644)
}

// writeHistory has the workload target write [start, end) as TSDB blocks:
// the target owns the workload.
func writeHistory(target, out string, sc scale, start, end time.Time, offset time.Duration) error {
	o, err := execOutput(target, "history", "--out="+out, "--offset="+offset.String(),
		fmt.Sprintf("--series=%d", sc.HistorySeries), fmt.Sprintf("--listeners=%d", sc.Targets),
		"--interval="+sc.ScrapeInterval.String(),
		fmt.Sprintf("--start=%d", start.UnixMilli()), fmt.Sprintf("--end=%d", end.UnixMilli()))
	if err != nil {
		return fmt.Errorf("write history: %w: %s", err, o)
	}
	log.Print(strings.TrimSpace(o))
	return nil
}

func newBucketSetups(b bins, dir, bucketYAML string) (*bucketSetups, error) {
	a, err := addrs(4)
	if err != nil {
		return nil, err
	}
	storeHTTP, storeGRPC, qHTTP, qGRPC := a[0], a[1], a[2], a[3]
	stockDir := filepath.Join(dir, "stock")
	if err := os.MkdirAll(stockDir, 0o755); err != nil {
		return nil, err
	}
	bs := &bucketSetups{}
	bs.store = &proc{
		name: "thanos store", bin: b.thanos, logFile: filepath.Join(stockDir, "store.log"),
		readyURL: "http://" + storeHTTP + "/-/ready",
		args: []string{"store", "--objstore.config-file=" + bucketYAML, "--data-dir=" + filepath.Join(stockDir, "store"),
			"--http-address=" + storeHTTP, "--grpc-address=" + storeGRPC},
	}
	bs.query = &proc{
		name: "thanos query", bin: b.thanos, logFile: filepath.Join(stockDir, "query.log"),
		readyURL: "http://" + qHTTP + "/-/ready",
		args: []string{"query", "--http-address=" + qHTTP, "--grpc-address=" + qGRPC,
			"--endpoint=" + storeGRPC, "--query.replica-label=replica"},
	}
	bs.stock = &setup{name: "stock store path", procs: []*proc{bs.store, bs.query}, api: "http://" + qHTTP,
		tsdb: bs.store, metrics: "http://" + storeHTTP + "/metrics"}

	// Nothing to scrape: monstackd's TSDB stays empty and every answer
	// comes from the bucket.
	promYAML := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promYAML, []byte("global:\n  external_labels:\n    cluster: bench\n    replica: a\nscrape_configs: []\n"), 0o644); err != nil {
		return nil, err
	}
	if bs.mon, err = bucketMonstackd(b, filepath.Join(dir, "monstackd"), "monstackd",
		"prometheus:\n  config_file: "+promYAML+"\nbucket:\n  config_file: "+bucketYAML+"\n"); err != nil {
		return nil, err
	}
	if bs.idle, err = bucketMonstackd(b, filepath.Join(dir, "monstackd-idle"), "idle monstackd",
		"prometheus:\n  config_file: "+promYAML+"\n"); err != nil {
		return nil, err
	}
	return bs, nil
}

// bucketMonstackd is one daemon with the given monstack.yml.
func bucketMonstackd(b bins, dir, name, cfgYAML string) (*setup, error) {
	a, err := addrs(2)
	if err != nil {
		return nil, err
	}
	return newMonstackd(b, dir, name, "replica-a", cfgYAML, a[0], a[1])
}

// newMonstackd is one daemon of role with the given monstack.yml, serving
// HTTP on httpAddr and gRPC on grpcAddr.
func newMonstackd(b bins, dir, name, role, cfgYAML, httpAddr, grpcAddr string) (*setup, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "monstack.yml")
	if err := os.WriteFile(cfg, []byte(cfgYAML), 0o644); err != nil {
		return nil, err
	}
	m := &proc{
		name: name, bin: b.monstackd, logFile: filepath.Join(dir, "monstackd.log"),
		readyURL: "http://" + httpAddr + "/-/ready",
		args: []string{"--role=" + role, "--config.file=" + cfg, "--data.dir=" + filepath.Join(dir, "data"),
			"--http.address=" + httpAddr, "--grpc.address=" + grpcAddr},
	}
	return &setup{name: name, procs: []*proc{m}, api: "http://" + httpAddr, tsdb: m, metrics: "http://" + httpAddr + "/metrics"}, nil
}

func (bs *bucketSetups) stop() { stopSetups(bs.idle, bs.mon, bs.stock) }

// waitLoaded waits until both store gateways have loaded every block and
// both query paths answer from the history at at (the stock querier learns
// of the store only at its next endpoint update).
func (bs *bucketSetups) waitLoaded(blocks int, at time.Time) error {
	return waitLoaded([]*setup{bs.stock, bs.mon}, blocks, at)
}

// waitLoaded waits until every setup's store gateway has loaded blocks
// blocks and its query path answers from the history at at.
func waitLoaded(setups []*setup, blocks int, at time.Time) error {
	probe := querySpec{Name: "probe", Type: "instant", Query: "count(bench_memory_usage_bytes)"}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		ready := true
		for _, s := range setups {
			n, err := metricSum(s.metrics, "thanos_bucket_store_blocks_loaded")
			if err != nil || int(n) < blocks {
				ready = false
				continue
			}
			_, data, err := probe.run(s.api, at)
			if err != nil {
				ready = false
				continue
			}
			res, err := parseResult(probe, data)
			if err != nil || len(res.series) == 0 {
				ready = false
			}
		}
		if ready {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("bucket phase: the store gateways did not load %d blocks and answer within 10m", blocks)
}

// measureBucketQueries runs every query at at against both paths,
// interleaved, the first alternating, and returns latencies in ms by query
// name and side.
//
// It also returns each side's CPU seconds per pass over the query set: with
// two processes the stock path can spread one query over both cores, so
// latency alone hides what a query costs.
func measureBucketQueries(sc scale, queries []querySpec, bs *bucketSetups, at time.Time) (lat map[string]map[string][]float64, cpuStock, cpuMon []float64, err error) {
	sides := []*setup{bs.stock, bs.mon}
	names := map[*setup]string{bs.stock: "stock", bs.mon: "monstackd"}
	out := map[string]map[string][]float64{}
	log.Printf("bucket queries: %d × %d repetitions × 2 endpoints", len(queries), sc.QueryRepetitions)
	prevStock, prevMon, err := bs.cpu()
	if err != nil {
		return nil, nil, nil, err
	}
	for rep := 0; rep < sc.QueryRepetitions; rep++ {
		for _, q := range queries {
			if out[q.Name] == nil {
				out[q.Name] = map[string][]float64{}
			}
			for i := range sides {
				s := sides[(i+rep)%len(sides)]
				took, _, err := q.run(s.api, at)
				if err != nil {
					return nil, nil, nil, fmt.Errorf("bucket %s on %s: %w", q.Name, s.name, err)
				}
				out[q.Name][names[s]] = append(out[q.Name][names[s]], float64(took.Microseconds())/1000)
			}
		}
		st, mo, err := bs.cpu()
		if err != nil {
			return nil, nil, nil, err
		}
		cpuStock, cpuMon = append(cpuStock, st-prevStock), append(cpuMon, mo-prevMon)
		prevStock, prevMon = st, mo
	}
	return out, cpuStock, cpuMon, nil
}

// cpu reads the CPU seconds of the stock path (store + query) and of
// monstackd with the bucket.
func (bs *bucketSetups) cpu() (stock, mon float64, err error) {
	for _, p := range []*proc{bs.store, bs.query} {
		v, err := cpuSeconds(p.pid())
		if err != nil {
			return 0, 0, fmt.Errorf("CPU of %s: %w", p.name, err)
		}
		stock += v
	}
	if mon, err = cpuSeconds(bs.mon.tsdb.pid()); err != nil {
		return 0, 0, fmt.Errorf("CPU of %s: %w", bs.mon.tsdb.name, err)
	}
	return stock, mon, nil
}

// bucketMemory samples resident memory after the queries: monstackd's
// store gateway part (with the bucket − without) against thanos store, and
// the whole daemon against thanos store + thanos query.
func bucketMemory(r *report, sc scale, bs *bucketSetups) error {
	var store, stockPath, part, whole []float64
	for i := 0; i < sc.RSSSamples; i++ {
		if i > 0 {
			time.Sleep(2 * time.Second)
		}
		var m [4]memory
		for j, p := range []*proc{bs.store, bs.query, bs.mon.tsdb, bs.idle.tsdb} {
			var err error
			if m[j], err = readMemory(p.pid()); err != nil {
				return fmt.Errorf("bucket memory of %s: %w", p.name, err)
			}
		}
		store = append(store, m[0].rss/mib)
		stockPath = append(stockPath, (m[0].rss+m[1].rss)/mib)
		part = append(part, (m[2].rss-m[3].rss)/mib)
		whole = append(whole, m[2].rss/mib)
	}
	r.Figures = append(r.Figures,
		newFigure("bucket resident memory: store gateway part (monstackd with bucket − without)", "MiB", "thanos store", store, part, 1.0),
		newFigure("bucket resident memory: whole monstackd", "MiB", "thanos store + thanos query", stockPath, whole, 0))
	return nil
}
