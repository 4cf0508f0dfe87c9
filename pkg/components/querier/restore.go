package querier

import (
	"context"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/thanos-io/thanos/pkg/query"
)

// RestoreQueryable is what the rules manager restores the `for` state of
// alerts from (ALERTS_FOR_STATE): the local TSDB and the peers,
// deduplicated, with the external labels removed as the local TSDB stores
// the series. Prometheus restores from its own TSDB only, so a replica that
// was down shifts each pending alert by its downtime and fires late; here
// the peer's record covers the downtime, and the alert fires when the pair
// would have.
func (q *Querier) RestoreQueryable() storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		qr, err := q.queryable(true, q.replicas, nil, 0, true, false, nil, query.NoopSeriesStatsReporter).Querier(mint, maxt)
		if err != nil {
			return nil, err
		}
		var names []string
		if q.local.ExternalLabels != nil {
			q.local.ExternalLabels().Range(func(l labels.Label) { names = append(names, l.Name) })
		}
		return &withoutLabels{Querier: qr, names: names}, nil
	})
}

// WaitPeers waits until the peers have been asked for their labels and
// ranges once, at most timeout: a rules manager starting before that would
// restore from the local TSDB alone.
func (q *Querier) WaitPeers(ctx context.Context, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-q.updated:
	case <-ctx.Done():
	case <-t.C:
	}
}

// withoutLabels removes names from the labels of every series it selects.
type withoutLabels struct {
	storage.Querier
	names []string
}

// Select keeps the order asked for: every series of the pair carries the
// same external labels but the replica's, which deduplication removed.
func (w *withoutLabels) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &droppedSet{SeriesSet: w.Querier.Select(ctx, sortSeries, hints, ms...), names: w.names}
}

type droppedSet struct {
	storage.SeriesSet
	names []string
}

func (d *droppedSet) At() storage.Series {
	s := d.SeriesSet.At()
	return &relabeled{Series: s, lset: labels.NewBuilder(s.Labels()).Del(d.names...).Labels()}
}

type relabeled struct {
	storage.Series
	lset labels.Labels
}

func (r *relabeled) Labels() labels.Labels { return r.lset }
