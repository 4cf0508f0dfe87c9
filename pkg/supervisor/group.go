// Package supervisor owns monstackd's run group: the order in which the
// in-process components start and stop, restart-with-backoff for non-critical
// components, readiness, signals and the reload fan-out.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Backoff bounds the wait between restarts of a failing non-critical actor.
type Backoff struct {
	Min, Max time.Duration
}

// defaultBackoff doubles from 1s to 1m.
var defaultBackoff = Backoff{Min: time.Second, Max: time.Minute}

func (b Backoff) next(cur time.Duration) time.Duration {
	if cur < b.Min {
		return b.Min
	}
	if cur *= 2; cur > b.Max {
		return b.Max
	}
	return cur
}

// Group is an oklog/run group in which critical actors end the process when
// they return, and non-critical ones are restarted with backoff.
type Group struct {
	g         run.Group
	logger    log.Logger
	readiness *Readiness
	backoff   Backoff
	names     []string

	up       *prometheus.GaugeVec
	restarts *prometheus.CounterVec
	panics   *prometheus.CounterVec
}

// NewGroup returns an empty group whose metrics go to reg.
func NewGroup(logger log.Logger, reg prometheus.Registerer, readiness *Readiness, backoff Backoff) *Group {
	if backoff.Min <= 0 {
		backoff.Min = defaultBackoff.Min
	}
	if backoff.Max < backoff.Min {
		backoff.Max = backoff.Min
	}
	f := promauto.With(reg)
	return &Group{
		logger:    logger,
		readiness: readiness,
		backoff:   backoff,
		up: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "monstackd_component_up",
			Help: "Whether an in-process component is running (1) or failed and waiting to restart (0).",
		}, []string{"name"}),
		restarts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "monstackd_component_restarts_total",
			Help: "Restarts of a non-critical component after it failed.",
		}, []string{"name"}),
		panics: f.NewCounterVec(prometheus.CounterOpts{
			Name: "monstackd_component_panics_total",
			Help: "Panics recovered in a non-critical component.",
		}, []string{"name"}),
	}
}

// Add adds a critical actor: when execute returns, the whole group stops.
func (g *Group) Add(name string, execute func() error, interrupt func(error)) {
	g.names = append(g.names, name)
	g.g.Add(func() error {
		g.up.WithLabelValues(name).Set(1)
		err := execute()
		g.up.WithLabelValues(name).Set(0)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}, interrupt)
}

// AddService adds a non-critical actor. run must return when ctx ends; if it
// returns earlier (with or without error) or panics, it is logged, counted,
// reported in the readiness detail and started again after a backoff, without
// disturbing the other actors.
func (g *Group) AddService(name string, run func(ctx context.Context) error) {
	g.names = append(g.names, name)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	logger := log.With(g.logger, "component", name)
	g.g.Add(func() error {
		defer close(done)
		var wait time.Duration
		for {
			g.up.WithLabelValues(name).Set(1)
			g.readiness.SetDegraded(name, nil)
			started := time.Now()
			err := g.runOnce(ctx, name, run)
			if ctx.Err() != nil {
				g.up.WithLabelValues(name).Set(0)
				return nil
			}
			if err == nil {
				err = errors.New("returned unexpectedly")
			}
			// A run that lasted longer than the longest backoff was healthy:
			// its failure starts the backoff over.
			if time.Since(started) > g.backoff.Max {
				wait = 0
			}
			wait = g.backoff.next(wait)
			g.up.WithLabelValues(name).Set(0)
			g.restarts.WithLabelValues(name).Inc()
			g.readiness.SetDegraded(name, fmt.Errorf("failed, restarting in %s: %w", wait, err))
			level.Error(logger).Log("msg", "component failed; restarting with backoff", "err", err, "backoff", wait)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	}, func(error) {
		// Waiting makes shutdown follow the Add order: a service stops
		// before the actors added after it are interrupted.
		cancel()
		<-done
	})
}

func (g *Group) runOnce(ctx context.Context, name string, run func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			g.panics.WithLabelValues(name).Inc()
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return run(ctx)
}

// Names lists the actors in the order they were added (interrupt order).
func (g *Group) Names() []string { return slices.Clone(g.names) }

// Run runs all actors until the first critical one returns, then interrupts
// all of them in the order they were added.
func (g *Group) Run() error { return g.g.Run() }
