package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// baseTick is a realistic tick (a 2025 date at 15s), so counter magnitudes
// are what a real run sees.
const baseTick int64 = 1_750_000_000_000 / 15000

func defaultCfg(series, listeners int) config {
	return config{series: series, listeners: listeners, churnFraction: 0.02, churnTicks: 40, counterResetTicks: 240}
}

func mustWorkload(t testing.TB, cfg config) *workload {
	t.Helper()
	w, err := newWorkload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type label struct{ name, value string }

type sample struct {
	name   string
	labels []label
	key    string // everything before the value: the series identity
	value  float64
}

func (s sample) label(n string) string {
	for _, l := range s.labels {
		if l.name == n {
			return l.value
		}
	}
	return ""
}

// parseLine is a deliberately small parser for the subset we emit:
// name{k="v",...} value
func parseLine(line string) (sample, error) {
	var s sample
	open := strings.IndexByte(line, '{')
	end := strings.Index(line, "} ")
	if open <= 0 || end < open {
		return s, fmt.Errorf("no name{labels} in %q", line)
	}
	s.name, s.key = line[:open], line[:end+1]
	rest := line[open+1 : end]
	for rest != "" {
		eq := strings.Index(rest, `="`)
		if eq <= 0 {
			return s, fmt.Errorf("bad label in %q", line)
		}
		name := rest[:eq]
		rest = rest[eq+2:]
		q := strings.IndexByte(rest, '"')
		if q < 0 {
			return s, fmt.Errorf("unterminated label value in %q", line)
		}
		s.labels = append(s.labels, label{name, rest[:q]})
		rest = rest[q+1:]
		if rest != "" {
			if rest[0] != ',' {
				return s, fmt.Errorf("expected ',' in %q", line)
			}
			rest = rest[1:]
		}
	}
	v, err := strconv.ParseFloat(line[end+2:], 64)
	if err != nil {
		return s, fmt.Errorf("bad value in %q: %v", line, err)
	}
	s.value = v
	return s, nil
}

// parseBody returns the samples in order and checks HELP/TYPE structure.
func parseBody(t testing.TB, body []byte) []sample {
	t.Helper()
	var out []sample
	if len(body) == 0 {
		return nil
	}
	if body[len(body)-1] != '\n' {
		t.Fatal("body does not end with a newline")
	}
	typed := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(body), "\n"), "\n") {
		if strings.HasPrefix(line, "# TYPE ") {
			f := strings.Fields(line)
			typed[f[2]] = f[3]
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		s, err := parseLine(line)
		if err != nil {
			t.Fatal(err)
		}
		fam := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s.name, "_bucket"), "_sum"), "_count")
		if typed[s.name] == "" && typed[fam] != "histogram" {
			t.Fatalf("sample %q before its # TYPE line", line)
		}
		out = append(out, s)
	}
	return out
}

func renderT(t testing.TB, w *workload, l int, k int64) []sample {
	t.Helper()
	return parseBody(t, w.render(nil, l, k, 0))
}

func TestDeterministic(t *testing.T) {
	cfg := defaultCfg(20000, 3)
	w1, w2 := mustWorkload(t, cfg), mustWorkload(t, cfg)
	for l := range cfg.listeners {
		for _, k := range []int64{0, baseTick, baseTick + 39, baseTick + 40} {
			a := w1.render(nil, l, k, 0)
			b := w1.render([]byte("garbage"), l, k, 0)[len("garbage"):] // reused buffers must not leak
			c := w2.render(nil, l, k, 0)                                // a restarted target too
			if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
				t.Fatalf("listener %d tick %d: renders differ", l, k)
			}
		}
		if bytes.Equal(w1.render(nil, l, baseTick, 0), w1.render(nil, l, baseTick+1, 0)) {
			t.Fatalf("listener %d: consecutive ticks render the same", l)
		}
	}
}

