package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// runawaySeries is what the runaway target exposes per scrape: ~130 MB of
// text, each scrape a fresh set of series, as a cardinality bug would.
const runawaySeries = 2_000_000

// maxRSS is the bound on monstackd's resident memory while the runaway
// target is scraped; unlimited, it passes it within seconds.
const maxRSS = 1500 << 20

// serveRunaway streams an exposition of runawaySeries new series per scrape.
func serveRunaway(scrapes *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		bw := bufio.NewWriterSize(w, 1<<16)
		line := make([]byte, 0, 128)
		bw.WriteString("# TYPE runaway_series gauge\n")
		for i := range runawaySeries {
			line = append(line[:0], `runaway_series{scrape="`...)
			line = strconv.AppendInt(line, n, 10)
			line = append(line, `",id="`...)
			line = strconv.AppendInt(line, int64(i), 10)
			line = append(line, `",pad="aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"} 1`+"\n"...)
			if _, err := bw.Write(line); err != nil {
				return // the scraper hung up: body_size_limit
			}
		}
		bw.Flush()
	}
}

// rss reads VmRSS of pid in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// One target serving millions of series does not take the daemon's memory
// or its other scrapes with it, and a reload dropping it is quick: the
// default scrape limits (pkg/config) fail its scrapes early.
func TestRunawayTargetIsLimited(t *testing.T) {
	var scrapes atomic.Int64
	runaway := httptest.NewServer(serveRunaway(&scrapes))
	defer runaway.Close()

	dir := t.TempDir()
	httpAddr := freeAddr(t)
	promFile := filepath.Join(dir, "prometheus.yml")
	prom := func(withRunaway bool) string {
		s := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs: [{targets: [%q]}]\n", httpAddr)
		if withRunaway {
			s += fmt.Sprintf("  - job_name: runaway\n    scrape_interval: 2s\n    scrape_timeout: 2s\n    static_configs: [{targets: [%q]}]\n", strings.TrimPrefix(runaway.URL, "http://"))
		}
		return s
	}
	writeFile(t, promFile, prom(true))
	writeFile(t, filepath.Join(dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\n")
	d := &daemon{http: httpAddr, grpc: freeAddr(t), dataDir: filepath.Join(dir, "data")}
	d.process = startProcess(t, "monstackd", binPath(t, "MONSTACKD_BIN"), nil,
		"--http.address="+d.http, "--grpc.address="+d.grpc, "--data.dir="+d.dataDir,
		"--config.file="+filepath.Join(dir, "monstack.yml"))

	// Watch the memory from the start; past the bound, stop at once.
	pid := d.cmd.Process.Pid
	var peak atomic.Int64
	over := make(chan int64, 1)
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(100 * time.Millisecond):
			}
			v, err := rss(pid)
			if err != nil {
				return
			}
			if v > peak.Load() {
				peak.Store(v)
			}
			if v > maxRSS {
				_ = d.cmd.Process.Kill()
				over <- v
				return
			}
		}
	}()
	checkRSS := func() {
		t.Helper()
		select {
		case v := <-over:
			t.Fatalf("monstackd RSS %d MiB > %d MiB: killed", v>>20, maxRSS>>20)
		default:
		}
	}
	defer func() { t.Logf("peak RSS %d MiB over %d runaway scrapes", peak.Load()>>20, scrapes.Load()) }()

	waitHTTP200(t, d.url("/-/ready"), 60*time.Second)
	var limitMetric string
	eventually(t, 30*time.Second, "a runaway scrape over a limit", func() error {
		checkRSS()
		for _, m := range []string{"prometheus_target_scrapes_exceeded_body_size_limit_total", "prometheus_target_scrapes_exceeded_sample_limit_total"} {
			if v, err := d.metric(m); err == nil && v > 0 {
				limitMetric = m
				return nil
			}
		}
		return fmt.Errorf("no scrape exceeded a limit yet (%d runaway scrapes)", scrapes.Load())
	})
	t.Logf("limit hit: %s", limitMetric)

	// Scrape on for a window, then check that the self-scrape kept its pace.
	const window = 20
	start := time.Now()
	for time.Since(start) < window*time.Second {
		checkRSS()
		time.Sleep(250 * time.Millisecond)
	}
	checkRSS()
	if v, err := d.scalarOf(`up{job="runaway"}`, time.Time{}); err != nil || v != 0 {
		t.Errorf(`up{job="runaway"} = %v (%v), want 0`, v, err)
	}
	q := fmt.Sprintf(`count_over_time(up{job="self"}[%ds])`, window)
	if v, err := d.scalarOf(q, time.Time{}); err != nil || v < window-1 || v > window+1 {
		t.Errorf("%s = %v (%v), want %d±1: the self-scrape has gaps", q, v, err, window)
	}
	if v, err := d.scalarOf(`sum(scrape_samples_scraped{job="runaway"})`, time.Time{}); err != nil || v != 0 {
		t.Errorf(`scrape_samples_scraped{job="runaway"} = %v (%v), want 0: nothing of a failed scrape is kept`, v, err)
	}
	if v, err := d.scalarOf(`max_over_time(prometheus_tsdb_head_series[1m])`, time.Time{}); err != nil || v > 50_000 {
		t.Errorf("head series %v (%v): runaway series were ingested", v, err)
	}

	// Prometheus' API shows the effective limits.
	data, err := d.api("/api/v1/status/config", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"body_size_limit: 50MiB", "sample_limit: 200000", "label_limit: 64"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("/api/v1/status/config lacks %q: %s", want, data)
		}
	}

	// A reload dropping the runaway job completes quickly.
	var before float64
	before, err = d.metric("prometheus_config_last_reload_success_timestamp_seconds")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, promFile, prom(false))
	time.Sleep(time.Second) // the timestamp has second resolution
	reloadStart := time.Now()
	d.signal(t, syscall.SIGHUP)
	eventually(t, 10*time.Second, "the reload dropping the runaway job", func() error {
		checkRSS()
		if v, err := d.metric("prometheus_config_last_reload_success_timestamp_seconds"); err != nil || v <= before {
			return fmt.Errorf("last reload success at %v (%v), before %v", v, err, before)
		}
		return nil
	})
	t.Logf("reload took %s", time.Since(reloadStart))
	if v, err := d.metric("prometheus_config_last_reload_successful"); err != nil || v != 1 {
		t.Errorf("prometheus_config_last_reload_successful = %v, %v; want 1", v, err)
	}
	n := scrapes.Load()
	time.Sleep(3 * time.Second)
	if m := scrapes.Load(); m > n+1 {
		t.Errorf("runaway target still scraped after the reload: %d -> %d", n, m)
	}
	if !d.alive() {
		t.Fatal("monstackd exited")
	}
}
