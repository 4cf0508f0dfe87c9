package querier

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/thanos/pkg/component"
	"github.com/thanos-io/thanos/pkg/query"
	"github.com/thanos-io/thanos/pkg/store"
)

// evalRange evaluates q over [start, end] and returns the result and the
// warnings as text.
func evalRange(t *testing.T, c creator, partial bool, q string, start, end time.Time) (string, string) {
	t.Helper()
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e7, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	qa := c(true, []string{"replica"}, nil, 0, partial, false, nil, query.NoopSeriesStatsReporter)
	rq, err := engine.NewRangeQuery(context.Background(), qa, nil, q, start, end, step)
	if err != nil {
		t.Fatal(err)
	}
	defer rq.Close()
	res := rq.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("%s: %v", q, res.Err)
	}
	return res.Value.String(), fmt.Sprint(res.Warnings)
}

// The history (the bucket, before the local TSDB's oldest sample) answers
// alone a query that ends before the local data, and chained with the
// local TSDB one that spans both: the same as Thanos over both stores.
func TestHistoryBeforeAndAcrossLocal(t *testing.T) {
	ext := labels.FromStrings("cluster", "c1", "replica", "a")
	old := openTSDB(t, tsdb.DefaultOptions(), 40, func(i int) bool { return i >= 20 })
	recent := openTSDB(t, tsdb.DefaultOptions(), 40, func(i int) bool { return i < 20 })
	local := &Local{DB: recent, ExternalLabels: func() labels.Labels { return ext }}
	hist := []store.Client{clampBefore(tsdbClient(old, ext), local.minTime)}
	histStores := func() []store.Client { return hist }
	native := creator(withLocal(local, func(int64, int64) bool { return false }, thanosCreator(t), overlapping(histStores), directCreator(hist...)))
	both := thanosCreator(t, tsdbClient(old, ext), tsdbClient(recent, ext))
	t0 := time.Unix(0, 0)
	for _, r := range []struct {
		name       string
		start, end time.Time
	}{
		{"before local", t0, t0.Add(15 * step)},
		{"across", t0.Add(10 * step), t0.Add(39 * step)},
	} {
		for _, q := range queries {
			want, _ := evalRange(t, both, true, q, r.start, r.end)
			got, _ := evalRange(t, native, true, q, r.start, r.end)
			if got != want {
				t.Errorf("%s, %s:\nThanos over both:\n%s\nnative:\n%s", r.name, q, want, got)
			}
		}
	}
}

// A failing bucket leaves a warning, not an error, also when it answers
// alone and partial responses are off.
func TestHistoryAloneFailsWithWarning(t *testing.T) {
	ext := labels.FromStrings("cluster", "c1", "replica", "a")
	old := openTSDB(t, tsdb.DefaultOptions(), 40, func(i int) bool { return i >= 20 })
	recent := openTSDB(t, tsdb.DefaultOptions(), 40, func(i int) bool { return i < 20 })
	local := &Local{DB: recent, ExternalLabels: func() labels.Labels { return ext }}
	failing := NewLocalClient("bucket", component.Store, failingStore{store.NewTSDBStore(log.NewNopLogger(), old, component.Store, ext)})
	hist := []store.Client{clampBefore(failing, local.minTime)}
	native := creator(withLocal(local, func(int64, int64) bool { return false }, thanosCreator(t), overlapping(func() []store.Client { return hist }), directCreator(hist...)))
	t0 := time.Unix(0, 0)
	res, warns := evalRange(t, native, false, "sum(m)", t0, t0.Add(15*step))
	if res != "" {
		t.Errorf("result %q, want none", res)
	}
	if !strings.Contains(warns, "bucket down") {
		t.Errorf("warnings %s, want the bucket's error", warns)
	}
}
