// Command benchrun runs the same workload against stock Prometheus + Thanos
// and against monstackd on this machine and writes a report of resident
// memory, CPU per ingested sample, query latency and time to ready after
// SIGKILL, each as stock, monstackd and their ratio. `make bench` runs it.
//
// Phases, in order (each setup runs side by side the whole time):
// ingest (warm-up, then CPU windows) → queries (latency, result comparison,
// profiles) → kill (SIGKILL and restart, time to ready) → bucket (the
// ingest setups stopped; the workload's past written as 2h blocks into a
// MinIO bucket and read by thanos store + thanos query and by a monstackd
// with nothing to scrape: query latency, result comparison, the store
// gateway's resident memory) → pair (the bucket setups stopped; two
// monstackd peering over gRPC against the stock HA pair of two Prometheus,
// two sidecars, thanos query and query-frontend: deduplicated query latency
// and result comparison, queries answered while a replica is SIGKILLed and
// restarted, query latency with the peer partitioned by SIGSTOP).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

type scale struct {
	Name             string        `yaml:"name" json:"name"`
	Series           int           `yaml:"series" json:"series"`
	Targets          int           `yaml:"targets" json:"targets"`
	ScrapeInterval   time.Duration `yaml:"scrape_interval" json:"scrape_interval"`
	Warmup           time.Duration `yaml:"warmup" json:"warmup"`
	Measure          time.Duration `yaml:"measure" json:"measure"`
	MeasureWindows   int           `yaml:"measure_windows" json:"measure_windows"`
	RSSSamples       int           `yaml:"rss_samples" json:"rss_samples"`
	QueryRepetitions int           `yaml:"query_repetitions" json:"query_repetitions"`
	KillRepetitions  int           `yaml:"kill_repetitions" json:"kill_repetitions"`
	ProfileSeconds   int           `yaml:"profile_seconds" json:"profile_seconds"`
	// History is how much of the workload's past the bucket phase writes
	// into the bucket, in whole 2h blocks, ending at the last 2h boundary.
	History time.Duration `yaml:"history" json:"history"`
	// HistorySeries is the series count of the history (the live phases
	// use Series), spread over Targets instances as the live targets are.
	HistorySeries int `yaml:"history_series" json:"history_series"`
	// PartitionQueries is how many queries the pair phase sends through
	// each side, one after another, while the peer is partitioned.
	PartitionQueries int `yaml:"partition_queries" json:"partition_queries"`
	// PartitionTimeout is those queries' client timeout: by default the
	// stock querier waits for a silent store without bound.
	PartitionTimeout time.Duration `yaml:"partition_timeout" json:"partition_timeout"`
}

func loadScale(file string) (scale, error) {
	var s scale
	b, err := os.ReadFile(file)
	if err != nil {
		return s, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%s: %w", file, err)
	}
	if s.Series <= 0 || s.Targets <= 0 || s.ScrapeInterval <= 0 || s.MeasureWindows <= 0 || s.RSSSamples <= 0 || s.QueryRepetitions <= 0 || s.KillRepetitions <= 0 {
		return s, fmt.Errorf("%s: series, targets, scrape_interval, measure_windows, rss_samples, query_repetitions and kill_repetitions must be positive", file)
	}
	// The bucket queries run an hour before the history's end and read up
	// to 1h5m before that (range1h with a 5m rate window).
	if s.History < 2*historyBlock || s.History%historyBlock != 0 || s.HistorySeries <= 0 {
		return s, fmt.Errorf("%s: history must be a multiple of %s of at least %s, and history_series positive", file, historyBlock, 2*historyBlock)
	}
	if s.PartitionQueries <= 0 || s.PartitionTimeout <= 0 {
		return s, fmt.Errorf("%s: partition_queries and partition_timeout must be positive", file)
	}
	return s, nil
}

