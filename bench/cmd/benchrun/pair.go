package main

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The pair phase: two monstackd daemons peering over gRPC on loopback
// against the stock HA pair (Prometheus A and B, a sidecar each, thanos
// query over both sidecars, query-frontend), all four TSDBs scraping the
// same target: deduplicated query latency, queries answered while a replica
// is SIGKILLed and restarted, and query latency with the peer partitioned.

// pairCompareLag places the result comparison a few scrape intervals in the
// past: at the last step of a range the two deduplications may legitimately
// differ (monstackd may end with the other replica's newer sample, stock
// Thanos holds to the replica it follows), and a few intervals back both
// replicas have every sample.
const pairCompareLag = 3

// pairSetups are the processes of the pair phase.
type pairSetups struct {
	// promA is replica A of the stock pair, the one killed and queried
	// directly (the floor); sidecarA is the one partitioned.
	promA, sidecarA *proc
	stock           *setup // both Prometheus, both sidecars, query, frontend
	monA, monB      *setup
	// scrapers are the /metrics pages of the four scraping processes.
	scrapers []string
}

func (ps *pairSetups) stop() { stopSetups(ps.monB, ps.monA, ps.stock) }

// newPairSetups writes the configurations and builds (without starting)
// both pairs; every TSDB scrapes targets.
func newPairSetups(b bins, dir string, sc scale, targets []string) (*pairSetups, error) {
	a, err := addrs(13)
	if err != nil {
		return nil, err
	}
	promAHTTP, promBHTTP, scAHTTP, scAGRPC, scBHTTP, scBGRPC, qHTTP, qGRPC, feHTTP := a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]
	monAHTTP, monAGRPC, monBHTTP, monBGRPC := a[9], a[10], a[11], a[12]

	ps := &pairSetups{}
	var stockProcs []*proc
	for _, r := range []struct{ replica, promHTTP, scHTTP, scGRPC string }{
		{"a", promAHTTP, scAHTTP, scAGRPC},
		{"b", promBHTTP, scBHTTP, scBGRPC},
	} {
		d := filepath.Join(dir, "stock-"+r.replica)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		// The replicas differ only in the replica label, as an HA pair's
		// configurations do.
		promYAML := filepath.Join(d, "prometheus.yml")
		if err := writePrometheusYAML(promYAML, sc, targets, r.replica); err != nil {
			return nil, err
		}
		R := strings.ToUpper(r.replica)
		prom := newPrometheus(b, d, "prometheus "+R, promYAML, r.promHTTP)
		sidecar := newSidecar(b, d, "thanos sidecar "+R, r.promHTTP, r.scHTTP, r.scGRPC)
		stockProcs = append(stockProcs, prom, sidecar)
		ps.scrapers = append(ps.scrapers, "http://"+r.promHTTP+"/metrics")
		if r.replica == "a" {
			ps.promA, ps.sidecarA = prom, sidecar
		}
	}
	qd := filepath.Join(dir, "stock-query")
	if err := os.MkdirAll(qd, 0o755); err != nil {
		return nil, err
	}
	query := &proc{
		name: "thanos query", bin: b.thanos, logFile: filepath.Join(qd, "query.log"),
		readyURL: "http://" + qHTTP + "/-/ready",
		// --store.response-timeout stays at its default, 0: no bound on a
		// silent store, which the partition figure shows.
		args: []string{"query", "--http-address=" + qHTTP, "--grpc-address=" + qGRPC,
			"--endpoint=" + scAGRPC, "--endpoint=" + scBGRPC, "--query.replica-label=replica"},
	}
	frontend := &proc{
		name: "thanos query-frontend", bin: b.thanos, logFile: filepath.Join(qd, "frontend.log"),
		readyURL: "http://" + feHTTP + "/-/ready",
		args:     []string{"query-frontend", "--http-address=" + feHTTP, "--query-frontend.downstream-url=http://" + qHTTP},
	}
	ps.stock = &setup{name: "stock pair", procs: append(stockProcs, query, frontend),
		api: "http://" + feHTTP, tsdb: ps.promA, metrics: ps.scrapers[0]}

	// One prometheus.yml for both daemons, without the replica label: each
	// takes it from its role.
	monYAML := filepath.Join(dir, "monstackd-prometheus.yml")
	if err := writePrometheusYAML(monYAML, sc, targets, ""); err != nil {
		return nil, err
	}
	monCfg := func(peer string) string {
		return fmt.Sprintf("prometheus:\n  config_file: %s\npeers:\n  endpoints: [%q]\n  response_timeout: 5s\n", monYAML, peer)
	}
	if ps.monA, err = newMonstackd(b, filepath.Join(dir, "monstackd-a"), "monstackd A", "replica-a", monCfg(monBGRPC), monAHTTP, monAGRPC); err != nil {
		return nil, err
	}
	if ps.monB, err = newMonstackd(b, filepath.Join(dir, "monstackd-b"), "monstackd B", "replica-b", monCfg(monAGRPC), monBHTTP, monBGRPC); err != nil {
		return nil, err
	}
	ps.scrapers = append(ps.scrapers, ps.monA.metrics, ps.monB.metrics)
	return ps, nil
}

