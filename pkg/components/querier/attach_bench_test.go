package querier

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/thanos/pkg/query"
)

// BenchmarkLocalRangeQuery runs range queries over 20k head series through
// the querier's local path, with the two ways of attaching the external
// labels, and straight on the TSDB as Prometheus does (the floor).
func BenchmarkLocalRangeQuery(b *testing.B) {
	ext := labels.FromStrings("cluster", "c1", "replica", "a")
	for _, m := range readModes {
		db, err := tsdb.Open(b.TempDir(), nil, nil, m.opts(), nil)
		if err != nil {
			b.Fatal(err)
		}
		app := db.Appender(context.Background())
		for i := 0; i < 40; i++ {
			for s := 0; s < 20000; s++ {
				l := labels.FromStrings("__name__", "m", "instance", "target-1:9100", "job", "bench", "namespace", "ns-1",
					"pod", fmt.Sprintf("pod-%d", s), "service", fmt.Sprintf("svc-%d", s%20), "shard", fmt.Sprint(s%10))
				if _, err := app.Append(0, l, int64(i)*step.Milliseconds(), float64(i*s)); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
		engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e8, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
		qas := []namedQueryable{{m.name, withLocal(m.local(db, ext), func(int64, int64) bool { return false }, thanosCreator(b), nil, nil)(true, []string{"replica"}, nil, 0, false, false, nil, query.NoopSeriesStatsReporter)}}
		if m.attach != nil {
			qas = append(qas, namedQueryable{"prometheus direct", db})
		}
		for _, qa := range qas {
			for _, q := range []string{`sum by (shard) (m)`, `sum by (service) (rate(m[5m]))`} {
				b.Run(qa.name+"/"+q, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						rq, err := engine.NewRangeQuery(context.Background(), qa.qa, nil, q, time.Unix(0, 0), time.Unix(0, 0).Add(39*step), step)
						if err != nil {
							b.Fatal(err)
						}
						if res := rq.Exec(context.Background()); res.Err != nil {
							b.Fatal(res.Err)
						}
						rq.Close()
					}
				})
			}
		}
		db.Close()
	}
}

type namedQueryable struct {
	name string
	qa   storage.Queryable
}