func main() {
	var (
		scaleFile   = flag.String("scale", "bench/scales/quick.yaml", "scale file")
		queriesFile = flag.String("queries", "bench/queries.yaml", "query set")
		dashFile    = flag.String("dashboard", "bench/dashboard.yaml", "range queries of the frontend figures' dashboard")
		outDir      = flag.String("out", "bench/results", "report directory")
		workDir     = flag.String("work", "", "scratch directory (default: a new temporary directory, removed at the end)")
		bucketOnly  = flag.Bool("bucket-only", false, "run only the bucket phase (for working on it): report <date>-<scale>-bucket-only.{md,json}")
		pairOnly    = flag.Bool("pair-only", false, "run only the pair phase (for working on it): report <date>-<scale>-pair-only.{md,json}")
		compactOnly = flag.Bool("compact-only", false, "run only the compact phase (for working on it): report <date>-<scale>-compact-only.{md,json}")
		b           bins
	)
	flag.StringVar(&b.monstackd, "monstackd", "bin/monstackd", "monstackd binary")
	flag.StringVar(&b.prometheus, "prometheus", ".cache/bin/prometheus", "stock Prometheus binary")
	flag.StringVar(&b.thanos, "thanos", ".cache/bin/thanos", "stock Thanos binary")
	flag.StringVar(&b.target, "target", ".cache/bin/bench-target", "workload target binary")
	flag.StringVar(&b.minio, "minio", os.Getenv("MINIO_BIN"), "MinIO binary, the bucket phase's S3 server (scripts/test-deps.sh builds it)")
	flag.Parse()
	log.SetFlags(log.Ltime)

	if err := run(*scaleFile, *queriesFile, *dashFile, *outDir, *workDir, *bucketOnly, *pairOnly, *compactOnly, b); err != nil {
		log.Fatalf("bench: %v", err)
	}
}

