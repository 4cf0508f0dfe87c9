package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// frontendCalls is how many requests of op the query-frontend passed to the
// in-process querier.
func frontendCalls(t *testing.T, d *daemon, op string) float64 {
	t.Helper()
	v, err := d.metric(`monstackd_query_frontend_downstream_requests_total{op="` + op + `"}`)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// rangeAnswer is a range query's answer: body and parsed result.
type rangeAnswer struct {
	body     string
	header   http.Header
	result   []sample
	warnings []string
}

// ask sends a query API request as GET (params in the URL) or as a
// Grafana-style POST (form body, Grafana's headers); it must succeed.
func ask(t *testing.T, d *daemon, method, path string, params url.Values) rangeAnswer {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodPost {
		req, err = http.NewRequest(method, d.url(path), strings.NewReader(params.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Dashboard-Uid", "e2e-dashboard")
			req.Header.Set("X-Panel-Id", "2")
			req.Header.Set("X-Grafana-Org-Id", "1")
		}
	} else {
		req, err = http.NewRequest(method, d.url(path)+"?"+params.Encode(), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("%s %s?%s: status %d: %.400s", method, path, params.Encode(), resp.StatusCode, body)
	}
	out := rangeAnswer{body: string(body), header: resp.Header, warnings: r.Warnings}
	var m struct {
		Result []sample `json:"result"`
	}
	if json.Unmarshal(r.Data, &m) == nil {
		out.result = m.Result
	}
	return out
}

// points are a range answer's single series as (time, value) pairs.
func points(t *testing.T, a rangeAnswer) [][]any {
	t.Helper()
	if len(a.result) != 1 {
		t.Fatalf("%d series, want 1: %.400s", len(a.result), a.body)
	}
	return a.result[0].Values
}

// TestFrontend runs range, labels and series requests through the
// in-process query-frontend of the real binary: split per day, answered
// again from the results cache, a cache that keeps dedup and lookback_delta
// apart, promtool and a Grafana-style POST through it, and its metrics.
func TestFrontend(t *testing.T) {
	// History in the TSDB, in the past by more than the max freshness:
	// a 2h block on each of three days, so that every per-day split reads
	// data (the last day boundary at least 5h ago keeps them in the past),
	// and one that ends 10 minutes ago, for the cache's tests.
	day := time.Now().Add(-5 * time.Hour).Truncate(24 * time.Hour)
	recentBlock := time.Now().Add(-130 * time.Minute).Truncate(time.Minute)
	dir := t.TempDir()
	tsdbDir := mkdir(t, dir, "data", "tsdb")
	for i := 2; i >= 0; i-- {
		writeSameBlock(t, tsdbDir, day.Add(-time.Duration(i)*24*time.Hour))
	}
	writeSameBlock(t, tsdbDir, recentBlock)
	// Answers older than 1s are cached: the tests need not wait out the
	// default minute.
	writeFile(t, filepath.Join(dir, "monstack.yml"), `query_frontend:
  query_stats: true
  query_range: {results_cache: {max_freshness: 1s}}
  labels: {results_cache: {max_freshness: 1s}}
`)
	d := startDaemon(t, filepath.Join(dir, "data"), nil, "--role=replica-a", "--config.file="+filepath.Join(dir, "monstack.yml"))

	threeDays := func() url.Values {
		end := time.Now().Add(-10 * time.Second).Truncate(5 * time.Minute)
		if last := day.Add(24*time.Hour - 5*time.Minute); end.After(last) {
			end = last
		}
		return url.Values{
			"query": {`sum(e2e_history)`}, "step": {"300"}, "max_source_resolution": {"0s"},
			"start": {promTS(day.Add(-48 * time.Hour))}, "end": {promTS(end)},
		}
	}
	params := threeDays()
	var first rangeAnswer
	t.Run("a 3-day range query is split into per-day calls", func(t *testing.T) {
		before := frontendCalls(t, d, "query_range")
		first = ask(t, d, http.MethodGet, "/api/v1/query_range", params)
		if n := frontendCalls(t, d, "query_range") - before; n != 3 {
			t.Errorf("%v downstream calls for %s to %s, want 3, one per day", n, params.Get("start"), params.Get("end"))
		}
		// The merged answer is Prometheus' own over the same TSDB.
		direct := ask(t, d, http.MethodGet, "/prometheus/api/v1/query_range", params)
		// 25 points a day: 24 steps in the block, one in the lookback after.
		got, want := points(t, first), points(t, direct)
		if len(got) < 3*25 || !reflect.DeepEqual(got, want) {
			t.Errorf("through the frontend %d points, Prometheus %d (want 75 at least, the same):\n%v\n%v", len(got), len(want), got, want)
		}
	})

	t.Run("a repeated query is answered from the cache", func(t *testing.T) {
		before := frontendCalls(t, d, "query_range")
		again := ask(t, d, http.MethodGet, "/api/v1/query_range", params)
		if n := frontendCalls(t, d, "query_range") - before; n != 0 {
			t.Errorf("%v downstream calls, want 0", n)
		}
		if !reflect.DeepEqual(again.result, first.result) {
			t.Errorf("cached answer differs:\n%s\n%s", first.body, again.body)
		}
		// Answered whole by the results cache, the answer is kept and
		// written as it was the next time.
		hits := func() float64 {
			v, err := d.metric(`monstackd_query_frontend_answer_cache_requests_total{result="hit"}`)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		before = hits()
		third := ask(t, d, http.MethodGet, "/api/v1/query_range", params)
		if n := hits() - before; n != 1 || third.body != again.body {
			t.Errorf("third time: %v answers written as kept (want 1), same body %v", n, third.body == again.body)
		}
	})

	// window k is a 5m range of one series in the recent block, at 10s
	// steps: 31 points. Each test asks its own windows, so that none is
	// answered from another's cache entry by accident.
	window := func(k int, extra ...string) url.Values {
		start := recentBlock.Add(time.Duration(10+10*k) * time.Minute)
		v := url.Values{
			"query": {`e2e_history{i="0"}`}, "step": {"10"},
			"start": {promTS(start)}, "end": {promTS(start.Add(5 * time.Minute))},
		}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	t.Run("dedup=false and dedup=true are not answered from each other's cache", func(t *testing.T) {
		for i, order := range [][2]string{{"true", "false"}, {"false", "true"}} {
			answers := map[string]rangeAnswer{}
			for _, dedup := range order {
				answers[dedup] = ask(t, d, http.MethodGet, "/api/v1/query_range", window(i, "dedup", dedup))
			}
			if r := answers["true"].result; len(r) != 1 || r[0].Metric["replica"] != "" {
				t.Errorf("dedup=true after dedup=%s: %v, want one series without the replica label", order[0], r)
			}
			if r := answers["false"].result; len(r) != 1 || r[0].Metric["replica"] != "a" {
				t.Errorf("dedup=false after dedup=%s: %v, want the series with replica=\"a\"", order[0], r)
			}
			// dedup=true is cached under its own key.
			before := frontendCalls(t, d, "query_range")
			if again := ask(t, d, http.MethodGet, "/api/v1/query_range", window(i, "dedup", "true")); !reflect.DeepEqual(again.result, answers["true"].result) {
				t.Errorf("dedup=true again: %s, want %s", again.body, answers["true"].body)
			}
			if n := frontendCalls(t, d, "query_range") - before; n != 0 {
				t.Errorf("dedup=true again: %v downstream calls, want 0", n)
			}
		}
	})

	t.Run("lookback_delta is part of the cache key", func(t *testing.T) {
		// Steps every 10s, samples every 15s: a 1ms lookback finds a sample
		// at every third step, the default 5m one at every step.
		for i, order := range [][2]string{{"", "1ms"}, {"1ms", ""}} {
			answers := map[string]rangeAnswer{}
			for _, lb := range order {
				p := window(2 + i)
				if lb != "" {
					p.Set("lookback_delta", lb)
				}
				answers[lb] = ask(t, d, http.MethodGet, "/api/v1/query_range", p)
			}
			full, short := len(points(t, answers[""])), len(points(t, answers["1ms"]))
			if full != 31 || short > 11 {
				t.Errorf("order %q: %d points with the default lookback (want 31), %d with 1ms (want 11 at most): an answer came from the other's cache entry", order, full, short)
			}
		}
	})

	t.Run("promtool query range", func(t *testing.T) {
		p := window(4)
		before := frontendCalls(t, d, "query_range")
		out, err := exec.Command(binPath(t, "PROMTOOL_BIN"), "query", "range",
			"--start="+p.Get("start"), "--end="+p.Get("end"), "--step=10s", d.url(""), p.Get("query")).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool query range: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), `e2e_history{i="0"`) || strings.Count(string(out), " @[") != 31 {
			t.Fatalf("promtool output %q: want e2e_history{i=\"0\"} at 31 steps", out)
		}
		if n := frontendCalls(t, d, "query_range") - before; n != 1 {
			t.Errorf("%v downstream calls, want 1: not through the frontend", n)
		}
	})

	t.Run("a Grafana-style POST query_range", func(t *testing.T) {
		before := frontendCalls(t, d, "query_range")
		a := ask(t, d, http.MethodPost, "/api/v1/query_range", window(5))
		if len(points(t, a)) != 31 {
			t.Errorf("%d points, want 31", len(points(t, a)))
		}
		if n := frontendCalls(t, d, "query_range") - before; n != 1 {
			t.Errorf("%v downstream calls, want 1: not through the frontend", n)
		}
		if st := a.header.Get("Server-Timing"); !strings.Contains(st, "response_time;dur=") {
			t.Errorf("Server-Timing %q: want the frontend's query stats (query_stats: true)", st)
		}
	})

	t.Run("labels, label values and series through the frontend, cached", func(t *testing.T) {
		p := url.Values{"start": {promTS(day.Add(-48 * time.Hour))}, "end": {promTS(time.Now().Add(-10 * time.Second))}}
		sp := url.Values{"match[]": {"e2e_history"}, "start": p["start"], "end": p["end"]}
		for _, c := range []struct {
			op, path string
			params   url.Values
			want     string
		}{
			{"label_names", "/api/v1/labels", p, `"i"`},
			{"label_values", "/api/v1/label/i/values", p, `"19"`},
			{"series", "/api/v1/series", sp, `"i":"19"`},
		} {
			before := frontendCalls(t, d, c.op)
			a := ask(t, d, http.MethodGet, c.path, c.params)
			if !strings.Contains(a.body, c.want) {
				t.Errorf("%s: %.300s, want %s", c.path, a.body, c.want)
			}
			if n := frontendCalls(t, d, c.op) - before; n < 3 {
				t.Errorf("%s: %v downstream calls, want one per day at least", c.path, n)
			}
			before = frontendCalls(t, d, c.op)
			if again := ask(t, d, http.MethodGet, c.path, c.params); again.body != a.body {
				t.Errorf("%s again: %s, want %s", c.path, again.body, a.body)
			}
			// The part newer than the max freshness is asked again.
			if n := frontendCalls(t, d, c.op) - before; n > 1 {
				t.Errorf("%s again: %v downstream calls, want the cached days not asked", c.path, n)
			}
		}
	})

	t.Run("the frontend's metrics are served", func(t *testing.T) {
		_, body, err := httpGet(d.url("/metrics"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{
			`thanos_query_frontend_queries_total{op="query_range"}`,
			`thanos_frontend_split_queries_total{tripperware="query_range"}`,
			`cortex_cache_hits_total{name="fifocache",tripperware="query_range"}`,
			`cortex_query_seconds_total{user="default-tenant"}`,
		} {
			if !strings.Contains(string(body), m) {
				t.Errorf("/metrics has no %s", m)
			}
		}
	})
}

// TestFrontendOff: with query_frontend.enabled false, range queries go to
// the querier directly.
func TestFrontendOff(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "monstack.yml"), "query_frontend: {enabled: false}\n")
	d := startDaemon(t, filepath.Join(dir, "data"), nil, "--config.file="+filepath.Join(dir, "monstack.yml"))
	now := time.Now()
	a := ask(t, d, http.MethodGet, "/api/v1/query_range", url.Values{
		"query": {"vector(1)"}, "step": {"1"}, "start": {promTS(now.Add(-10 * time.Second))}, "end": {promTS(now)},
	})
	if len(points(t, a)) != 11 {
		t.Errorf("%d points, want 11", len(points(t, a)))
	}
	if _, err := d.metric(`monstackd_query_frontend_downstream_requests_total{op="query_range"}`); err == nil {
		t.Error("the frontend's metrics are served with the frontend off")
	}
}

// TestFrontendGapNotFrozen: replica A restarted (a hole in its TSDB), then
// B died. A answers with the hole and a warning naming B; once B is back,
// the same query through A has no hole. The partial answer was never
// cached, although all of it is older than the max freshness.
func TestFrontendGapNotFrozen(t *testing.T) {
	p := newPair(t, pairOptions{monstack: "query_frontend: {query_range: {results_cache: {max_freshness: 1s}}}\n"})
	p.peered(t)
	a, b := p.d[0], p.d[1]
	// scrapes waits for n scrapes in d's own TSDB since since.
	scrapes := func(d *daemon, n float64, since time.Time) {
		t.Helper()
		eventually(t, 60*time.Second, fmt.Sprintf("%v scrapes on %s", n, d.http), func() error {
			data, err := d.api("/prometheus/api/v1/query", url.Values{
				"query": {fmt.Sprintf(`count_over_time(up{job="node"}[%dms])`, time.Since(since).Milliseconds())},
			})
			if err != nil {
				return err
			}
			var v struct {
				Result []sample `json:"result"`
			}
			if err := json.Unmarshal(data, &v); err != nil || len(v.Result) != 1 {
				return fmt.Errorf("%s: %v", data, err)
			}
			if got, _ := strconv.ParseFloat(v.Result[0].Value[1].(string), 64); got < n {
				return fmt.Errorf("%v samples", got)
			}
			return nil
		})
	}
	scrapes(a, 10, time.Now().Add(-time.Hour))

	// A restarts: B scrapes on through the hole.
	holeStart := time.Now()
	a.signal(t, syscall.SIGTERM)
	if code := a.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("replica A exited %d", code)
	}
	scrapes(b, 10, holeStart)
	p.start(t, 0)
	a = p.d[0]
	holeEnd := time.Now()
	scrapes(a, 5, holeEnd)

	// B dies: A answers from its own TSDB, hole included.
	b.signal(t, syscall.SIGKILL)
	b.wait(t, 30*time.Second)
	eventually(t, 30*time.Second, "A sees B down", func() error {
		if v, err := a.metric(`monstackd_peer_up{peer="` + b.grpc + `"}`); err != nil || v != 0 {
			return fmt.Errorf("monstackd_peer_up %v %v", v, err)
		}
		return nil
	})
	// Every step has a sample in the 5s before it, except in A's hole
	// (up itself would be carried through it by the 5m lookback); 5s
	// covers what the penalty deduplication skips where it switches
	// replicas.
	params := url.Values{
		"query": {`count_over_time(up{job="node"}[5s])`}, "step": {"1"},
		"start": {promTS(holeStart.Add(-3 * time.Second).Truncate(time.Second))},
		"end":   {promTS(time.Now().Add(-2 * time.Second).Truncate(time.Second))},
	}
	// gap is the longest stretch of the range without a point.
	gap := func(ans rangeAnswer) time.Duration {
		start, _ := strconv.ParseFloat(params.Get("start"), 64)
		end, _ := strconv.ParseFloat(params.Get("end"), 64)
		ts := []float64{start - 1}
		for _, v := range points(t, ans) {
			ts = append(ts, v[0].(float64))
		}
		return maxGap(append(ts, end+1))
	}
	for i := range 2 {
		before := frontendCalls(t, a, "query_range")
		ans := ask(t, a, http.MethodGet, "/api/v1/query_range", params)
		if len(ans.warnings) == 0 || gap(ans) < 5*time.Second {
			t.Fatalf("query %d with B down: warnings %v, longest gap %s; want B named and A's hole: %s", i, ans.warnings, gap(ans), ans.body)
		}
		if n := frontendCalls(t, a, "query_range") - before; n == 0 {
			t.Errorf("query %d with B down: answered from the cache: a partial answer must not be cached", i)
		}
	}

	p.start(t, 1)
	p.peered(t)
	ans := ask(t, a, http.MethodGet, "/api/v1/query_range", params)
	if len(ans.warnings) > 0 || gap(ans) > 1100*time.Millisecond {
		t.Errorf("with B back: warnings %v, longest gap %s; want B's samples in A's hole: %s", ans.warnings, gap(ans), ans.body)
	}
}

// TestFrontendCacheUnreachable: a Redis results cache that cannot be
// reached at start (its client dials when built) does not keep monstackd
// down: the frontend caches in memory, and /-/ready says why.
func TestFrontendCacheUnreachable(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "monstack.yml"), fmt.Sprintf("query_frontend:\n  labels:\n    results_cache: {type: REDIS, config: {addr: %q}}\n", freeAddr(t)))
	d := startDaemon(t, filepath.Join(dir, "data"), nil, "--config.file="+filepath.Join(dir, "monstack.yml"))
	_, body, err := httpGet(d.url("/-/ready"))
	if err != nil || !strings.Contains(string(body), "query-frontend: degraded: results cache unavailable, caching in memory") {
		t.Errorf("/-/ready: %s %v; want the frontend's cache named", body, err)
	}
	end := time.Now().Add(-time.Minute)
	p := url.Values{"start": {promTS(end.Add(-time.Hour))}, "end": {promTS(end)}}
	for range 2 {
		ask(t, d, http.MethodGet, "/api/v1/labels", p)
	}
	if hits, err := d.metric(`cortex_cache_hits_total{name="fifocache",tripperware="labels"}`); err != nil || hits == 0 {
		t.Errorf("labels cache hits %v %v: want the in-memory cache in its place", hits, err)
	}
}