// runPairPhase starts both pairs on one target and adds the phase's figures,
// result comparisons and availability counts to r.
// base names its profiles.
func runPairPhase(r *report, sc scale, queries []querySpec, b bins, work, base string) error {
	dir := filepath.Join(work, "pair")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	targets, err := addrs(sc.Targets)
	if err != nil {
		return err
	}
	ps, err := newPairSetups(b, dir, sc, targets)
	if err != nil {
		return err
	}
	defer ps.stop()
	log.Printf("pair phase: starting the stock pair and two monstackd (%d series, %d targets, every %s)", sc.Series, sc.Targets, sc.ScrapeInterval)
	for _, s := range []*setup{ps.stock, ps.monA, ps.monB} {
		if err := s.start(); err != nil {
			return err
		}
	}
	target, t0, err := startWorkload(sc, b, dir, targets, ps.scrapers...)
	if err != nil {
		return err
	}
	defer target.kill(syscall.SIGTERM, 10*time.Second)
	log.Printf("pair phase: warm-up %s", sc.Warmup)
	time.Sleep(time.Until(t0.Add(sc.Warmup)))
	if err := ps.waitWhole(time.Minute); err != nil {
		return err
	}

	// Latency: either daemon against the stock pair's frontend and against
	// Prometheus A alone, interleaved.
	// monstackd B's profiles: it answers its share of the queries and
	// serves its TSDB to A for the other share.
	profDone := make(chan []string, 1)
	go func() { profDone <- profile(ps.monB, base+"-pair", sc.ProfileSeconds) }()
	promA := strings.TrimSuffix(ps.promA.readyURL, "/-/ready")
	lat, err := measureEndpoints(sc, queries, []endpoint{
		{"monstackd A", ps.monA.api}, {"monstackd B", ps.monB.api}, {"stock", ps.stock.api}, {"prometheus", promA},
	})
	r.Profiles = append(r.Profiles, <-profDone...)
	if err != nil {
		return fmt.Errorf("pair phase: %w", err)
	}
	for _, q := range queries {
		l := lat[q.Name]
		either := append(append([]float64(nil), l["monstackd A"]...), l["monstackd B"]...)
		r.Figures = append(r.Figures,
			newFigure("pair query "+q.Name, "ms", "stock pair path", l["stock"], either, 0.35),
			newFigure("pair query "+q.Name, "ms", "Prometheus A direct", l["prometheus"], either, 2.0))
	}
	for _, m := range []*setup{ps.monA, ps.monB} {
		compareResults(r, sc, queries, ps.stock, m, t0, pairCompareLag*sc.ScrapeInterval, "pair ("+m.name+") ")
	}

	if err := pairKills(r, sc, queries, ps); err != nil {
		return err
	}
	return pairPartition(r, sc, queries, ps)
}

// replicas counts the replicas whose series an endpoint answers with now,
// deduplication off: 2 once a querier reads both.
func replicas(base string) (int, error) {
	q := querySpec{Name: "replicas", Type: "instant", Query: `count(count by (replica) (up{job="bench"}))`}
	u := q.url(base, time.Now()) + "&dedup=false"
	_, data, _, err := q.get(client, u)
	if err != nil {
		return 0, err
	}
	res, err := parseResult(q, data)
	if err != nil {
		return 0, err
	}
	for _, pts := range res.series {
		if len(pts) == 1 {
			return int(pts[0][1]), nil
		}
	}
	return 0, nil
}