func run(scaleFile, queriesFile, dashFile, outDir, workDir string, bucketOnly, pairOnly, compactOnly bool, b bins) (err error) {
	sc, err := loadScale(scaleFile)
	if err != nil {
		return err
	}
	queries, err := loadQueries(queriesFile)
	if err != nil {
		return err
	}
	dashboard, err := loadQueries(dashFile)
	if err != nil {
		return err
	}
	for _, q := range dashboard {
		if q.Type != "range" {
			return fmt.Errorf("%s: query %s: the dashboard holds range queries only", dashFile, q.Name)
		}
	}
	if b.minio == "" && !pairOnly {
		return fmt.Errorf("no MinIO binary for the bucket phase: pass --minio or set MINIO_BIN (scripts/test-deps.sh builds it)")
	}
	b = bins{monstackd: mustAbs(b.monstackd), prometheus: mustAbs(b.prometheus), thanos: mustAbs(b.thanos), target: mustAbs(b.target), minio: b.minio}
	need := []string{b.monstackd, b.prometheus, b.thanos, b.target}
	if !pairOnly {
		b.minio = mustAbs(b.minio)
		need = append(need, b.minio)
	}
	for _, bin := range need {
		if _, err := os.Stat(bin); err != nil {
			return err
		}
	}
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "monstackd-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(workDir)
	}
	r := &report{Date: time.Now().UTC().Format("2006-01-02"), Scale: sc, Machine: readMachine(), Mismatches: []string{}}
	r.Versions = versions(b)
	name := r.Date + "-" + sc.Name
	if bucketOnly {
		// Named apart, so that it never replaces a whole run's report.
		name += "-bucket-only"
		if err := runBucketPhase(r, sc, queries, dashboard, b, workDir, filepath.Join(outDir, name)); err != nil {
			return err
		}
		return r.finish(outDir, name)
	}
	if compactOnly {
		name += "-compact-only"
		if err := runCompactPhase(r, sc, b, workDir); err != nil {
			return err
		}
		return r.finish(outDir, name)
	}
	if pairOnly {
		name += "-pair-only"
		if err := runPairPhase(r, sc, queries, b, workDir, filepath.Join(outDir, name)); err != nil {
			return err
		}
		return r.finish(outDir, name)
	}
	base := filepath.Join(outDir, name)

	targetAddrs, err := addrs(sc.Targets)
	if err != nil {
		return err
	}
	promYAML := filepath.Join(workDir, "prometheus.yml")
	if err := writePrometheusYAML(promYAML, sc, targetAddrs, "a"); err != nil {
		return err
	}
	stock, prom, err := stockSetup(b, workDir, promYAML)
	if err != nil {
		return err
	}
	mon, err := monstackdSetup(b, workDir, promYAML)
	if err != nil {
		return err
	}
	defer stopSetups(mon, stock)
	log.Printf("starting the stock set and monstackd (%d series, %d targets, every %s)", sc.Series, sc.Targets, sc.ScrapeInterval)
	if err := stock.start(); err != nil {
		return err
	}
	if err := mon.start(); err != nil {
		return err
	}

	target, t0, err := startWorkload(sc, b, workDir, targetAddrs, stock.metrics, mon.metrics)
	if err != nil {
		return err
	}
	defer target.kill(syscall.SIGTERM, 10*time.Second)

	// Ingest phase.
	log.Printf("warm-up %s", sc.Warmup)
	time.Sleep(time.Until(t0.Add(sc.Warmup)))
	rss := func(when string) error {
		st, pr, mo, err := sampleMemory(sc, stock, prom, mon)
		r.Figures = append(r.Figures, pair("resident memory "+when, "MiB", st.rss, pr.rss, mo.rss, 0.6, 1.25)...)
		// Its parts, to tell heap from the binary's pages; no targets.
		r.Figures = append(r.Figures, pair("anonymous memory "+when, "MiB", st.anon, pr.anon, mo.anon, 0, 0)...)
		r.Figures = append(r.Figures, pair("file-backed memory "+when, "MiB", st.file, pr.file, mo.file, 0, 0)...)
		return err
	}
	if err := rss("after warm-up"); err != nil {
		return err
	}

	log.Printf("measuring CPU over %s in %d windows", sc.Measure, sc.MeasureWindows)
	cpuStock, cpuProm, cpuMon, err := measureCPU(sc, stock, prom, mon)
	if err != nil {
		return err
	}
	r.Figures = append(r.Figures, pair("CPU per million ingested samples", "s", cpuStock, cpuProm, cpuMon, 0, 1.15)...)

	// Query phase.
	profDone := make(chan []string, 1)
	go func() { profDone <- profile(mon, base, sc.ProfileSeconds) }()
	lat, err := measureQueries(sc, queries, stock, prom, mon)
	if err != nil {
		return err
	}
	r.Profiles = <-profDone
	for _, q := range queries {
		l := lat[q.Name]
		r.Figures = append(r.Figures,
			newFigure("query "+q.Name, "ms", "stock Thanos path", l["stock"], l["monstackd"], 0.35),
			newFigure("query "+q.Name, "ms", "Prometheus direct", l["prometheus"], l["monstackd"], 1.5))
	}
	// Sampled before the comparison, which queries the stock set and
	// monstackd again but not Prometheus: every setup has just run the same
	// queries, and its heap holds what they left.
	if err := rss("at the end"); err != nil {
		return err
	}
	compareResults(r, sc, queries, stock, mon, t0, 0, "")

	// Kill phase.
	log.Printf("SIGKILL and restart, %d times each", sc.KillRepetitions)
	readyProm, readyMon, err := measureRestart(sc, prom, mon.tsdb)
	if err != nil {
		return err
	}
	r.Figures = append(r.Figures, newFigure("time to ready after SIGKILL", "s", "Prometheus alone", readyProm, readyMon, 1.1))

	// Bucket phase, on a quiet machine: the ingest setups and the target
	// stop first (the deferred kills find them gone).
	log.Print("stopping the ingest setups for the bucket phase")
	target.kill(syscall.SIGTERM, 10*time.Second)
	stopSetups(mon, stock)
	if err := runBucketPhase(r, sc, queries, dashboard, b, workDir, base); err != nil {
		return err
	}
	if err := runCompactPhase(r, sc, b, workDir); err != nil {
		return err
	}

	// Pair phase, last: its own target and processes (the bucket phase's
	// are stopped when it returns).
	if err := runPairPhase(r, sc, queries, b, workDir, base); err != nil {
		return err
	}
	return r.finish(outDir, name)
}

// finish writes and prints the report; any result mismatch fails the run.
func (r *report) finish(outDir, name string) error {
	md, err := r.write(outDir, name)
	if err != nil {
		return err
	}
	log.Printf("report: %s", md)
	fmt.Print(r.markdown())
	if len(r.Mismatches) > 0 {
		return fmt.Errorf("%d query results differ between the setups", len(r.Mismatches))
	}
	if len(r.Failures) > 0 {
		return fmt.Errorf("%d failures: %s", len(r.Failures), strings.Join(r.Failures, "; "))
	}
	return nil
}