func TestSeriesTotalsAndShape(t *testing.T) {
	// Exact: listener shares differ by at most one series and each share is
	// filled exactly (histogram rounding lands on the counters).
	for _, tc := range []struct{ series, listeners int }{
		{100000, 4}, {10000, 2}, {600, 1}, {1001, 3}, {7, 3}, {0, 2}, {30, 1},
	} {
		w := mustWorkload(t, defaultCfg(tc.series, tc.listeners))
		total := 0
		for l := range tc.listeners {
			ss := renderT(t, w, l, baseTick)
			if want := listenerShare(tc.series, tc.listeners, l); len(ss) != want {
				t.Errorf("%+v listener %d: %d series, want %d", tc, l, len(ss), want)
			}
			total += len(ss)
		}
		if total != tc.series {
			t.Errorf("%+v: %d series in total, want %d", tc, total, tc.series)
		}
	}
}

var podRE = regexp.MustCompile(`^(svc-\d+)-[0-9a-f]{6}-[bcdfghjklmnpqrstvwxz2456789]{5}$`)

func TestLabelsAndUniqueness(t *testing.T) {
	want := map[string]string{
		gaugeName:            "service,shard,pod,container",
		counterName:          "service,shard,pod,method,status",
		histName + "_bucket": "service,shard,pod,le",
		histName + "_sum":    "service,shard,pod",
		histName + "_count":  "service,shard,pod",
	}
	cfg := defaultCfg(100000, 4)
	w := mustWorkload(t, cfg)
	shards := map[string]bool{}
	services := map[string]bool{}
	for l := range cfg.listeners {
		// Before, at and after a churn boundary: names stay unique.
		for _, k := range []int64{baseTick, baseTick + 40 - baseTick%40, baseTick + 81} {
			seen := map[string]bool{}
			podShard := map[string]string{} // a pod name must name one pod
			for _, s := range renderT(t, w, l, k) {
				var names []string
				for _, lb := range s.labels {
					names = append(names, lb.name)
				}
				if got := strings.Join(names, ","); got != want[s.name] {
					t.Fatalf("%s: labels %s, want %s", s.key, got, want[s.name])
				}
				if seen[s.key] {
					t.Fatalf("listener %d tick %d: duplicate series %s", l, k, s.key)
				}
				seen[s.key] = true
				m := podRE.FindStringSubmatch(s.label("pod"))
				if m == nil || m[1] != s.label("service") {
					t.Fatalf("bad pod label in %s", s.key)
				}
				if sh, ok := podShard[s.label("pod")]; ok && sh != s.label("shard") {
					t.Fatalf("listener %d tick %d: pod %s in shards %s and %s", l, k, s.label("pod"), sh, s.label("shard"))
				}
				podShard[s.label("pod")] = s.label("shard")
				if s.name == gaugeName {
					shards[s.label("shard")] = true
					services[s.label("service")] = true
				}
			}
		}
	}
	if len(shards) != numShards || len(services) != numServices {
		t.Errorf("gauges cover %d shards and %d services, want %d and %d", len(shards), len(services), numShards, numServices)
	}
}

func TestMixShares(t *testing.T) {
	for _, tc := range []struct {
		series, listeners int
		tol               float64
	}{{100000, 4, 0.005}, {10000, 2, 0.01}, {600, 1, 0.03}} {
		w := mustWorkload(t, defaultCfg(tc.series, tc.listeners))
		count := map[string]int{}
		for l := range tc.listeners {
			for _, s := range renderT(t, w, l, baseTick) {
				count[strings.SplitN(s.name, "_", 3)[1]]++ // "memory" or "http"
				if strings.HasPrefix(s.name, histName) {
					count["hist"]++
				}
			}
		}
		n := float64(tc.series)
		g, c, h := float64(count["memory"])/n, float64(count["http"]-count["hist"])/n, float64(count["hist"])/n
		if math.Abs(g-0.40) > tc.tol || math.Abs(c-0.35) > tc.tol || math.Abs(h-0.25) > tc.tol {
			t.Errorf("%+v: shares %.4f/%.4f/%.4f, want 0.40/0.35/0.25 ± %v", tc, g, c, h, tc.tol)
		}
	}
}

