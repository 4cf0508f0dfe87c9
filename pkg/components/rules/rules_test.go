package rules_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/util/teststorage"

	"github.com/monstackd/monstackd/pkg/components/rules"
	"github.com/monstackd/monstackd/pkg/config"
	"github.com/monstackd/monstackd/pkg/supervisor"
)

// A panic in the rule manager restarts the rules service with a fresh
// manager that has the rule files loaded: rules evaluate again afterwards,
// and the process (here: the test binary) survives.
func TestPanicRestartsRuleManager(t *testing.T) {
	st := teststorage.New(t)
	t.Cleanup(func() { st.Close() })
	dir := t.TempDir()
	ruleFile := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(ruleFile, []byte("groups:\n  - name: g\n    interval: 20ms\n    rules:\n      - record: test:one\n        expr: vector(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var calls, panicked atomic.Int64
	var panicAt atomic.Int64
	query := func(ctx context.Context, q string, ts time.Time) (promql.Vector, error) {
		if calls.Add(1) == 3 {
			panicAt.Store(ts.UnixMilli())
			panicked.Add(1)
			panic("boom")
		}
		return promql.Vector{{F: 1, T: timestamp.FromTime(ts), Metric: labels.EmptyLabels()}}, nil
	}
	logger := promslog.NewNopLogger()
	reg := prometheus.NewRegistry()
	u, _ := url.Parse("http://localhost:9090")
	r := rules.New(rules.Options{
		Logger:      logger,
		Registerer:  reg,
		Config:      config.Default().Rules,
		Storage:     st,
		Appendable:  st,
		QueryFunc:   query,
		Notifier:    notifier.NewManager(&notifier.Options{Registerer: reg}, promconfig.DefaultGlobalConfig.MetricNameValidationScheme, logger),
		ExternalURL: u,
	})
	pcfg := promconfig.DefaultConfig
	pcfg.RuleFiles = []string{ruleFile}
	if err := r.ApplyConfig(&pcfg); err != nil {
		t.Fatal(err)
	}

	greg := prometheus.NewRegistry()
	readiness := supervisor.NewReadiness()
	g := supervisor.NewGroup(log.NewNopLogger(), greg, readiness, supervisor.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond})
	g.AddService("rules", r.Run)
	stop := make(chan struct{})
	g.Add("test", func() error { <-stop; return nil }, func(error) {})
	done := make(chan error, 1)
	go func() { done <- g.Run() }()

	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("rules evaluated %d times, want 10 with a restart after the panic", calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if panicked.Load() != 1 {
		t.Fatalf("%d panics, want 1", panicked.Load())
	}
	if v := counter(t, greg, "monstackd_component_restarts_total"); v != 1 {
		t.Errorf("rules restarted %v times, want 1", v)
	}
	// The fresh manager wrote the recording rule after the panic.
	q, err := st.Querier(panicAt.Load()+1, time.Now().Add(time.Minute).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "test:one"))
	n := 0
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for it.Next() != 0 {
			n++
		}
	}
	if n == 0 {
		t.Errorf("no test:one sample written after the panic at %d", panicAt.Load())
	}
}

// counter sums the counter name gathered from reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}
