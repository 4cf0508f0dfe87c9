package querier

import (
	"context"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// Local is this host's TSDB as the querier reads it: natively, with the
// external labels attached, without the StoreAPI round trip that re-encodes
// every chunk (the largest cost of a query on the head; DESIGN.md §3.5).
type Local struct {
	DB             storage.Queryable
	ExternalLabels func() labels.Labels
	// Attach, when set, returns a context under which DB's Select adds the
	// labels as it reads each series (the TSDB's AttachLabels); otherwise
	// they are added to each series after the read, a second copy.
	Attach func(context.Context, labels.Labels) context.Context
}

// localQuerier reads the TSDB and attaches the external labels. With
// deduplication the replica labels are left out, as Thanos' stores do when
// asked for series without replica labels.
type localQuerier struct {
	q      storage.Querier
	ext    labels.Labels // all external labels, for matching
	attach labels.Labels // external labels added to every series
	// withAttach is Local.Attach, unset when some series has a label named
	// like one of attach: overriding it at the index could reorder them.
	withAttach func(context.Context, labels.Labels) context.Context
	checkOnce  sync.Once
}

func newLocalQuerier(q storage.Querier, ext labels.Labels, dedup bool, replicaLabels []string, withAttach func(context.Context, labels.Labels) context.Context) *localQuerier {
	attach := ext
	if dedup {
		b := labels.NewBuilder(ext)
		b.Del(replicaLabels...)
		attach = b.Labels()
	}
	return &localQuerier{q: q, ext: ext, attach: attach, withAttach: withAttach}
}

// attachAtIndex reports whether Select can have the TSDB add the labels.
func (l *localQuerier) attachAtIndex(ctx context.Context) bool {
	l.checkOnce.Do(func() {
		if l.withAttach == nil {
			return
		}
		names, _, err := l.q.LabelNames(ctx, nil)
		if err != nil {
			l.withAttach = nil
			return
		}
		for _, n := range names {
			if l.attach.Has(n) {
				l.withAttach = nil
				return
			}
		}
	})
	return l.withAttach != nil
}

// splitMatchers checks the matchers on external labels against their values
// and returns the others for the TSDB; ok is false when no series can match.
func (l *localQuerier) splitMatchers(ms []*labels.Matcher) (rest []*labels.Matcher, ok bool) {
	for _, m := range ms {
		if l.ext.Has(m.Name) {
			if !m.Matches(l.ext.Get(m.Name)) {
				return nil, false
			}
			continue
		}
		rest = append(rest, m)
	}
	return rest, true
}

// matchAll selects every series when only external labels were matched.
var matchAll = labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+")

func (l *localQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	rest, ok := l.splitMatchers(ms)
	if !ok {
		return storage.EmptySeriesSet()
	}
	if len(rest) == 0 {
		rest = []*labels.Matcher{matchAll}
	}
	if l.attach.IsEmpty() {
		return l.q.Select(ctx, sortSeries, hints, rest...)
	}
	if l.attachAtIndex(ctx) {
		return l.q.Select(l.withAttach(ctx, l.attach), sortSeries, hints, rest...)
	}
	set := l.q.Select(ctx, sortSeries, hints, rest...)
	return &extSeriesSet{SeriesSet: set, attach: l.attach, b: labels.NewBuilder(labels.EmptyLabels())}
}

func (l *localQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	rest, ok := l.splitMatchers(ms)
	if !ok {
		return nil, nil, nil
	}
	if l.attach.Has(name) {
		return []string{l.attach.Get(name)}, nil, nil
	}
	return l.q.LabelValues(ctx, name, hints, rest...)
}

func (l *localQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	rest, ok := l.splitMatchers(ms)
	if !ok {
		return nil, nil, nil
	}
	names, warns, err := l.q.LabelNames(ctx, hints, rest...)
	if err != nil || l.attach.IsEmpty() {
		return names, warns, err
	}
	l.attach.Range(func(lb labels.Label) { names = append(names, lb.Name) })
	slices.Sort(names)
	return slices.Compact(names), warns, nil
}

func (l *localQuerier) Close() error { return l.q.Close() }

// extSeriesSet attaches the external labels. They take precedence over a
// series' own label of the same name, as in Thanos' TSDBStore; adding the
// same labels to every series keeps the set's order.
type extSeriesSet struct {
	storage.SeriesSet
	attach labels.Labels
	b      *labels.Builder
	cur    storage.Series
}

func (s *extSeriesSet) Next() bool {
	if !s.SeriesSet.Next() {
		return false
	}
	series := s.SeriesSet.At()
	s.b.Reset(series.Labels())
	s.attach.Range(func(l labels.Label) { s.b.Set(l.Name, l.Value) })
	s.cur = labeledSeries{Series: series, lset: s.b.Labels()}
	return true
}

func (s *extSeriesSet) At() storage.Series { return s.cur }

type labeledSeries struct {
	storage.Series
	lset labels.Labels
}

func (s labeledSeries) Labels() labels.Labels { return s.lset }