// waitWhole waits until every querier of both pairs reads both replicas:
// after a start, a kill or a partition the pair is whole again.
func (ps *pairSetups) waitWhole(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		whole := true
		var last string
		for _, s := range []*setup{ps.monA, ps.monB, ps.stock} {
			if n, err := replicas(s.api); err != nil || n != 2 {
				whole, last = false, fmt.Sprintf("%s reads %d replicas (%v)", s.name, n, err)
				break
			}
		}
		if whole {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pair phase: not whole after %s: %s", timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// availability counts the queries sent through one side's surviving
// querier while its replica A was SIGKILLed and restarted.
type availability struct {
	Setup   string  `json:"setup"`
	Killed  string  `json:"killed"`
	Via     string  `json:"via"`
	Kills   int     `json:"kills"`
	Queries int     `json:"queries"`
	Failed  int     `json:"failed"`
	Partial int     `json:"partial"` // answered with a warning
	Seconds float64 `json:"seconds"` // summed over the kills
	// Errors are the first few failures' messages.
	Errors []string `json:"errors,omitempty"`
}

// pairKills SIGKILLs replica A of each pair in turn, sc.KillRepetitions
// times each, while a client queries through the other side, and records
// what it got. monstackd failing any query is a failure of the run.
func pairKills(r *report, sc scale, queries []querySpec, ps *pairSetups) error {
	mon := &availability{Setup: "monstackd pair", Killed: ps.monA.name, Via: ps.monB.name}
	stock := &availability{Setup: "stock pair", Killed: ps.promA.name, Via: "query-frontend"}
	log.Printf("pair phase: SIGKILL and restart of replica A, %d times each, querying through the other side", sc.KillRepetitions)
	for i := 0; i < sc.KillRepetitions; i++ {
		sides := []struct {
			a      *availability
			victim *proc
			via    string
		}{{mon, ps.monA.tsdb, ps.monB.api}, {stock, ps.promA, ps.stock.api}}
		if i%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, s := range sides {
			if err := queryThroughKill(sc, queries, s.a, s.victim, s.via, ps); err != nil {
				return err
			}
		}
	}
	r.Availability = append(r.Availability, *mon, *stock)
	if mon.Failed > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("pair: %d of %d queries through %s failed while %s was killed and restarted: %s",
			mon.Failed, mon.Queries, mon.Via, mon.Killed, strings.Join(mon.Errors, "; ")))
	}
	return nil
}

// killQueryPace spaces the queries sent while a replica is killed, as a
// dashboard's would be: back to back, they would take a core from the
// restarting replica.
const killQueryPace = 50 * time.Millisecond

// killQueryWindow is the least time queries run from a kill on, whatever
// the restart takes: a small TSDB restarts in well under a second, and the
// surviving querier notices and reconnects within its next endpoint update
// and gRPC backoff (5s each in monstackd). At most 5 scrape intervals, for
// the tiny scale.
func killQueryWindow(sc scale) time.Duration {
	return min(10*time.Second, 5*sc.ScrapeInterval)
}

// queryThroughKill queries through via in a loop, cycling through the query
// set, one query per killQueryPace at most, from just before victim's
// SIGKILL until the restarted victim is ready and every querier reads both
// replicas again, and for killQueryWindow at least; it adds the counts to
// a. A query slower than the partition timeout counts as failed.
func queryThroughKill(sc scale, queries []querySpec, a *availability, victim *proc, via string, ps *pairSetups) error {
	stop := make(chan struct{})
	done := make(chan struct{})
	c := &http.Client{Timeout: sc.PartitionTimeout}
	go func() {
		defer close(done)
		tick := time.NewTicker(killQueryPace)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			q := queries[i%len(queries)]
			_, _, warnings, err := q.get(c, q.url(via, time.Now()))
			a.Queries++
			switch {
			case err != nil:
				a.Failed++
				if len(a.Errors) < 3 {
					a.Errors = append(a.Errors, err.Error())
				}
			case len(warnings) > 0:
				a.Partial++
			}
		}
	}()
	start := time.Now()
	err := restartAndWait(victim, ps)
	if err == nil {
		time.Sleep(time.Until(start.Add(killQueryWindow(sc))))
	}
	close(stop)
	<-done
	a.Kills++
	a.Seconds += time.Since(start).Seconds()
	return err
}

