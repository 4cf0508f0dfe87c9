package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
)

// The ports every daemon of a pair listens on, in its own namespace.
const (
	pairHTTPPort = 9090
	pairGRPCPort = 10901
)

// pairSetup is the HA pair as deployed: two daemons, replica-a and
// replica-b, each in its own network namespace (its own host), peered over
// gRPC, sharing one MinIO and scraping the same node_exporter in the root
// namespace.
type pairSetup struct {
	t     *testing.T // the test the processes live as long as
	net   *hostNet
	hosts [2]*netHost
	dirs  [2]string
	d     [2]*daemon
	m     *minio
	node  string
	am    string // the Alertmanager's address, if any
	// nodeProc is the node_exporter both replicas scrape.
	nodeProc *process
}

// pairOptions add to each daemon's config: rules (rules.yml) in
// prometheus.yml, an Alertmanager in the root namespace with the config
// alertmanager (alertmanager.yml's content), monstack (appended to
// monstack.yml).
type pairOptions struct {
	rules, alertmanager, monstack string
	// history writes the same completed 2h block of e2e_history, from
	// historyStart, into both TSDBs before the start: the shippers upload
	// one copy per replica.
	history bool
}

// historyStart is where the pair's synthetic history block begins.
var historyStart = time.Now().Add(-10 * time.Hour).Truncate(2 * time.Hour)

