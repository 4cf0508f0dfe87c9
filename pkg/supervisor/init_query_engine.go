package supervisor

import (
	"sync/atomic"
	"time"

	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/promql"
)

// initQueryEngine builds Prometheus' PromQL engine, used by the rules and by
// Prometheus' own API. The Thanos querier has engines of its own.
func (c *components) initQueryEngine() (parts, error) {
	q := c.cfg.Query
	// A subquery without a step uses the evaluation interval, which follows
	// reloads as in Prometheus.
	var evalInterval atomic.Int64
	evalInterval.Store(time.Duration(c.pcfg.GlobalConfig.EvaluationInterval).Milliseconds())
	c.engine = promql.NewEngine(promql.EngineOpts{
		Logger:                   c.slogger("query engine"),
		Reg:                      c.d.promReg,
		MaxSamples:               q.MaxSamples,
		Timeout:                  time.Duration(q.Timeout),
		ActiveQueryTracker:       promql.NewActiveQueryTracker(c.rt.DataDir, q.MaxConcurrent, c.slogger("activeQueryTracker")),
		LookbackDelta:            time.Duration(q.LookbackDelta),
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		NoStepSubqueryIntervalFn: func(int64) int64 { return evalInterval.Load() },
	})
	return parts{reloaders: []reloader{{name: "query_engine", reload: func(cfg *promconfig.Config) error {
		evalInterval.Store(time.Duration(cfg.GlobalConfig.EvaluationInterval).Milliseconds())
		return nil
	}}}, close: c.engine.Close}, nil
}
