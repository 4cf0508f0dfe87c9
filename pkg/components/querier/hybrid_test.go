package querier

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/thanos/pkg/component"
	"github.com/thanos-io/thanos/pkg/dedup"
	"github.com/thanos-io/thanos/pkg/query"
	"github.com/thanos-io/thanos/pkg/store"

	mtsdb "github.com/monstackd/monstackd/pkg/components/tsdb"
	"github.com/monstackd/monstackd/pkg/config"
)

const step = 15 * time.Second

// readMode is how the native path attaches the external labels: after the
// read (stock TSDB options) or at the index (monstackd's TSDB options).
type readMode struct {
	name   string
	opts   func() *tsdb.Options
	attach func(context.Context, labels.Labels) context.Context
}

var readModes = []readMode{
	{"after read", tsdb.DefaultOptions, nil},
	{"at index", func() *tsdb.Options { return mtsdb.Options(config.TSDBConfig{}) }, mtsdb.AttachLabels},
}

func (m readMode) local(db *tsdb.DB, ext labels.Labels) *Local {
	return &Local{DB: db, ExternalLabels: func() labels.Labels { return ext }, Attach: m.attach}
}

// openTSDB writes n scrapes of a few gauges and counters, skipping the
// scrapes for which skip returns true (a replica that was down).
func openTSDB(t *testing.T, opts *tsdb.Options, n int, skip func(i int) bool) *tsdb.DB {
	return openTSDBStep(t, opts, n, step, skip)
}

func openTSDBStep(t *testing.T, opts *tsdb.Options, n int, every time.Duration, skip func(i int) bool) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	app := db.Appender(context.Background())
	for i := 0; i < n; i++ {
		if skip(i) {
			continue
		}
		ts := int64(i) * every.Milliseconds()
		for s := 0; s < 4; s++ {
			for _, l := range []labels.Labels{
				labels.FromStrings("__name__", "m", "job", "x", "pod", fmt.Sprint(s)),
				labels.FromStrings("__name__", "c_total", "job", "x", "pod", fmt.Sprint(s)),
			} {
				v := float64(s*100 + i)
				if _, err := app.Append(0, l, ts, v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return db
}

type creator = query.QueryableCreator

func thanosCreator(t testing.TB, clients ...store.Client) creator {
	return thanosCreatorWith(dedup.AlgorithmPenalty, clients...)
}

// thanosCreatorWith is a stock Thanos querier over clients deduplicating
// with algorithm.
func thanosCreatorWith(algorithm string, clients ...store.Client) creator {
	logger := log.NewNopLogger()
	proxy := store.NewProxyStore(logger, prometheus.NewRegistry(), func() []store.Client { return clients },
		component.Query, labels.EmptyLabels(), 0, store.EagerRetrieval)
	return query.NewQueryableCreator(logger, prometheus.NewRegistry(), proxy, 4, time.Minute, algorithm, 64)
}

func tsdbClient(db *tsdb.DB, ext labels.Labels) store.Client {
	return NewLocalClient("test", component.Sidecar, store.NewTSDBStore(log.NewNopLogger(), db, component.Sidecar, ext))
}

func evalAll(t *testing.T, c creator, dedupOn bool, queries []string, end time.Time) map[string]string {
	t.Helper()
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e7, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	qa := c(dedupOn, []string{"replica"}, nil, 0, false, false, nil, query.NoopSeriesStatsReporter)
	out := map[string]string{}
	for _, q := range queries {
		rq, err := engine.NewRangeQuery(context.Background(), qa, nil, q, time.Unix(0, 0), end, step)
		if err != nil {
			t.Fatal(err)
		}
		res := rq.Exec(context.Background())
		if res.Err != nil {
			t.Fatalf("%s: %v", q, res.Err)
		}
		out[q] = res.Value.String()
		rq.Close()
	}
	for _, name := range []string{"cluster", "replica", "pod", "__name__"} {
		qr, err := qa.Querier(0, end.UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		vs, _, err := qr.LabelValues(context.Background(), name, nil, labels.MustNewMatcher(labels.MatchEqual, "job", "x"))
		if err != nil {
			t.Fatal(err)
		}
		out["label values "+name] = fmt.Sprint(vs)
		ns, _, err := qr.LabelNames(context.Background(), nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
		if err != nil {
			t.Fatal(err)
		}
		out["label names"] = fmt.Sprint(ns)
		qr.Close()
	}
	return out
}

var queries = []string{
	`m`,
	`sum(m)`,
	`sum by (pod) (rate(c_total[1m]))`,
	`m{cluster="c1"}`,
	`m{cluster="other"}`,
	`m{replica="a"}`,
	`m{replica=~"a|b"}`,
	`{cluster="c1", pod="2"}`,
	`count(m) by (replica)`,
}

func compare(t *testing.T, want, got map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if want[k] != got[k] {
			t.Errorf("%s:\nThanos path:\n%s\nnative path:\n%s", k, want[k], got[k])
		}
	}
}

// Reading the local TSDB natively answers exactly as Thanos' StoreAPI path
// does, with and without deduplication.
func TestNativeLocalMatchesStoreAPIPath(t *testing.T) {
	ext := labels.FromStrings("cluster", "c1", "replica", "a")
	end := time.Unix(0, 0).Add(39 * step)
	for _, m := range readModes {
		db := openTSDB(t, m.opts(), 40, func(int) bool { return false })
		native := creator(withLocal(m.local(db, ext), func(int64, int64) bool { return false }, thanosCreator(t), nil, nil))
		for _, dedupOn := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/dedup=%t", m.name, dedupOn), func(t *testing.T) {
				compare(t, evalAll(t, thanosCreator(t, tsdbClient(db, ext)), dedupOn, queries, end), evalAll(t, native, dedupOn, queries, end))
			})
		}
	}
}

// With a second replica behind the StoreAPI, the union of the native local
// TSDB and the remote store deduplicates with every gap of each replica
// filled by the other. The replicas here sample at the same instants with
// the same values, so the right answer is their chained merge (Thanos'
// "chain" algorithm); Thanos' penalty algorithm would drop the other
// replica's first two samples after each switch.
func TestNativeLocalWithRemoteReplicaDeduplicates(t *testing.T) {
	extA := labels.FromStrings("cluster", "c1", "replica", "a")
	extB := labels.FromStrings("cluster", "c1", "replica", "b")
	dbB := openTSDB(t, tsdb.DefaultOptions(), 40, func(i int) bool { return i >= 25 && i < 30 }) // B down later
	end := time.Unix(0, 0).Add(39 * step)
	remoteB := tsdbClient(dbB, extB)
	for _, m := range readModes {
		dbA := openTSDB(t, m.opts(), 40, func(i int) bool { return i >= 10 && i < 20 }) // A down for 10 scrapes
		native := creator(withLocal(m.local(dbA, extA), func(int64, int64) bool { return true }, thanosCreator(t, remoteB), nil, nil))
		for _, dedupOn := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/dedup=%t", m.name, dedupOn), func(t *testing.T) {
				want := evalAll(t, thanosCreatorWith(dedup.AlgorithmChain, tsdbClient(dbA, extA), remoteB), dedupOn, queries, end)
				got := evalAll(t, native, dedupOn, queries, end)
				compare(t, want, got)
				if dedupOn && want[`sum(m)`] == "" {
					t.Fatal("empty result")
				}
			})
		}
	}
}