func restartAndWait(victim *proc, ps *pairSetups) error {
	if err := victim.kill(syscall.SIGKILL, 30*time.Second); err != nil {
		return err
	}
	if err := victim.start(); err != nil {
		return err
	}
	if _, err := victim.waitReady(time.Now(), 15*time.Minute); err != nil {
		return err
	}
	return ps.waitWhole(2 * time.Minute)
}

// pairPartition SIGSTOPs each side's replica A in turn (monstackd A; the
// stock pair's sidecar A, the process the querier talks to): its sockets
// stay open and silent, as across a partition. It times one query after
// another through the other side's querier, partial responses asked for.
func pairPartition(r *report, sc scale, queries []querySpec, ps *pairSetups) error {
	// An instant query at now always reads the peer's recent data; a range
	// query ends on a multiple of its step and, at the tiny scale, before
	// the peer's first sample, so that the peer is never asked.
	q := queries[0]
	for _, c := range queries {
		if c.Type == "instant" {
			q = c
			break
		}
	}
	log.Printf("pair phase: %d × %s with replica A stopped (SIGSTOP), client timeout %s", sc.PartitionQueries, q.Name, sc.PartitionTimeout)
	mon, monFailed, err := queryThroughPartition(sc, q, ps.monA.tsdb, ps.monB.api)
	if err != nil {
		return err
	}
	if err := ps.waitWhole(2 * time.Minute); err != nil {
		return err
	}
	stock, stockFailed, err := queryThroughPartition(sc, q, ps.sidecarA, ps.stock.api)
	if err != nil {
		return err
	}
	if err := ps.waitWhole(2 * time.Minute); err != nil {
		return err
	}
	r.Figures = append(r.Figures, newFigure("pair query with the peer partitioned (SIGSTOP), "+q.Name, "ms", "stock pair path (partial response)", stock, mon, 0))
	r.Notes = append(r.Notes, fmt.Sprintf("Pair, peer partitioned (SIGSTOP of monstackd A; of sidecar A in the stock pair): %d queries of %s, one after another, through monstackd B took %s ms, %d failed; through the stock frontend %s ms, %d failed or timed out (client timeout %s, counted at that value; the stock querier's --store.response-timeout is 0, no bound).",
		len(mon), q.Name, fmtSeq(mon), len(monFailed), fmtSeq(stock), len(stockFailed), sc.PartitionTimeout))
	if len(monFailed) > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("pair: %d queries through monstackd B failed with the peer partitioned: %s", len(monFailed), strings.Join(monFailed, "; ")))
	}
	return nil
}

// queryThroughPartition stops victim, times sc.PartitionQueries runs of q
// through via, and continues victim. Latencies are in ms; a failed query
// counts with the time it took (the client timeout if it hung) and its
// error is returned in failed.
func queryThroughPartition(sc scale, q querySpec, victim *proc, via string) (lat []float64, failed []string, err error) {
	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return nil, nil, fmt.Errorf("SIGSTOP %s: %w", victim.name, err)
	}
	defer func() {
		if cerr := victim.cmd.Process.Signal(syscall.SIGCONT); cerr != nil && err == nil {
			err = fmt.Errorf("SIGCONT %s: %w", victim.name, cerr)
		}
	}()
	c := &http.Client{Timeout: sc.PartitionTimeout}
	for i := 0; i < sc.PartitionQueries; i++ {
		u := q.url(via, time.Now()) + "&" + url.Values{"partial_response": {"true"}}.Encode()
		start := time.Now()
		_, _, _, err := q.get(c, u)
		lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) && ue.Timeout() {
				err = fmt.Errorf("no answer within %s", sc.PartitionTimeout)
			}
			failed = append(failed, fmt.Sprintf("query %d: %v", i+1, err))
		}
	}
	return lat, failed, nil
}

// fmtSeq lists latencies in ms in the order they were taken.
func fmtSeq(ms []float64) string {
	out := make([]string, len(ms))
	for i, v := range ms {
		out[i] = fmt.Sprintf("%.0f", v)
	}
	return strings.Join(out, ", ")
}

// fmtAvailability is the pair-phase table row of one side.
func fmtAvailability(a availability) string {
	return fmt.Sprintf("| %s | %s | %s | %d | %.1f | %d | %d | %d |", a.Setup, a.Killed, a.Via, a.Kills, a.Seconds, a.Queries, a.Partial, a.Failed)
}
