package tsdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
)

// recheckInterval bounds how often the free space is read: appenders are
// taken once per scrape and rule evaluation, a statfs costs microseconds.
const recheckInterval = 100 * time.Millisecond

// ErrDiskFull is returned by appends while they are paused for disk space.
var ErrDiskFull = errors.New("appends paused: free disk space below the reserve")

// DiskGuard pauses appends while the free space under the TSDB directory is
// below a reserve. A full disk otherwise fails WAL writes and then makes
// the head's chunk writer panic, which ends the process; with the reserve
// the TSDB stops taking samples first, keeps serving what it has, and
// resumes when space returns.
type DiskGuard struct {
	dir     string
	reserve uint64
	// OnChange is told when appends pause or resume (readiness).
	onChange func(paused bool, reason string)
	free     func(dir string) (uint64, error)

	checked atomic.Int64 // unix nanos of the last check
	paused  atomic.Bool
	mtx     sync.Mutex // serialises checks and transitions

	freeBytes prometheus.Gauge
	pausedG   prometheus.Gauge
	dropped   prometheus.Counter
}

// NewDiskGuard guards dir with reserve bytes; reserve 0 disables it.
func NewDiskGuard(dir string, reserve uint64, reg prometheus.Registerer, onChange func(paused bool, reason string)) *DiskGuard {
	f := promauto.With(reg)
	return &DiskGuard{
		dir: dir, reserve: reserve, onChange: onChange, free: freeSpace,
		freeBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "monstackd_tsdb_free_bytes",
			Help: "Free disk space under the TSDB directory, as last checked.",
		}),
		pausedG: f.NewGauge(prometheus.GaugeOpts{
			Name: "monstackd_tsdb_appends_paused",
			Help: "1 while appends are paused because free disk space is below tsdb.min_free_space (or a write found the disk full).",
		}),
		dropped: f.NewCounter(prometheus.CounterOpts{
			Name: "monstackd_tsdb_appends_rejected_total",
			Help: "Appender transactions (scrapes, rule evaluations) rejected while appends were paused for disk space.",
		}),
	}
}

func freeSpace(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// CheckStart refuses to open the TSDB on a disk below the reserve: the WAL
// replay and repair would fail half-way and leave debris behind.
func (g *DiskGuard) CheckStart() error {
	if g.reserve == 0 {
		return nil
	}
	free, err := g.free(g.dir)
	if err != nil {
		return err
	}
	g.freeBytes.Set(float64(free))
	if free < g.reserve {
		return fmt.Errorf("not enough free disk space to open the TSDB in %s: %s free, below tsdb.min_free_space %s; free some space (or lower the reserve) and start again",
			g.dir, size(free), size(g.reserve))
	}
	return nil
}

// check refreshes the paused state at most every recheckInterval, or at
// once when force is set (a write just failed).
func (g *DiskGuard) check(force bool) bool {
	now := time.Now().UnixNano()
	if !force && now-g.checked.Load() < int64(recheckInterval) {
		return g.paused.Load()
	}
	g.mtx.Lock()
	defer g.mtx.Unlock()
	if !force && now-g.checked.Load() < int64(recheckInterval) {
		return g.paused.Load()
	}
	g.checked.Store(now)
	free, err := g.free(g.dir)
	if err != nil {
		return g.paused.Load()
	}
	g.freeBytes.Set(float64(free))
	// Resume only with some headroom above the reserve, so that appends
	// do not flap around it.
	paused := g.paused.Load()
	switch {
	case force || free < g.reserve:
		paused = true
	case free >= g.reserve+g.reserve/4:
		paused = false
	}
	if paused != g.paused.Load() {
		g.paused.Store(paused)
		if paused {
			g.pausedG.Set(1)
			g.onChange(true, fmt.Sprintf("appends paused: %s free under %s, below tsdb.min_free_space %s; queries are still served", size(free), g.dir, size(g.reserve)))
		} else {
			g.pausedG.Set(0)
			g.onChange(false, "")
		}
	}
	return paused
}

// Appendable returns next guarded: while paused, appenders reject every
// sample without touching the TSDB (a head appender's rollback would still
// write series records to the WAL).
func (g *DiskGuard) Appendable(next storage.Appendable) storage.Appendable {
	if g == nil || g.reserve == 0 {
		return next
	}
	return appendableFunc(func(ctx context.Context) storage.Appender {
		if g.check(false) {
			g.dropped.Inc()
			return pausedAppender{}
		}
		return &watchedAppender{Appender: next.Appender(ctx), g: g}
	})
}

type appendableFunc func(context.Context) storage.Appender

func (f appendableFunc) Appender(ctx context.Context) storage.Appender { return f(ctx) }

// watchedAppender pauses appends at once when a commit finds the disk full.
type watchedAppender struct {
	storage.Appender
	g *DiskGuard
}

func (a *watchedAppender) Commit() error {
	err := a.Appender.Commit()
	if errors.Is(err, syscall.ENOSPC) {
		a.g.check(true)
	}
	return err
}

// pausedAppender rejects everything.
type pausedAppender struct{}

var _ storage.Appender = pausedAppender{}

func (pausedAppender) Append(storage.SeriesRef, labels.Labels, int64, float64) (storage.SeriesRef, error) {
	return 0, ErrDiskFull
}
func (pausedAppender) SetOptions(*storage.AppendOptions) {}
func (pausedAppender) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, ErrDiskFull
}
func (pausedAppender) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, ErrDiskFull
}
func (pausedAppender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, ErrDiskFull
}
func (pausedAppender) UpdateMetadata(storage.SeriesRef, labels.Labels, metadata.Metadata) (storage.SeriesRef, error) {
	return 0, ErrDiskFull
}
func (pausedAppender) AppendSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64) (storage.SeriesRef, error) {
	return 0, ErrDiskFull
}
func (pausedAppender) Commit() error   { return ErrDiskFull }
func (pausedAppender) Rollback() error { return nil }

func size(b uint64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
