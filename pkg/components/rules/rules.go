// Package rules evaluates recording and alerting rules on the local TSDB and
// sends alerts to Alertmanager through Prometheus' notifier.
package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/monstackd/monstackd/pkg/config"
)

// Options configure rule evaluation.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Config     config.RulesConfig
	// ForGracePeriod is config.ForGrace.
	ForGracePeriod time.Duration
	// Storage is where alerts' `for` state is restored from.
	Storage storage.Queryable
	// BeforeRun, if set, is waited for before the first evaluation (the
	// restore): the peers' data must be reachable first.
	BeforeRun func(context.Context)
	// Appendable receives recording rules' samples and alert states.
	Appendable  storage.Appendable
	QueryFunc   rules.QueryFunc
	Notifier    *notifier.Manager
	ExternalURL *url.URL
}

// Rules evaluates rules as a restartable service: each Run starts a fresh
// rule manager with the last applied rule files, so a restart after a panic
// really starts over (a stopped manager cannot run again).
type Rules struct {
	opts    Options
	metrics *rules.Metrics
	// panics carries a panic recovered in a rule evaluation or notification
	// to Run, which then fails and is restarted by the supervisor.
	panics chan error

	mtx     sync.Mutex
	manager *rules.Manager
	used    bool    // manager has run; the next Run needs a new one
	applied *update // last applied rules config, replayed on a new manager
}

type update struct {
	interval time.Duration
	files    []string
	extLset  labels.Labels
}

// New builds the rules service. QueryFunc is usually EngineQueryFunc.
func New(opts Options) *Rules {
	r := &Rules{opts: opts, metrics: rules.NewGroupMetrics(opts.Registerer), panics: make(chan error, 1)}
	r.manager = r.newManager()
	return r
}

// EngineQueryFunc evaluates rule expressions with engine over st.
func EngineQueryFunc(engine *promql.Engine, st storage.Queryable) rules.QueryFunc {
	return rules.EngineQueryFunc(engine, st)
}

func (r *Rules) newManager() *rules.Manager {
	o := r.opts
	return rules.NewManager(&rules.ManagerOptions{
		Appendable:      o.Appendable,
		Queryable:       o.Storage,
		QueryFunc:       r.recoverQuery(o.QueryFunc),
		NotifyFunc:      r.recoverNotify(rules.SendAlerts(o.Notifier, o.ExternalURL.String())),
		Context:         context.Background(),
		ExternalURL:     o.ExternalURL,
		Metrics:         r.metrics,
		Logger:          o.Logger,
		OutageTolerance: time.Duration(o.Config.OutageTolerance),
		ForGracePeriod:  o.ForGracePeriod,
		ResendDelay:     time.Duration(o.Config.ResendDelay),
	})
}

// recoverQuery keeps a panic in an evaluation from ending the process: the
// evaluation fails and the service restarts.
func (r *Rules) recoverQuery(f rules.QueryFunc) rules.QueryFunc {
	return func(ctx context.Context, q string, t time.Time) (v promql.Vector, err error) {
		defer r.recoverPanic("rule evaluation", &err)
		return f(ctx, q, t)
	}
}

func (r *Rules) recoverNotify(f rules.NotifyFunc) rules.NotifyFunc {
	return func(ctx context.Context, expr string, alerts ...*rules.Alert) {
		var err error
		defer r.recoverPanic("alert notification", &err)
		f(ctx, expr, alerts...)
	}
}

func (r *Rules) recoverPanic(what string, err *error) {
	p := recover()
	if p == nil {
		return
	}
	*err = fmt.Errorf("%s panicked: %v", what, p)
	select {
	case r.panics <- fmt.Errorf("%w\n%s", *err, debug.Stack()):
	default: // a restart is already due
	}
}

// Manager returns the running rule manager, for the HTTP API.
func (r *Rules) Manager() *rules.Manager {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	return r.manager
}

// ApplyConfig loads the rule files of cfg.
func (r *Rules) ApplyConfig(cfg *promconfig.Config) error {
	files, err := config.RuleFiles(cfg)
	if err != nil {
		return err
	}
	u := &update{interval: time.Duration(cfg.GlobalConfig.EvaluationInterval), files: files, extLset: cfg.GlobalConfig.ExternalLabels}
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if err := r.apply(r.manager, u); err != nil {
		return err
	}
	r.applied = u
	return nil
}

func (r *Rules) apply(m *rules.Manager, u *update) error {
	return m.Update(u.interval, u.files, u.extLset, r.opts.ExternalURL.String(), nil)
}

// Run evaluates rules until ctx ends, or returns the first panic recovered
// in an evaluation.
func (r *Rules) Run(ctx context.Context) error {
	m, err := r.start()
	if err != nil {
		return err
	}
	if r.opts.BeforeRun != nil {
		r.opts.BeforeRun(ctx)
	}
	done := make(chan struct{})
	go func() { defer close(done); m.Run() }()
	select {
	case <-ctx.Done():
		err = nil
	case err = <-r.panics:
	}
	m.Stop()
	<-done
	return err
}

// start returns a manager that has not run yet, loaded with the last config.
func (r *Rules) start() (*rules.Manager, error) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	// Drop a panic that raced with the previous Run's end.
	select {
	case <-r.panics:
	default:
	}
	if r.used {
		m := r.newManager()
		if r.applied != nil {
			if err := r.apply(m, r.applied); err != nil {
				return nil, errors.Join(errors.New("reload rules on restart"), err)
			}
		}
		r.manager = m
	}
	r.used = true
	return r.manager, nil
}