// stopSetups ends every process of the setups, the last started first.
func stopSetups(setups ...*setup) {
	for _, s := range setups {
		for i := len(s.procs) - 1; i >= 0; i-- {
			if err := s.procs[i].kill(syscall.SIGTERM, 30*time.Second); err != nil {
				log.Print(err)
			}
		}
	}
}

func versions(b bins) []string {
	var out []string
	for _, c := range []struct{ name, bin string }{{"monstackd", b.monstackd}, {"prometheus", b.prometheus}, {"thanos", b.thanos}} {
		o, err := execOutput(c.bin, "--version")
		if err != nil {
			o, _ = execOutput(c.bin, "version")
		}
		line := strings.SplitN(strings.TrimSpace(o), "\n", 2)[0]
		out = append(out, line)
	}
	return out
}

// startWorkload starts the bench target on targets and releases its
// workload once every scraper (by its /metrics URL) scrapes it. It returns
// the target and t0, the first tick every scraper has complete.
//
// The target holds its workload until all scrapers scrape it, then serves
// from a tick one interval ahead: all store the same ticks from the first on.
func startWorkload(sc scale, b bins, dir string, targets []string, scrapers ...string) (*proc, time.Time, error) {
	target := &proc{name: "bench-target", bin: b.target, logFile: filepath.Join(dir, "target.log"),
		readyURL: "http://" + targets[0] + "/-/healthy",
		args: []string{"--listen=" + strings.Join(targets, ","), fmt.Sprintf("--series=%d", sc.Series), "--interval=" + sc.ScrapeInterval.String(),
			"--held",
			// The scrapers scrape at different offsets within a tick
			// (their label hashes differ); tick timestamps make their
			// samples identical.
			"--timestamps"}}
	if err := target.start(); err != nil {
		return nil, time.Time{}, err
	}
	fail := func(err error) (*proc, time.Time, error) {
		target.kill(syscall.SIGTERM, 10*time.Second)
		return nil, time.Time{}, err
	}
	if _, err := target.waitReady(time.Now(), time.Minute); err != nil {
		return fail(err)
	}
	if err := allScraping(sc, targets, scrapers...); err != nil {
		return fail(err)
	}
	startTick := time.Now().UnixMilli()/sc.ScrapeInterval.Milliseconds() + 1
	resp, err := http.Post(fmt.Sprintf("http://%s/-/start?tick=%d", targets[0], startTick), "", nil)
	if err != nil {
		return fail(fmt.Errorf("release the workload: %w", err))
	}
	resp.Body.Close()
	// All have every tick from startTick on; the first is complete one
	// interval later.
	return target, time.UnixMilli((startTick + 1) * sc.ScrapeInterval.Milliseconds()), nil
}

