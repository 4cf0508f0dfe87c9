// Package admission keeps queries from taking the memory that the process
// shares with ingestion. In the stock stack the querier is its own process
// and the kernel's OOM killer takes it alone; in monstackd a query that
// exhausts memory would take scraping down with it. The guard sheds new
// queries with 503 while the live heap is high and cancels running ones
// before it reaches the memory limit (GOMEMLIMIT).
package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// checkInterval is how often running queries are checked against the limit.
const checkInterval = 50 * time.Millisecond

// Options configure the guard.
type Options struct {
	// ShedRatio and CancelRatio are shares of the memory limit: above the
	// first, new queries are refused; above the second, running ones are
	// cancelled. Zero disables either.
	ShedRatio, CancelRatio float64
	// Limit returns the memory limit in bytes; default GOMEMLIMIT. A limit
	// of math.MaxInt64 (none set) disables the guard.
	Limit func() int64
	// Live returns the live heap in bytes; default the runtime's count at
	// the last GC, which runs often as the heap nears the limit.
	Live func() uint64
	// GC refreshes Live while queries are shed: after a large query ends,
	// no collection may run for a long time to notice the freed memory.
	// Default runtime.GC, at most once per refreshInterval.
	GC func()
}

// refreshInterval bounds how often the guard forces a collection.
const refreshInterval = time.Second

// Guard admits and cancels queries by memory.
type Guard struct {
	logger log.Logger
	opts   Options

	mtx     sync.Mutex
	running map[*query]struct{}
	// busy wakes Run when the first query starts: an idle daemon has no
	// ticker running (20 wake-ups a second cost more than all of idle
	// Prometheus).
	busy chan struct{}
	// refreshed is when a shed request last forced a collection.
	refreshed time.Time

	shed, cancelled prometheus.Counter
}

type query struct {
	cancel context.CancelCauseFunc
}

// ErrMemory is the cause of a query cancelled or refused for memory.
var ErrMemory = errors.New("query memory limit")

// New returns a guard; Run checks the running queries.
func New(logger log.Logger, reg prometheus.Registerer, opts Options) *Guard {
	if opts.Limit == nil {
		opts.Limit = func() int64 { return debug.SetMemoryLimit(-1) }
	}
	if opts.Live == nil {
		opts.Live = liveHeap
	}
	if opts.GC == nil {
		opts.GC = runtime.GC
	}
	f := promauto.With(reg)
	return &Guard{
		logger:  logger,
		opts:    opts,
		running: map[*query]struct{}{},
		busy:    make(chan struct{}, 1),
		shed: f.NewCounter(prometheus.CounterOpts{
			Name: "monstackd_query_shed_total",
			Help: "Queries refused with 503 because the live heap was above the shed share of the memory limit.",
		}),
		cancelled: f.NewCounter(prometheus.CounterOpts{
			Name: "monstackd_query_memory_cancelled_total",
			Help: "Running queries cancelled because the live heap reached the cancel share of the memory limit.",
		}),
	}
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// over reports whether the live heap is above ratio of the limit, and both.
func (g *Guard) over(ratio float64) (bool, uint64, int64) {
	limit := g.opts.Limit()
	if ratio <= 0 || limit <= 0 || limit == math.MaxInt64 {
		return false, 0, limit
	}
	live := g.opts.Live()
	return float64(live) > ratio*float64(limit), live, limit
}

// Wrap guards h: a request is refused with 503 while memory is short, and
// answered with 503 if it is cancelled for memory while it runs.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		over, live, limit := g.over(g.opts.ShedRatio)
		if over && g.refresh() {
			over, live, limit = g.over(g.opts.ShedRatio)
		}
		if over {
			g.shed.Inc()
			writeUnavailable(w, fmt.Sprintf("monstackd is shedding queries: live heap %s is above %.0f%% of the memory limit %s; retry later",
				mib(live), 100*g.opts.ShedRatio, mib(uint64(limit))))
			return
		}
		ctx, cancel := context.WithCancelCause(r.Context())
		q := &query{cancel: cancel}
		g.mtx.Lock()
		g.running[q] = struct{}{}
		g.mtx.Unlock()
		select {
		case g.busy <- struct{}{}:
		default:
		}
		defer func() {
			g.mtx.Lock()
			delete(g.running, q)
			g.mtx.Unlock()
			cancel(nil)
		}()
		gw := &guardedWriter{ResponseWriter: w, ctx: ctx}
		h.ServeHTTP(gw, r.WithContext(ctx))
	})
}

// refresh forces a collection, at most once per refreshInterval, so that
// a heap freed by a finished query is seen: with no allocation no GC runs
// to update the live heap figure. It reports whether it collected.
func (g *Guard) refresh() bool {
	g.mtx.Lock()
	if time.Since(g.refreshed) < refreshInterval {
		g.mtx.Unlock()
		return false
	}
	g.refreshed = time.Now()
	g.mtx.Unlock()
	g.opts.GC()
	return true
}

// Run cancels the running queries whenever the live heap reaches the
// cancel share of the limit, until ctx ends. It checks only while queries
// run.
func (g *Guard) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.busy:
		}
		if err := g.watch(ctx); err != nil {
			return err
		}
	}
}

// watch checks every checkInterval until no query runs.
func (g *Guard) watch(ctx context.Context) error {
	t := time.NewTicker(checkInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		over, live, limit := g.over(g.opts.CancelRatio)
		g.mtx.Lock()
		n := len(g.running)
		if !over {
			g.mtx.Unlock()
			if n == 0 {
				return nil
			}
			continue
		}
		g.cancelled.Add(float64(n))
		for q := range g.running {
			q.cancel(fmt.Errorf("%w: live heap %s reached %.0f%% of the memory limit %s; the query was cancelled to protect ingestion",
				ErrMemory, mib(live), 100*g.opts.CancelRatio, mib(uint64(limit))))
			delete(g.running, q)
		}
		g.mtx.Unlock()
		if n > 0 {
			level.Warn(g.logger).Log("msg", "cancelled running queries for memory", "queries", n, "live_heap", mib(live), "limit", mib(uint64(limit)))
		}
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.0fMiB", float64(b)/(1<<20)) }

// guardedWriter replaces the response of a query cancelled for memory (the
// APIs would report a client-side cancellation) with a 503 naming the cause.
type guardedWriter struct {
	http.ResponseWriter
	ctx             context.Context
	wrote, replaced bool
}

func (w *guardedWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if cause := context.Cause(w.ctx); errors.Is(cause, ErrMemory) {
		w.replaced = true
		writeUnavailable(w.ResponseWriter, cause.Error())
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *guardedWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// writeUnavailable answers in the Prometheus API's error format, which
// Grafana and promtool show.
func writeUnavailable(w http.ResponseWriter, msg string) {
	body, _ := json.Marshal(map[string]string{"status": "error", "errorType": "unavailable", "error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(append(body, '\n'))
}
