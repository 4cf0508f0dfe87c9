// Command target is the benchmark's scrape target: it serves a configurable
// number of synthetic active series (gauges, counters, classic histograms)
// whose values are a deterministic function of (series, tick), tick =
// floor(unix_ms / interval_ms). Two scrapers hitting it within the same tick
// get byte-identical bodies, so the setups under comparison ingest the same
// data.
//
// Each --listen address is one scrape target (instance) serving a disjoint
// share of --series: listener i gets series/n, plus one if i < series%n, so
// the shares add up to --series exactly. Within a listener the series are
// ~40% gauges, ~35% counters, ~25% histogram series (whole histograms of 14).
//
// `target history --out=DIR ...` writes the same workload's past instead, as
// Prometheus TSDB blocks (see history.go), for the benchmark's bucket phase.
package main

import (
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "history" {
		if err := runHistory(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	listen := flag.String("listen", "127.0.0.1:9100", "comma-separated host:port list; each listener is one scrape target with its own share of the series")
	seriesN := flag.Int("series", 100000, "total active series over all listeners")
	interval := flag.Duration("interval", 15*time.Second, "tick duration; values change once per tick")
	churnFraction := flag.Float64("churn-fraction", 0.02, "fraction of pods (and so of series) whose pod label rotates")
	churnTicks := flag.Int64("churn-ticks", 40, "rotate churning pods' names every this many ticks (0 disables)")
	resetTicks := flag.Int64("counter-reset-ticks", 240, "period in ticks of the resets of ~5% of bench_http_requests_total series (0 disables)")
	held := flag.Bool("held", false, "answer scrapes with 503 until POST /-/start?tick=N, then from tick N on, so that scrapers at different offsets start on the same tick")
	timestamps := flag.Bool("timestamps", false, "stamp every sample with its tick's start time, so that scrapers at different offsets within a tick store identical samples")
	flag.Parse()

	var addrs []string
	for a := range strings.SplitSeq(*listen, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if *interval < time.Millisecond {
		log.Fatal("--interval must be at least 1ms")
	}
	w, err := newWorkload(config{
		series:            *seriesN,
		listeners:         len(addrs),
		churnFraction:     *churnFraction,
		churnTicks:        *churnTicks,
		counterResetTicks: *resetTicks,
	})
	if err != nil {
		log.Fatal(err)
	}

	// start is the first tick served; shared by the listeners.
	var start atomic.Int64
	if *held {
		start.Store(math.MaxInt64)
	}
	errc := make(chan error, len(addrs))
	for i, addr := range addrs {
		// Listen before serving so a taken port fails start-up, not later.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		pt := w.parts[i]
		log.Printf("listener %d on %s: %d gauge, %d counter, %d histogram series",
			i, ln.Addr(), len(pt.gauges), len(pt.counters), len(pt.hists)*histLines)
		srv := &http.Server{Handler: newHandler(w, i, *interval, *timestamps, &start, time.Now), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- srv.Serve(ln) }()
	}
	log.Fatal(<-errc)
}

// Render buffers and gzip writers are reused across scrapes: a 100k-series
// body is ~10 MB and would otherwise be reallocated every scrape.
var (
	bufPool  = sync.Pool{New: func() any { return new([]byte) }}
	gzipPool = sync.Pool{New: func() any {
		zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return zw
	}}
)

func newHandler(w *workload, listener int, interval time.Duration, timestamps bool, start *atomic.Int64, now func() time.Time) http.Handler {
	ivMs := interval.Milliseconds()
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(rw http.ResponseWriter, r *http.Request) {
		k := now().UnixMilli() / ivMs
		if s := start.Load(); k < s {
			http.Error(rw, fmt.Sprintf("workload held until tick %d, this is tick %d", s, k), http.StatusServiceUnavailable)
			return
		}
		var ts int64
		if timestamps {
			ts = k * ivMs
		}
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		*bp = w.render((*bp)[:0], listener, k, ts)

		h := rw.Header()
		h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		h.Set("X-Bench-Tick", strconv.FormatInt(k, 10)) // lets the harness check which tick it got
		// Prometheus always offers gzip; a plain substring test is enough here.
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.Set("Content-Length", strconv.Itoa(len(*bp)))
			rw.Write(*bp)
			return
		}
		h.Set("Content-Encoding", "gzip")
		zw := gzipPool.Get().(*gzip.Writer)
		defer gzipPool.Put(zw)
		zw.Reset(rw)
		zw.Write(*bp)
		zw.Close()
	})
	mux.HandleFunc("POST /-/start", func(rw http.ResponseWriter, r *http.Request) {
		tick, err := strconv.ParseInt(r.URL.Query().Get("tick"), 10, 64)
		if err != nil {
			http.Error(rw, "parameter tick: "+err.Error(), http.StatusBadRequest)
			return
		}
		start.Store(tick)
	})
	mux.HandleFunc("/-/healthy", func(rw http.ResponseWriter, r *http.Request) {
		io.WriteString(rw, "OK\n")
	})
	return mux
}