func TestHistogramsCumulative(t *testing.T) {
	w := mustWorkload(t, defaultCfg(20000, 1))
	ss := renderT(t, w, 0, baseTick)
	groups := 0
	for i := 0; i < len(ss); i++ {
		if ss[i].name != histName+"_bucket" {
			continue
		}
		g := ss[i : i+histLines]
		for j, le := range bucketLE {
			if g[j].name != histName+"_bucket" || g[j].label("le") != le {
				t.Fatalf("group at %d: line %d is %s", i, j, g[j].key)
			}
			if j > 0 && g[j].value < g[j-1].value {
				t.Fatalf("%s: bucket below the previous one", g[j].key)
			}
		}
		if g[12].name != histName+"_sum" || g[13].name != histName+"_count" {
			t.Fatalf("group at %d lacks _sum/_count", i)
		}
		if g[11].value != g[13].value {
			t.Fatalf("%s: +Inf %v != count %v", g[11].key, g[11].value, g[13].value)
		}
		if g[0].value == g[11].value || g[12].value <= 0 {
			t.Fatalf("%s: degenerate histogram", g[0].key)
		}
		groups++
		i += histLines - 1
	}
	if groups != len(w.parts[0].hists) {
		t.Fatalf("%d histogram groups, want %d", groups, len(w.parts[0].hists))
	}
}

// TestMonotoneAcrossTicks walks 300 ticks with short reset and churn periods:
// counters, buckets, _sum and _count never decrease for a series present at
// both ticks, except the reset subset exactly at its reset ticks (to 0).
func TestMonotoneAcrossTicks(t *testing.T) {
	cfg := config{series: 4000, listeners: 1, churnFraction: 0.05, churnTicks: 40, counterResetTicks: 24}
	w := mustWorkload(t, cfg)
	pt := w.parts[0]
	counterIdx := func(ss []sample) map[string]int { // series key → index in pt.counters
		m := map[string]int{}
		j := 0
		for _, s := range ss {
			if s.name == counterName {
				m[s.key] = j
				j++
			}
		}
		return m
	}
	prev := map[string]float64{}
	resets, resetSeries := 0, 0
	for j := range pt.counters {
		if w.resetSubset(pt.counters[j].h) {
			resetSeries++
		}
	}
	if f := float64(resetSeries) / float64(len(pt.counters)); f < 0.03 || f > 0.07 {
		t.Errorf("reset subset is %.3f of counters, want ~0.05", f)
	}
	for k := baseTick; k < baseTick+300; k++ {
		ss := renderT(t, w, 0, k)
		idx := counterIdx(ss)
		cur := map[string]float64{}
		for _, s := range ss {
			cur[s.key] = s.value
			if s.name == gaugeName {
				continue
			}
			p, ok := prev[s.key]
			if !ok || s.value >= p {
				if ok && s.name == counterName && s.value == p {
					t.Fatalf("tick %d: %s did not increase", k, s.key)
				}
				continue
			}
			j, isCounter := idx[s.key]
			if !isCounter {
				t.Fatalf("tick %d: %s decreased %v → %v", k, s.key, p, s.value)
			}
			kr, ok := w.lastReset(pt.counters[j].h, k)
			if !ok || kr != k || s.value != 0 {
				t.Fatalf("tick %d: %s decreased %v → %v outside a reset", k, s.key, p, s.value)
			}
			resets++
		}
		prev = cur
	}
	// Each reset-subset series resets every 24 ticks: ~12 times in 300 ticks.
	if resets < resetSeries*10 {
		t.Errorf("%d resets seen for %d reset-subset series", resets, resetSeries)
	}
}

