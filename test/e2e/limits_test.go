package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// heavyQuery is the Grafana query that took 4 GB on /api/v1/query: a 1ms
// subquery over every series of the last 10 minutes.
const heavyQuery = `count(count_over_time(label_replace({__name__=~".+"}, "n", "$1", "__name__", "(.+)")[10m:1ms]))`

// startLimitedDaemon runs monstackd scraping itself every second with the
// query section given.
func startLimitedDaemon(t *testing.T, query string, env []string) *daemon {
	t.Helper()
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	writeFile(t, filepath.Join(dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\nquery:\n"+query)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(
		"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: [%q]\n", httpAddr))
	d := startDaemonAt(t, httpAddr, filepath.Join(dir, "data"), env, "--config.file="+filepath.Join(dir, "monstack.yml"))
	eventually(t, 60*time.Second, "20 self-scrapes", func() error {
		v, err := d.scalarOf(`count_over_time(up{job="self"}[1m])`, time.Time{})
		if err != nil {
			return err
		}
		if v < 20 {
			return fmt.Errorf("%v scrapes", v)
		}
		return nil
	})
	return d
}

// post sends a form to the API and returns status, decoded error and duration.
func post(t *testing.T, d *daemon, path string, form url.Values) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.PostForm(d.url(path), form)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var r apiResponse
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r.Error, time.Since(start)
}

// assertNoScrapeGap checks that the self-scrape has a sample every second
// over the last window: ingestion went on through whatever the test did.
func assertNoScrapeGap(t *testing.T, d *daemon, since time.Time) {
	t.Helper()
	window := time.Since(since).Round(time.Second) + time.Second
	data, err := d.api("/prometheus/api/v1/query", url.Values{"query": {fmt.Sprintf(`up{job="self"}[%ds]`, int(window.Seconds()))}})
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Result []sample `json:"result"`
	}
	if err := json.Unmarshal(data, &m); err != nil || len(m.Result) != 1 {
		t.Fatalf("up{job=self} over %s: %v %s", window, err, data)
	}
	var prev float64
	for i, v := range m.Result[0].Values {
		ts := v[0].(float64)
		if v[1] != "1" {
			t.Errorf("up{job=self} = %v at %v", v[1], ts)
		}
		if i > 0 && ts-prev > 2.5 {
			t.Errorf("scrape gap of %.1fs before %v", ts-prev, ts)
		}
		prev = ts
	}
	if last := float64(time.Now().UnixMilli()) / 1000; last-prev > 3 {
		t.Errorf("last self-scrape %.1fs ago", last-prev)
	}
}

// max_samples reaches the engines behind /api/v1 (both of them), not only
// Prometheus' own API; the heavy query is refused within the timeout.
func TestQueryLimitsOnEveryPath(t *testing.T) {
	d := startLimitedDaemon(t, "  max_samples: 1000000\n  timeout: 20s\n", nil)
	since := time.Now()
	for _, tc := range []struct{ path, engine string }{
		{"/api/v1/query", "prometheus"}, {"/api/v1/query", "thanos"}, {"/prometheus/api/v1/query", ""},
	} {
		form := url.Values{"query": {heavyQuery}}
		if tc.engine != "" {
			form.Set("engine", tc.engine)
		}
		code, msg, took := post(t, d, tc.path, form)
		if code != 422 || !strings.Contains(msg, "too many samples") || took > 20*time.Second {
			t.Errorf("%s engine=%s: %d %q after %s, want 422 too many samples within the timeout", tc.path, tc.engine, code, msg, took)
		}
	}

	// Expressions over query.max_query_length and bodies over
	// query.max_request_body are refused before parsing, at once, also
	// when eight arrive together.
	long := strings.Repeat("up+", 120_000) + "up" // 360 KB
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, msg, took := post(t, d, "/api/v1/query", url.Values{"query": {long}})
			if code != 400 || !strings.Contains(msg, "query.max_query_length") || took > 2*time.Second {
				t.Errorf("360 KB expression: %d %q after %s, want 400 naming query.max_query_length at once", code, msg, took)
			}
		}()
	}
	wg.Wait()
	code, msg, _ := post(t, d, "/api/v1/series", url.Values{"match[]": {strings.Repeat("up+", 15_000) + "up"}})
	if code != 400 || !strings.Contains(msg, "match[]") {
		t.Errorf("long match[]: %d %q, want 400", code, msg)
	}
	code, msg, _ = post(t, d, "/api/v1/query", url.Values{"query": {"up"}, "x": {strings.Repeat("a", 2<<20)}})
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "query.max_request_body") {
		t.Errorf("2 MB body: %d %q, want 413 naming query.max_request_body", code, msg)
	}
	if code, msg, _ := post(t, d, "/api/v1/query", url.Values{"query": {"up"}}); code != 200 {
		t.Errorf("a small query after all that: %d %q", code, msg)
	}
	assertNoScrapeGap(t, d, since)
}

// With no sample limit to stop it, a query that would take the memory is
// cancelled with 503 before the heap reaches GOMEMLIMIT; the process and
// its scraping survive, and new queries are admitted again afterwards.
func TestMemoryGuardCancelsQueries(t *testing.T) {
	d := startLimitedDaemon(t, "  max_samples: 1000000000\n  timeout: 60s\n  shed_memory_ratio: 0.5\n  cancel_memory_ratio: 0.6\n",
		[]string{"GOMEMLIMIT=400MiB"})
	since := time.Now()
	code, msg, took := post(t, d, "/api/v1/query", url.Values{"query": {heavyQuery}, "engine": {"thanos"}})
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "query memory limit") {
		t.Fatalf("heavy query: %d %q after %s, want 503 naming the query memory limit", code, msg, took)
	}
	if !d.alive() {
		t.Fatal("monstackd died")
	}
	if rss := vmRSS(t, d.cmd.Process.Pid); rss > 1<<30 {
		t.Errorf("VmRSS %d MiB after the cancelled query", rss>>20)
	}
	eventually(t, 30*time.Second, "queries admitted again", func() error {
		code, msg, _ := post(t, d, "/api/v1/query", url.Values{"query": {"up"}})
		if code != 200 {
			return fmt.Errorf("%d %s", code, msg)
		}
		return nil
	})
	if v, err := d.metric("monstackd_query_memory_cancelled_total"); err != nil || v < 1 {
		t.Errorf("monstackd_query_memory_cancelled_total = %v, %v", v, err)
	}
	assertNoScrapeGap(t, d, since)
}

func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