func newPair(t *testing.T, o pairOptions) *pairSetup {
	t.Helper()
	p := &pairSetup{t: t, net: newHostNet(t)}
	p.node = freeAddrOn(t, p.net.ip)
	p.nodeProc = startProcess(t, "node_exporter", binPath(t, "NODE_EXPORTER_BIN"), nil, "--web.listen-address="+p.node, "--no-collector.systemd")
	waitHTTP200(t, "http://"+p.node+"/metrics", 30*time.Second)
	p.m = startMinioAt(t, freeAddrOn(t, p.net.ip))
	if o.alertmanager != "" {
		p.am = freeAddrOn(t, p.net.ip)
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "alertmanager.yml"), o.alertmanager)
		startProcess(t, "alertmanager", binPath(t, "ALERTMANAGER_BIN"), nil,
			"--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+mkdir(t, dir, "data"),
			"--web.listen-address="+p.am, "--cluster.listen-address=")
		waitHTTP200(t, "http://"+p.am+"/-/ready", 30*time.Second)
	}
	for i, name := range []string{"a", "b"} {
		p.hosts[i] = p.net.addHost(name)
		p.dirs[i] = t.TempDir()
	}
	for i := range p.hosts {
		dir, other := p.dirs[i], p.hosts[1-i]
		p.m.writeBucketYAML(filepath.Join(dir, "bucket.yml"))
		prom := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels: {cluster: e2e}
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [%q]
`, p.node)
		if o.rules != "" {
			writeFile(t, filepath.Join(dir, "rules.yml"), o.rules)
			prom += "rule_files: [rules.yml]\n"
		}
		if p.am != "" {
			prom += fmt.Sprintf("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [%q]\n", p.am)
		}
		writeFile(t, filepath.Join(dir, "prometheus.yml"), prom)
		writeFile(t, filepath.Join(dir, "monstack.yml"), fmt.Sprintf(`prometheus: {config_file: prometheus.yml}
bucket: {config_file: bucket.yml}
peers:
  endpoints: [%q]
  response_timeout: 3s
%s`, other.addr(pairGRPCPort), o.monstack))
	}
	if o.history {
		for _, dir := range p.dirs {
			writeSameBlock(t, mkdir(t, dir, "data", "tsdb"), historyStart)
		}
	}
	p.start(t, 0)
	p.start(t, 1)
	return p
}

// writeSameBlock writes a 2h TSDB block from mint of 20 series of
// e2e_history, every 15s, valued by time and series alone: replicas that
// both write it hold identical data, so every deduplication agrees.
func writeSameBlock(t *testing.T, dir string, mint time.Time) {
	t.Helper()
	writeBlockWithout(t, dir, mint, func(time.Time) bool { return false })
}

// writeBlockWithout is writeSameBlock without the samples skip says: a
// replica that was down.
func writeBlockWithout(t *testing.T, dir string, mint time.Time, skip func(time.Time) bool) {
	t.Helper()
	var series []storage.Series
	for i := 0; i < 20; i++ {
		var samples []chunks.Sample
		for ts := mint; ts.Before(mint.Add(2 * time.Hour)); ts = ts.Add(15 * time.Second) {
			if skip(ts) {
				continue
			}
			samples = append(samples, pt{t: ts.UnixMilli(), v: float64(ts.Unix()%3600 + int64(i))})
		}
		series = append(series, storage.NewListSeries(labels.FromStrings("__name__", "e2e_history", "i", strconv.Itoa(i)), samples))
	}
	if _, err := tsdb.CreateBlock(series, dir, (2 * time.Hour).Milliseconds(), promslog.NewNopLogger()); err != nil {
		t.Fatal(err)
	}
}

// pt is a float sample.
type pt struct {
	t int64
	v float64
}

func (p pt) T() int64                      { return p.t }
func (p pt) F() float64                    { return p.v }
func (p pt) H() *histogram.Histogram       { return nil }
func (p pt) FH() *histogram.FloatHistogram { return nil }
func (p pt) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (p pt) Copy() chunks.Sample           { return p }

// start (re)starts daemon i on its host with its data dir.
func (p *pairSetup) start(t *testing.T, i int) {
	t.Helper()
	h := p.hosts[i]
	d := &daemon{http: h.addr(pairHTTPPort), grpc: h.addr(pairGRPCPort), dataDir: filepath.Join(p.dirs[i], "data")}
	bin, args := h.command(binPath(t, "MONSTACKD_BIN"),
		"--role=replica-"+[]string{"a", "b"}[i], "--config.file="+filepath.Join(p.dirs[i], "monstack.yml"),
		"--http.address="+d.http, "--grpc.address="+d.grpc, "--data.dir="+d.dataDir)
	d.process = startProcessOwned(t, p.t, "monstackd replica-"+[]string{"a", "b"}[i], bin, nil, args...)
	waitHTTP200(t, d.url("/-/ready"), 60*time.Second)
	p.d[i] = d
}

// peered waits until each daemon sees the other up.
func (p *pairSetup) peered(t *testing.T) {
	t.Helper()
	for _, d := range p.d {
		eventually(t, 30*time.Second, "the peer up on "+d.http, func() error {
			if v, err := d.metric(`monstackd_peer_up{peer="` + p.other(d).grpc + `"}`); err != nil || v != 1 {
				return fmt.Errorf("monstackd_peer_up %v %v", v, err)
			}
			return nil
		})
	}
}

func (p *pairSetup) other(d *daemon) *daemon {
	if d == p.d[0] {
		return p.d[1]
	}
	return p.d[0]
}

// queryResult is one API answer with its warnings.
type queryResult struct {
	Result   []sample
	Warnings []string
}

// query runs an instant (no step) or range query through d, with extra
// parameters (dedup, partial_response, ...).
func query(d *daemon, q string, start, end time.Time, step time.Duration, extra url.Values) (queryResult, error) {
	params := url.Values{"query": {q}}
	for k, v := range extra {
		params[k] = v
	}
	path := "/api/v1/query"
	if step > 0 {
		path = "/api/v1/query_range"
		params.Set("start", promTS(start))
		params.Set("step", strconv.FormatFloat(step.Seconds(), 'f', -1, 64))
	}
	params.Set(map[bool]string{true: "end", false: "time"}[step > 0], promTS(end))
	code, body, err := httpGet(d.url(path) + "?" + params.Encode())
	if err != nil {
		return queryResult{}, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		return queryResult{}, fmt.Errorf("%s %s: %d %.400s", path, q, code, body)
	}
	var v struct {
		Result []sample `json:"result"`
	}
	if err := json.Unmarshal(r.Data, &v); err != nil {
		return queryResult{}, err
	}
	return queryResult{Result: v.Result, Warnings: r.Warnings}, nil
}

func promTS(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) }

// sampleTimes returns the timestamps of a range vector's only series.
func sampleTimes(t *testing.T, r queryResult) []float64 {
	t.Helper()
	if len(r.Result) != 1 {
		t.Fatalf("%d series, want 1: %v", len(r.Result), r.Result)
	}
	var ts []float64
	for _, v := range r.Result[0].Values {
		ts = append(ts, v[0].(float64))
	}
	return ts
}

// maxGap is the longest distance between consecutive timestamps.
func maxGap(ts []float64) time.Duration {
	var g float64
	for i := 1; i < len(ts); i++ {
		g = max(g, ts[i]-ts[i-1])
	}
	return time.Duration(g * float64(time.Second))
}

func TestPair(t *testing.T) {
	p := newPair(t, pairOptions{history: true})
	p.peered(t)
	a, b := p.d[0], p.d[1]
	start := time.Now()

	t.Run("stores page lists local, bucket and peer", func(t *testing.T) {
		for _, d := range p.d {
			_, body, err := httpGet(d.url("/api/v1/stores"))
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Data map[string][]struct {
					Name      string              `json:"name"`
					LastError *string             `json:"lastError"`
					LabelSets []map[string]string `json:"labelSets"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			var names []string
			for typ, stores := range r.Data {
				for _, s := range stores {
					names = append(names, typ+" "+s.Name)
					if s.LastError != nil {
						t.Errorf("%s: store %s %s unhealthy: %s", d.http, typ, s.Name, *s.LastError)
					}
				}
			}
			sort.Strings(names)
			want := []string{"sidecar " + p.other(d).grpc, "sidecar local", "store store-gateway"}
			if !slices.Equal(names, want) {
				t.Errorf("%s: stores %v, want %v\n%s", d.http, names, want, body)
			}
		}
	})

	t.Run("the Stores page in a browser shows the peer up", func(t *testing.T) {
		chromium := binPath(t, "CHROMIUM_BIN")
		checkPage(t, chromium, artifactsDir(t), "stores", a.url("/stores"), func(dom string) error {
			endpoints := regexp.MustCompile(`(?s)<td[^>]*data-testid="endpoint"[^>]*>(.*?)</td>\s*<td[^>]*data-testid="health"[^>]*>(.*?)</td>`).FindAllStringSubmatch(dom, -1)
			health := map[string]string{}
			for _, m := range endpoints {
				health[textOf(m[1])] = textOf(m[2])
			}
			for _, name := range []string{"local", "store-gateway", b.grpc} {
				if health[name] != "UP" {
					return fmt.Errorf("store %s: health %q, want UP (rows %v)", name, health[name], health)
				}
			}
			return nil
		})
	})

	t.Run("one deduplicated series through either daemon, both with dedup=false", func(t *testing.T) {
		// node_exporter's first scrapes can time out while the shippers
		// upload: wait for ten seconds of samples on both replicas.
		eventually(t, 60*time.Second, "both replicas' data through both daemons", func() error {
			for _, d := range p.d {
				r, err := query(d, `count_over_time(node_cpu_seconds_total{cpu="0",mode="idle"}[14s]) >= 12`, time.Time{}, time.Now(), 0, url.Values{"dedup": {"false"}})
				if err != nil {
					return err
				}
				var replicas []string
				for _, s := range r.Result {
					replicas = append(replicas, s.Metric["replica"])
				}
				sort.Strings(replicas)
				if !slices.Equal(replicas, []string{"a", "b"}) {
					return fmt.Errorf("%s with dedup=false: replicas %v, want [a b]", d.http, replicas)
				}
			}
			return nil
		})
		// Both daemons hold every sample of the last seconds before end.
		end := time.Now().Add(-3 * time.Second)
		var got [2]queryResult
		for i, d := range p.d {
			r, err := query(d, `node_cpu_seconds_total{cpu="0",mode="idle"}`, end.Add(-10*time.Second), end, time.Second, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Result) != 1 || r.Result[0].Metric["replica"] != "" || len(r.Warnings) > 0 {
				t.Fatalf("%s: %+v, want one series without a replica label and no warning", d.http, r)
			}
			got[i] = r
		}
		if diff := sameAnswer(got[0], got[1], end); diff != "" {
			t.Errorf("the daemons differ: %s", diff)
		}
		// replicaLabels[] replaces the replica label per request, as in
		// stock Thanos: deduplicating on another label keeps both replicas.
		for _, d := range p.d {
			r, err := query(d, `up{job="node"}`, time.Time{}, time.Now(), 0, url.Values{"replicaLabels[]": {"cluster"}})
			if err != nil {
				t.Fatal(err)
			}
			var replicas []string
			for _, s := range r.Result {
				replicas = append(replicas, s.Metric["replica"]+"/"+s.Metric["cluster"])
			}
			sort.Strings(replicas)
			if !slices.Equal(replicas, []string{"a/", "b/"}) {
				t.Errorf("%s with replicaLabels[]=cluster: %v, want replicas a and b without cluster", d.http, replicas)
			}
		}
	})

	t.Run("stock thanos query over the pair and stock thanos store over the bucket answer the same", func(t *testing.T) {
		eventually(t, 60*time.Second, "both replicas' history block in the bucket", func() error {
			if n := len(bucketBlocks(t, p.m)); n != 2 {
				return fmt.Errorf("%d blocks", n)
			}
			return nil
		})
		thanos := binPath(t, "THANOS_BIN")
		storeHTTP, storeGRPC := freeAddrOn(t, p.net.ip), freeAddrOn(t, p.net.ip)
		startProcess(t, "thanos store", thanos, nil, "store", "--objstore.config-file="+filepath.Join(p.dirs[0], "bucket.yml"),
			"--data-dir="+t.TempDir(), "--http-address="+storeHTTP, "--grpc-address="+storeGRPC, "--sync-block-duration=2s")
		eventually(t, 60*time.Second, "thanos store with both blocks", func() error {
			_, body, err := httpGet("http://" + storeHTTP + "/metrics")
			if err != nil {
				return err
			}
			if !strings.Contains(string(body), "\nthanos_bucket_store_blocks_loaded 2\n") {
				return fmt.Errorf("blocks not loaded yet")
			}
			return nil
		})
		stock := &daemon{http: freeAddrOn(t, p.net.ip)}
		stock.process = startProcess(t, "thanos query", thanos, nil, "query", "--http-address="+stock.http, "--grpc-address="+freeAddrOn(t, p.net.ip),
			"--endpoint="+a.grpc, "--endpoint="+b.grpc, "--endpoint="+storeGRPC, "--query.replica-label=replica")
		eventually(t, 60*time.Second, "thanos query with three stores", func() error {
			_, body, err := httpGet(stock.url("/api/v1/stores"))
			if err != nil {
				return err
			}
			if n := strings.Count(string(body), `"lastError":null`); n != 3 {
				return fmt.Errorf("%d healthy stores: %s", n, body)
			}
			return nil
		})
		// On whole seconds: monstackd's query-frontend aligns a range to
		// its step, as Grafana does; the stock querier takes it as given.
		end := time.Now().Add(-3 * time.Second).Truncate(time.Second)
		for _, c := range []struct {
			q          string
			start, end time.Time
			step       time.Duration
		}{
			{`sum(e2e_history)`, historyStart, historyStart.Add(2*time.Hour - time.Minute), time.Minute},
			{`e2e_history{i="3"}`, historyStart.Add(time.Hour), historyStart.Add(time.Hour + 10*time.Minute), 15 * time.Second},
			{`node_cpu_seconds_total{cpu="0",mode="idle"}`, end.Add(-10 * time.Second), end, time.Second},
			{`sum(rate(node_cpu_seconds_total[5s]))`, end.Add(-10 * time.Second), end, time.Second},
			// Every series node_exporter has: large responses from the peer.
			{`count by (__name__) ({job="node"})`, end.Add(-5 * time.Second), end, time.Second},
		} {
			want, err := query(stock, c.q, c.start, c.end, c.step, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Result) == 0 || len(want.Warnings) > 0 {
				t.Fatalf("stock %s: %+v", c.q, want)
			}
			for _, d := range p.d {
				got, err := query(d, c.q, c.start, c.end, c.step, nil)
				if err != nil {
					t.Fatal(err)
				}
				if diff := sameAnswer(got, want, c.end); diff != "" {
					t.Errorf("%s through %s and stock thanos query: %s", c.q, d.http, diff)
				}
			}
		}
	})

	t.Run("SIGKILL A for a minute: B answers throughout, no gap afterwards", func(t *testing.T) {
		a.signal(t, syscall.SIGKILL)
		a.wait(t, 10*time.Second)
		down := time.Now()
		var queries, warned int
		for time.Since(down) < time.Minute {
			r, err := query(b, `sum(rate(node_cpu_seconds_total[5s]))`, time.Time{}, time.Now(), 0, nil)
			if err != nil {
				t.Fatalf("query through B with A down: %v", err)
			}
			if len(r.Result) != 1 {
				t.Fatalf("query through B with A down: %d series", len(r.Result))
			}
			queries++
			if len(r.Warnings) > 0 {
				warned++
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("%d queries through B with A down, %d with a warning", queries, warned)
		p.start(t, 0)
		a = p.d[0]
		p.peered(t)
		window := time.Since(start).Truncate(time.Second) - 2*time.Second
		end := time.Now().Add(-2 * time.Second)
		for _, d := range p.d {
			r, err := query(d, fmt.Sprintf(`up{job="node"}[%ds]`, int(window.Seconds())), time.Time{}, end, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			ts := sampleTimes(t, r)
			// One scrape interval (1s), and a little for the scrapes'
			// timing. Thanos' penalty algorithm leaves up to two.
			if g := maxGap(ts); g > 1100*time.Millisecond {
				t.Errorf("%s: a gap of %s in %d deduplicated samples over %s", d.http, g, len(ts), window)
				raw, _ := query(d, fmt.Sprintf(`up{job="node"}[%ds]`, int(window.Seconds())), time.Time{}, end, 0, url.Values{"dedup": {"false"}})
				for _, s := range raw.Result {
					t.Logf("replica %s: %v", s.Metric["replica"], s.Values)
				}
				t.Logf("dedup: %v", r.Result[0].Values)
			}
			// A counter that never resets: no reset where the answer
			// switches replicas, and a rate that never goes negative.
			q := fmt.Sprintf(`resets(node_cpu_seconds_total{cpu="0",mode="idle"}[%ds])`, int(window.Seconds()))
			r, err = query(d, q, time.Time{}, end, 0, nil)
			if err != nil || len(r.Result) != 1 || r.Result[0].Value[1] != "0" {
				t.Errorf("%s: %s = %+v (%v), want 0", d.http, q, r, err)
			}
			q = fmt.Sprintf(`min_over_time(rate(node_cpu_seconds_total{cpu="0",mode="idle"}[3s])[%ds:1s]) >= 0`, int(window.Seconds()-5))
			if r, err = query(d, q, time.Time{}, end, 0, nil); err != nil || len(r.Result) != 1 {
				t.Errorf("%s: %s = %+v (%v), want one non-negative rate", d.http, q, r, err)
			}
		}
	})

	t.Run("partition: partial answers within the response timeout, whole again after healing", func(t *testing.T) {
		p.hosts[0].partition(p.hosts[1])
		for _, d := range p.d {
			eventually(t, 30*time.Second, "a warning naming the peer", func() error {
				began := time.Now()
				r, err := query(d, `count(up{job="node"})`, time.Time{}, time.Now(), 0, nil)
				if err != nil {
					return err
				}
				if took := time.Since(began); took > 5*time.Second {
					t.Errorf("%s: a query took %s with the peer partitioned (response timeout 3s)", d.http, took)
				}
				if len(r.Result) != 1 {
					return fmt.Errorf("%d series", len(r.Result))
				}
				if !strings.Contains(strings.Join(r.Warnings, "\n"), p.other(d).grpc) {
					return fmt.Errorf("warnings %q do not name the peer %s", r.Warnings, p.other(d).grpc)
				}
				return nil
			})
		}
		// Once the peer's health check has failed it is not asked any more:
		// answers come at once, still naming it.
		for _, d := range p.d {
			eventually(t, 30*time.Second, "fast answers naming the peer", func() error {
				began := time.Now()
				r, err := query(d, `count(up{job="node"})`, time.Time{}, time.Now(), 0, nil)
				if err != nil {
					return err
				}
				if took := time.Since(began); took > time.Second {
					return fmt.Errorf("took %s", took)
				}
				if !strings.Contains(strings.Join(r.Warnings, "\n"), p.other(d).grpc+" is unreachable") {
					return fmt.Errorf("warnings %q", r.Warnings)
				}
				return nil
			})
		}
		p.hosts[0].heal(p.hosts[1])
		for _, d := range p.d {
			eventually(t, 20*time.Second, "answers without warnings after healing", func() error {
				r, err := query(d, `count(up{job="node"})`, time.Time{}, time.Now(), 0, nil)
				if err != nil {
					return err
				}
				if len(r.Warnings) > 0 {
					return fmt.Errorf("warnings %q", r.Warnings)
				}
				return nil
			})
		}
	})

	t.Run("config drift: reported while one replica scrapes another job, cleared when it is reverted", func(t *testing.T) {
		promFile := filepath.Join(p.dirs[0], "prometheus.yml")
		orig, err := os.ReadFile(promFile)
		if err != nil {
			t.Fatal(err)
		}
		drift := func(d *daemon, want float64) error {
			v, err := d.metric(`monstackd_config_drift{peer="` + p.other(d).grpc + `"}`)
			if err != nil || v != want {
				return fmt.Errorf("%s: monstackd_config_drift %v (%v), want %v", d.http, v, err, want)
			}
			return nil
		}
		for _, d := range p.d {
			if err := drift(d, 0); err != nil {
				t.Fatal(err)
			}
		}
		writeFile(t, promFile, string(orig)+fmt.Sprintf("  - job_name: only-on-a\n    static_configs:\n      - targets: [%q]\n", p.node))
		a.signal(t, syscall.SIGHUP)
		for _, d := range p.d {
			eventually(t, 40*time.Second, "drift reported on "+d.http, func() error { return drift(d, 1) })
		}
		if !strings.Contains(a.out.String(), `msg="configuration differs from the peer's`) || !strings.Contains(a.out.String(), "scrape job only-on-a only on this replica") {
			t.Errorf("A's log does not name the job:\n%s", tail(a.out.String(), 10))
		}
		if !strings.Contains(b.out.String(), "scrape job only-on-a only on the peer") {
			t.Errorf("B's log does not name the job:\n%s", tail(b.out.String(), 10))
		}
		_, body, err := httpGet(b.url("/api/v1/stores"))
		if err != nil || !strings.Contains(string(body), "config drift: scrape job only-on-a only on the peer") {
			t.Errorf("B's stores page does not show the drift (%v):\n%s", err, body)
		}
		if _, body, _ := httpGet(a.url("/-/ready")); !strings.Contains(string(body), "drift: degraded: config differs from peer") {
			t.Errorf("A's ready detail: %s", body)
		}

		writeFile(t, promFile, string(orig))
		a.signal(t, syscall.SIGHUP)
		for _, d := range p.d {
			eventually(t, 40*time.Second, "drift cleared on "+d.http, func() error { return drift(d, 0) })
		}
		if !strings.Contains(a.out.String(), "configuration matches the peer's again") {
			t.Errorf("A's log does not say the drift cleared:\n%s", tail(a.out.String(), 10))
		}
	})
}

// The peer link with TLS both ways: each daemon serves gRPC with a
// certificate and requires client certificates from the CA; each reaches
// the other with the CA, its client certificate and the server name. A
// daemon whose client certificate comes from another CA is refused, and
// says so.
func TestPairTLS(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir)
	other := newPKI(t, mkdir(t, dir, "other"))
	node := freeAddr(t)
	startProcess(t, "node_exporter", binPath(t, "NODE_EXPORTER_BIN"), nil, "--web.listen-address="+node, "--no-collector.systemd")
	grpcA, grpcB := freeAddr(t), freeAddr(t)
	start := func(name, peer string, client *pki) *daemon {
		d := mkdir(t, dir, name)
		writeFile(t, filepath.Join(d, "prometheus.yml"), fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: node\n    static_configs: [{targets: [%q]}]\n", node))
		writeFile(t, filepath.Join(d, "monstack.yml"), fmt.Sprintf(`prometheus: {config_file: prometheus.yml}
peers:
  endpoints: [%q]
  tls_config: {ca_file: %q, cert_file: %q, key_file: %q, server_name: localhost}
`, peer, p.ca, client.clientCert, client.clientKey))
		grpcAddr := map[string]string{"a": grpcA, "b": grpcB, "intruder": freeAddr(t)}[name]
		role := map[string]string{"a": "replica-a", "b": "replica-b", "intruder": "replica-c"}[name]
		return startDaemonAddrs(t, freeAddr(t), grpcAddr, filepath.Join(d, "data"), nil,
			"--role="+role, "--config.file="+filepath.Join(d, "monstack.yml"),
			"--grpc-server-tls-cert="+p.serverCert, "--grpc-server-tls-key="+p.serverKey, "--grpc-server-tls-client-ca="+p.ca)
	}
	a := start("a", grpcB, p)
	b := start("b", grpcA, p)
	for _, d := range []*daemon{a, b} {
		eventually(t, 30*time.Second, "both replicas through "+d.http, func() error {
			r, err := query(d, `up{job="node"}`, time.Time{}, time.Now(), 0, url.Values{"dedup": {"false"}})
			if err != nil {
				return err
			}
			if len(r.Result) != 2 || len(r.Warnings) > 0 {
				return fmt.Errorf("%d series, warnings %q", len(r.Result), r.Warnings)
			}
			return nil
		})
	}

	intruder := start("intruder", grpcB, other)
	eventually(t, 30*time.Second, "the intruder refused, and saying so", func() error {
		_, body, err := httpGet(intruder.url("/-/ready"))
		if err != nil {
			return err
		}
		if !strings.Contains(string(body), "peers: degraded: peer "+grpcB+": unreachable") {
			return fmt.Errorf("ready detail %q", body)
		}
		r, err := query(intruder, `up{job="node"}`, time.Time{}, time.Now(), 0, url.Values{"dedup": {"false"}})
		if err != nil {
			return err
		}
		if len(r.Result) != 1 || !strings.Contains(strings.Join(r.Warnings, " "), grpcB) {
			return fmt.Errorf("%d series, warnings %q", len(r.Result), r.Warnings)
		}
		return nil
	})
	if out := intruder.out.String(); !strings.Contains(out, "tls: unknown certificate authority") {
		t.Errorf("the intruder's log does not say why the peer refused it:\n%s", tail(out, 10))
	}
	if out := b.out.String(); !strings.Contains(out, `msg="TLS handshake failed"`) || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("the refusing daemon's log has no line for the failed handshake:\n%s", tail(out, 10))
	}
}

// sameAnswer compares two range query answers, "" when equal. The points
// of the last second before end are left out: there, where a replica's
// newest sample is the query's last, the deduplicated answer may end with
// either replica's (Thanos' penalty algorithm keeps the followed replica's
// older one; monstackd's also takes the other's newer one).
func sameAnswer(a, b queryResult, end time.Time) string {
	until := float64(end.Add(-time.Second).UnixMilli()) / 1000
	trim := func(r queryResult) string {
		out := make([]sample, 0, len(r.Result))
		for _, s := range r.Result {
			var vs [][]any
			for _, v := range s.Values {
				if v[0].(float64) <= until {
					vs = append(vs, v)
				}
			}
			s.Values = vs
			out = append(out, s)
		}
		j, _ := json.Marshal(out)
		return string(j)
	}
	if ta, tb := trim(a), trim(b); ta != tb {
		return fmt.Sprintf("\n%s\nvs\n%s", ta, tb)
	}
	return ""
}

// A replica whose own TSDB has a hole (it was down) and whose peer is down
// too: the peer's blocks in the bucket fill the hole, although the local
// TSDB covers that time. Each sample once: the replicas' identical samples
// are deduplicated.
func TestPairGapFilledFromPeerBlocks(t *testing.T) {
	f := newBucketFixture(t)
	hole := func(ts time.Time) bool {
		return !ts.Before(historyStart.Add(40*time.Minute)) && ts.Before(historyStart.Add(60*time.Minute))
	}
	// The peer's block, as its shipper uploaded it.
	bdir := t.TempDir()
	writeSameBlock(t, bdir, historyStart)
	entries, err := os.ReadDir(bdir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("block dir: %v %v", entries, err)
	}
	blockDir := filepath.Join(bdir, entries[0].Name())
	meta, err := metadata.ReadFromDir(blockDir)
	if err != nil {
		t.Fatal(err)
	}
	meta.Thanos = metadata.Thanos{Labels: map[string]string{"cluster": "e2e", "replica": "b"}, Source: metadata.SidecarSource}
	if err := meta.WriteToDir(log.NewNopLogger(), blockDir); err != nil {
		t.Fatal(err)
	}
	if err := block.Upload(context.Background(), log.NewNopLogger(), f.bkt, blockDir, metadata.NoneFunc); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	writeBlockWithout(t, mkdir(t, dir, "data", "tsdb"), historyStart, hole)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), "global: {external_labels: {cluster: e2e}}\n")
	writeFile(t, filepath.Join(dir, "monstack.yml"), fmt.Sprintf("prometheus: {config_file: prometheus.yml}\nbucket: {config_file: %s}\npeers: {endpoints: [%q]}\n", f.yml, freeAddr(t)))
	d := startDaemon(t, filepath.Join(dir, "data"), nil, "--role=replica-a", "--config.file="+filepath.Join(dir, "monstack.yml"))
	eventually(t, 60*time.Second, "the peer's block loaded by the store gateway", func() error {
		if v, err := d.metric("thanos_bucket_store_blocks_loaded"); err != nil || v < 1 {
			return fmt.Errorf("blocks loaded %v %v", v, err)
		}
		return nil
	})
	at := historyStart.Add(90 * time.Minute)
	r, err := query(d, `e2e_history{i="3"}[80m]`, time.Time{}, at, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := sampleTimes(t, r)
	if g := maxGap(ts); g > 15*time.Second {
		t.Errorf("a gap of %s in the answer: the peer's blocks did not fill the hole", g)
	}
	if want := int((80 * time.Minute) / (15 * time.Second)); len(ts) != want {
		t.Errorf("%d samples over 80m, want %d (every 15s, once)", len(ts), want)
	}
}