// allScraping waits until every scraper (by its /metrics URL) scrapes every
// target (failing: the workload is held), i.e. until each has an up sample
// per target.
func allScraping(sc scale, targets []string, scrapers ...string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		ok := true
		for _, m := range scrapers {
			v, err := metricSum(m, "prometheus_target_scrape_pool_targets")
			if err != nil || int(v) < len(targets) {
				ok = false
			}
		}
		if ok {
			// A full interval more: every target's loop has run once.
			time.Sleep(sc.ScrapeInterval)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("setups did not start scraping within 5m")
}

const mib = 1 << 20

// memSamples are repeated readings of one side's resident memory, in MiB.
type memSamples struct{ rss, anon, file []float64 }

func (s *memSamples) add(m memory) {
	s.rss, s.anon, s.file = append(s.rss, m.rss/mib), append(s.anon, m.anon/mib), append(s.file, m.file/mib)
}

// sampleMemory reads the stock set (summed), Prometheus alone and monstackd.
func sampleMemory(sc scale, stock *setup, prom *proc, mon *setup) (st, pr, mo memSamples, err error) {
	for i := 0; i < sc.RSSSamples; i++ {
		if i > 0 {
			time.Sleep(2 * time.Second)
		}
		var sum memory
		for _, pid := range stock.pids() {
			m, err := readMemory(pid)
			if err != nil {
				return st, pr, mo, err
			}
			sum = sum.add(m)
		}
		p, err := readMemory(prom.pid())
		if err != nil {
			return st, pr, mo, err
		}
		m, err := readMemory(mon.tsdb.pid())
		if err != nil {
			return st, pr, mo, err
		}
		st.add(sum)
		pr.add(p)
		mo.add(m)
	}
	return st, pr, mo, nil
}

type cpuReading struct{ stock, prom, mon, stockSamples, monSamples float64 }

func readCPU(stock *setup, prom *proc, mon *setup) (cpuReading, error) {
	var c cpuReading
	for _, pid := range stock.pids() {
		v, err := cpuSeconds(pid)
		if err != nil {
			return c, err
		}
		c.stock += v
	}
	var err error
	if c.prom, err = cpuSeconds(prom.pid()); err != nil {
		return c, err
	}
	if c.mon, err = cpuSeconds(mon.tsdb.pid()); err != nil {
		return c, err
	}
	if c.stockSamples, err = metricSum(stock.metrics, "prometheus_tsdb_head_samples_appended_total"); err != nil {
		return c, err
	}
	c.monSamples, err = metricSum(mon.metrics, "prometheus_tsdb_head_samples_appended_total")
	return c, err
}

// measureCPU returns CPU seconds per million ingested samples per window.
func measureCPU(sc scale, stock *setup, prom *proc, mon *setup) (st, pr, mo []float64, err error) {
	window := sc.Measure / time.Duration(sc.MeasureWindows)
	prev, err := readCPU(stock, prom, mon)
	if err != nil {
		return nil, nil, nil, err
	}
	for i := 0; i < sc.MeasureWindows; i++ {
		time.Sleep(window)
		cur, err := readCPU(stock, prom, mon)
		if err != nil {
			return nil, nil, nil, err
		}
		ms, mm := (cur.stockSamples-prev.stockSamples)/1e6, (cur.monSamples-prev.monSamples)/1e6
		if ms <= 0 || mm <= 0 {
			return nil, nil, nil, fmt.Errorf("no samples ingested in CPU window %d", i)
		}
		st = append(st, (cur.stock-prev.stock)/ms)
		pr = append(pr, (cur.prom-prev.prom)/ms)
		mo = append(mo, (cur.mon-prev.mon)/mm)
		prev = cur
	}
	return st, pr, mo, nil
}

// endpoint is a query API under test.
type endpoint struct{ name, base string }

// measureQueries runs every query against the three endpoints, interleaved,
// and returns latencies in ms by query name and endpoint.
func measureQueries(sc scale, queries []querySpec, stock *setup, prom *proc, mon *setup) (map[string]map[string][]float64, error) {
	return measureEndpoints(sc, queries, []endpoint{
		{"stock", stock.api},
		{"monstackd", mon.api},
		{"prometheus", strings.TrimSuffix(prom.readyURL, "/-/ready")},
	})
}

// measureEndpoints runs every query against every endpoint, interleaved,
// each repetition evaluated at the time it starts, and returns latencies in
// ms by query name and endpoint name.
func measureEndpoints(sc scale, queries []querySpec, endpoints []endpoint) (map[string]map[string][]float64, error) {
	out := map[string]map[string][]float64{}
	log.Printf("queries: %d × %d repetitions × %d endpoints", len(queries), sc.QueryRepetitions, len(endpoints))
	for rep := 0; rep < sc.QueryRepetitions; rep++ {
		for _, q := range queries {
			if out[q.Name] == nil {
				out[q.Name] = map[string][]float64{}
			}
			at := time.Now()
			for i := range endpoints {
				// Rotate who goes first so no endpoint always gets a warm cache.
				e := endpoints[(i+rep)%len(endpoints)]
				took, _, err := q.run(e.base, at)
				if err != nil {
					return nil, fmt.Errorf("%s on %s: %w", q.Name, e.name, err)
				}
				out[q.Name][e.name] = append(out[q.Name][e.name], float64(took.Microseconds())/1000)
			}
		}
	}
	return out, nil
}

// compareResults compares each query's result between the stock set and
// monstackd at the same evaluation time, lag before now, where both have the
// data it reads. Mismatches are named with prefix.
func compareResults(r *report, sc scale, queries []querySpec, stock, mon *setup, t0 time.Time, lag time.Duration, prefix string) {
	for _, q := range queries {
		at := time.Now().Add(-lag)
		// A range longer than the common data is compared over its end.
		if avail := at.Sub(t0) - q.window - sc.ScrapeInterval; q.Type == "range" && avail < q.rng && avail >= 2*q.step {
			q.rng = avail.Truncate(q.step)
		}
		if span := q.span(sc.ScrapeInterval); at.Add(-span).Before(t0) {
			r.Skipped = append(r.Skipped, fmt.Sprintf("%s%s (reads %s before its evaluation; the setups have %s of common data)", prefix, q.Name, span, at.Sub(t0).Truncate(time.Second)))
			continue
		}
		r.Compared++
		// A scrape tick can fall between the two setups' scrapes of it:
		// retry at earlier times before calling it a mismatch. Label values
		// and series come from the head's index whatever the time range, so
		// for them the retry waits instead, for both to ingest the tick.
		var last string
		for attempt := 0; attempt < 3; attempt++ {
			t := at.Add(-time.Duration(attempt) * sc.ScrapeInterval / 2)
			if q.Type == "label_values" || q.Type == "series" {
				if attempt > 0 {
					time.Sleep(sc.ScrapeInterval / 2)
				}
				t = time.Now()
			}
			if last = compareAt(q, stock, mon, t); last == "" {
				break
			}
		}
		if last != "" {
			r.Mismatches = append(r.Mismatches, fmt.Sprintf("%s%s: %s", prefix, q.Name, last))
		}
	}
}

func compareAt(q querySpec, stock, mon *setup, at time.Time) string {
	return compareBy(querySpec.run, q, stock, mon, at)
}

// compareBy is compareAt asking with run.
func compareBy(run func(querySpec, string, time.Time) (time.Duration, json.RawMessage, error), q querySpec, stock, mon *setup, at time.Time) string {
	var res [2]result
	for i, s := range []*setup{stock, mon} {
		_, data, err := run(q, s.api, at)
		if err != nil {
			return fmt.Sprintf("%s: %v", s.name, err)
		}
		if res[i], err = parseResult(q, data); err != nil {
			return fmt.Sprintf("%s: %v", s.name, err)
		}
	}
	if len(res[0].series) == 0 && len(res[0].values) == 0 {
		return "empty result in the stock set"
	}
	return diff(res[0], res[1])
}

// profile saves monstackd's CPU profile over the query phase and a heap profile.
func profile(mon *setup, base string, seconds int) []string {
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		log.Printf("profile: %v", err)
		return nil
	}
	var saved []string
	for _, p := range []struct{ path, file string }{
		{fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), base + "-monstackd-cpu.pprof"},
		{"/debug/pprof/heap", base + "-monstackd-heap.pprof"},
	} {
		if err := download(mon.api+p.path, p.file); err != nil {
			log.Printf("profile %s: %v", p.path, err)
			continue
		}
		saved = append(saved, filepath.Base(p.file))
	}
	return saved
}

func download(u, file string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.ReadFrom(resp.Body)
	return err
}

// measureRestart SIGKILLs Prometheus and monstackd in turn (never both at
// once, so neither replays with the other's CPU load) and times the restart
// until /-/ready answers 200.
func measureRestart(sc scale, prom, mon *proc) (pr, mo []float64, err error) {
	for i := 0; i < sc.KillRepetitions; i++ {
		order := []*proc{prom, mon}
		if i%2 == 1 {
			order = []*proc{mon, prom}
		}
		for _, p := range order {
			if err := p.kill(syscall.SIGKILL, 30*time.Second); err != nil {
				return nil, nil, err
			}
			start := time.Now()
			if err := p.start(); err != nil {
				return nil, nil, err
			}
			took, err := p.waitReady(start, 15*time.Minute)
			if err != nil {
				return nil, nil, err
			}
			if p == prom {
				pr = append(pr, took.Seconds())
			} else {
				mo = append(mo, took.Seconds())
			}
		}
	}
	return pr, mo, nil
}