func TestChurn(t *testing.T) {
	cfg := defaultCfg(100000, 4)
	w := mustWorkload(t, cfg)
	boundary := (baseTick/cfg.churnTicks + 1) * cfg.churnTicks
	churned, total := 0, 0
	for l := range cfg.listeners {
		before := renderT(t, w, l, boundary-1)
		at := renderT(t, w, l, boundary)
		after := renderT(t, w, l, boundary+1)
		podOf := podIndexes(w.parts[l])
		for i := range at {
			// Same position = same series identity apart from the pod.
			changed := before[i].label("pod") != at[i].label("pod")
			if want := w.parts[l].pods[podOf[i]].churn; changed != want {
				t.Fatalf("listener %d line %d: pod changed=%v, churning=%v", l, i, changed, want)
			}
			if at[i].label("pod") != after[i].label("pod") {
				t.Fatalf("listener %d line %d: pod changed inside a generation", l, i)
			}
			if changed {
				churned++
				if at[i].label("service") != before[i].label("service") {
					t.Fatalf("churn changed the service of %s", at[i].key)
				}
			}
		}
		total += len(at)
	}
	if f := float64(churned) / float64(total); math.Abs(f-cfg.churnFraction) > 0.005 {
		t.Errorf("%.4f of series churn, want %v ± 0.005", f, cfg.churnFraction)
	}
}

// podIndexes lists each rendered line's pod index, in render order.
func podIndexes(pt *part) []int32 {
	var out []int32
	for _, s := range pt.gauges {
		out = append(out, s.pod)
	}
	for _, s := range pt.counters {
		out = append(out, s.pod)
	}
	for _, h := range pt.hists {
		for range histLines {
			out = append(out, h.pod)
		}
	}
	return out
}

func TestHTTP(t *testing.T) {
	w := mustWorkload(t, defaultCfg(5000, 2))
	now := time.UnixMilli(1_750_000_012_345)
	k := now.UnixMilli() / 15000
	h := newHandler(w, 1, 15*time.Second, false, new(atomic.Int64), func() time.Time { return now })
	for _, gz := range []bool{false, true} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
			t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		var body io.Reader = res.Body
		if gz {
			if res.Header.Get("Content-Encoding") != "gzip" {
				t.Fatal("no gzip encoding")
			}
			zr, err := gzip.NewReader(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		got, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w.render(nil, 1, k, 0)) {
			t.Fatalf("gzip=%v: body differs from render at tick %d", gz, k)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/-/healthy", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/-/healthy: %d", rec.Code)
	}
}

func BenchmarkRender100k(b *testing.B) {
	w := mustWorkload(b, defaultCfg(100000, 1))
	var buf []byte
	k := baseTick
	for b.Loop() {
		buf = w.render(buf[:0], 0, k, 0)
		k++
	}
	b.SetBytes(int64(len(buf)))
}

type discardRW struct{ h http.Header }

func (d discardRW) Header() http.Header         { return d.h }
func (d discardRW) Write(p []byte) (int, error) { return len(p), nil }
func (d discardRW) WriteHeader(int)             {}

// BenchmarkScrapeGzip100k is the whole per-scrape cost seen by Prometheus:
// render plus gzip at BestSpeed.
func BenchmarkScrapeGzip100k(b *testing.B) {
	w := mustWorkload(b, defaultCfg(100000, 1))
	tick := baseTick
	h := newHandler(w, 0, time.Millisecond, false, new(atomic.Int64), func() time.Time { tick++; return time.UnixMilli(tick) })
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	for b.Loop() {
		h.ServeHTTP(discardRW{http.Header{}}, req)
	}
}

// With -timestamps every sample carries its tick's start time, so scrapers
// at different offsets within the tick store identical samples.
func TestTimestampsAreTheTickStart(t *testing.T) {
	w := mustWorkload(t, defaultCfg(200, 1))
	body := string(w.render(nil, 0, 7, 7*15000))
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasSuffix(line, " 105000") {
			t.Fatalf("line %q does not end with the tick's timestamp 105000", line)
		}
	}
	if plain := string(w.render(nil, 0, 7, 0)); strings.Contains(plain, " 105000\n") {
		t.Fatal("ts 0 must write no timestamps")
	}
}
