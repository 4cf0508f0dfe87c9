package querier

import (
	"context"
	"errors"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/thanos-io/thanos/pkg/store"
	"github.com/thanos-io/thanos/pkg/store/storepb"

	"github.com/monstackd/monstackd/pkg/dedup"
)

// withLocal wraps Thanos' queryable creators so that every queryable also
// reads the local TSDB natively. remote is the replicas (the peer),
// deduplicated with the local TSDB when hasRemote says they hold data in the
// query's range; history is the stores of what the local TSDB no longer
// holds (the bucket, clamped to the time before the local TSDB's oldest
// sample), chained with it as the same replica's past when hasHistory says
// they hold data in the range: the two never overlap, so concatenation loses
// no sample where penalty deduplication would drop the first samples after
// the switch. history may be nil. R is Thanos' unexported stats reporter
// type, inferred.
func withLocal[R any](
	local *Local,
	hasRemote func(mint, maxt int64) bool,
	remote func(bool, []string, [][]*labels.Matcher, int64, bool, bool, *storepb.ShardInfo, R) storage.Queryable,
	hasHistory func(mint, maxt int64) bool,
	history func(bool, []string, [][]*labels.Matcher, int64, bool, bool, *storepb.ShardInfo, R) storage.Queryable,
) func(bool, []string, [][]*labels.Matcher, int64, bool, bool, *storepb.ShardInfo, R) storage.Queryable {
	return func(deduplicate bool, replicaLabels []string, storeDebugMatchers [][]*labels.Matcher, maxResolutionMillis int64, partialResponse, skipChunks bool, shardInfo *storepb.ShardInfo, reporter R) storage.Queryable {
		return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
			withHistory := history != nil && hasHistory(mint, maxt)
			var own storage.Querier
			if withHistory && maxt < local.minTime() {
				// All before the local TSDB's oldest sample (dashboards
				// over past days): the history answers alone, without a
				// merge with an empty local set. As the merge's only
				// secondary a failing bucket is still a warning.
				hq, err := history(deduplicate, replicaLabels, storeDebugMatchers, maxResolutionMillis, partialResponse, skipChunks, shardInfo, reporter).Querier(mint, maxt)
				if err != nil {
					return nil, err
				}
				own = storage.NewMergeQuerier(nil, []storage.Querier{hq}, storage.ChainedSeriesMerge)
			} else {
				lq, err := local.DB.Querier(mint, maxt)
				if err != nil {
					return nil, err
				}
				own = newLocalQuerier(lq, local.ExternalLabels(), deduplicate, replicaLabels, local.Attach)
				if withHistory {
					hq, err := history(deduplicate, replicaLabels, storeDebugMatchers, maxResolutionMillis, partialResponse, skipChunks, shardInfo, reporter).Querier(mint, maxt)
					if err != nil {
						own.Close()
						return nil, err
					}
					// A failing bucket leaves the local answer with a warning.
					own = storage.NewMergeQuerier([]storage.Querier{own}, []storage.Querier{hq}, storage.ChainedSeriesMerge)
				}
			}
			if !hasRemote(mint, maxt) {
				// This host's TSDB and the bucket hold one replica:
				// nothing to deduplicate.
				return own, nil
			}
			rq, err := remote(deduplicate, replicaLabels, storeDebugMatchers, maxResolutionMillis, partialResponse, skipChunks, shardInfo, reporter).Querier(mint, maxt)
			if err != nil {
				own.Close()
				return nil, err
			}
			return &hybridQuerier{local: own, remote: rq, dedup: deduplicate}, nil
		})
	}
}

// overlapping reports whether one of stores holds data in [mint, maxt].
func overlapping(stores func() []store.Client) func(mint, maxt int64) bool {
	return func(mint, maxt int64) bool {
		for _, s := range stores() {
			if smin, smax := s.TimeRange(); smin <= maxt && mint <= smax {
				return true
			}
		}
		return false
	}
}

// hybridQuerier answers with the local TSDB and the remote stores together,
// deduplicating the replicas with Thanos' penalty algorithm, filling gaps
// from the first sample the other replica has (dedup.NewSet).
type hybridQuerier struct {
	local, remote storage.Querier
	dedup         bool
}

func (h *hybridQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	// Both sorted: replicas of a series must be adjacent for dedup.
	set := newUnionSet(h.local.Select(ctx, true, hints, ms...), h.remote.Select(ctx, true, hints, ms...))
	if !h.dedup {
		// Series with equal labels are one replica from two stores (its
		// TSDB and its blocks in the bucket): one series.
		return dedup.NewGroupSet(set, func(ss []storage.Series) storage.Series { return storage.ChainedSeriesMerge(ss...) })
	}
	fn := ""
	if hints != nil {
		fn = hints.Func
	}
	return dedup.NewSet(set, fn)
}

func (h *hybridQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return mergeStrings(
		func() ([]string, annotations.Annotations, error) { return h.local.LabelValues(ctx, name, hints, ms...) },
		func() ([]string, annotations.Annotations, error) {
			return h.remote.LabelValues(ctx, name, hints, ms...)
		})
}

func (h *hybridQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return mergeStrings(
		func() ([]string, annotations.Annotations, error) { return h.local.LabelNames(ctx, hints, ms...) },
		func() ([]string, annotations.Annotations, error) { return h.remote.LabelNames(ctx, hints, ms...) })
}

func (h *hybridQuerier) Close() error {
	err := h.local.Close()
	if rerr := h.remote.Close(); err == nil {
		err = rerr
	}
	return err
}

func mergeStrings(fs ...func() ([]string, annotations.Annotations, error)) ([]string, annotations.Annotations, error) {
	var (
		out   []string
		warns annotations.Annotations
	)
	for _, f := range fs {
		vs, w, err := f()
		if err != nil {
			return nil, nil, err
		}
		out = append(out, vs...)
		warns.Merge(w)
	}
	slices.Sort(out)
	return slices.Compact(out), warns, nil
}

// unionSet merges two sorted series sets into one sorted set, keeping both
// series when their labels are equal: those are replicas for the
// deduplication that follows, not duplicates to chain. On equal labels the
// second set goes first, which is the order Thanos' proxy gives the same two
// stores, so penalty dedup picks the same replica as a stock querier.
type unionSet struct {
	a, b     storage.SeriesSet
	aok, bok bool
	cur      storage.Series
	started  bool
}

func newUnionSet(a, b storage.SeriesSet) *unionSet { return &unionSet{a: a, b: b} }

func (u *unionSet) Next() bool {
	if !u.started {
		u.aok, u.bok, u.started = u.a.Next(), u.b.Next(), true
	}
	switch {
	case u.aok && (!u.bok || labels.Compare(u.a.At().Labels(), u.b.At().Labels()) < 0):
		u.cur = u.a.At()
		u.aok = u.a.Next()
	case u.bok:
		u.cur = u.b.At()
		u.bok = u.b.Next()
	default:
		return false
	}
	return true
}

func (u *unionSet) At() storage.Series { return u.cur }

func (u *unionSet) Err() error {
	if err := u.a.Err(); err != nil {
		return err
	}
	return u.b.Err()
}

func (u *unionSet) Warnings() annotations.Annotations {
	var w annotations.Annotations
	w.Merge(u.a.Warnings())
	w.Merge(u.b.Warnings())
	return w
}

// unionCreators is a creator whose queriers answer with those of every
// creator whose stores hold data in the range (has), their series sets
// merged in label order. Deduplication is the caller's.
func unionCreators[R any](parts ...creatorPart[R]) (func(mint, maxt int64) bool, func(bool, []string, [][]*labels.Matcher, int64, bool, bool, *storepb.ShardInfo, R) storage.Queryable) {
	has := func(mint, maxt int64) bool {
		for _, p := range parts {
			if p.has(mint, maxt) {
				return true
			}
		}
		return false
	}
	return has, func(deduplicate bool, replicaLabels []string, storeDebugMatchers [][]*labels.Matcher, maxResolutionMillis int64, partialResponse, skipChunks bool, shardInfo *storepb.ShardInfo, reporter R) storage.Queryable {
		return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
			var qs []storage.Querier
			for _, p := range parts {
				if !p.has(mint, maxt) {
					continue
				}
				q, err := p.create(deduplicate, replicaLabels, storeDebugMatchers, maxResolutionMillis, partialResponse, skipChunks, shardInfo, reporter).Querier(mint, maxt)
				if err != nil {
					for _, q := range qs {
						q.Close()
					}
					return nil, err
				}
				qs = append(qs, q)
			}
			return unionQuerier(qs), nil
		})
	}
}

// creatorPart is one of unionCreators' creators and where it has data.
type creatorPart[R any] struct {
	has    func(mint, maxt int64) bool
	create func(bool, []string, [][]*labels.Matcher, int64, bool, bool, *storepb.ShardInfo, R) storage.Queryable
}

// unionQuerier selects from every querier, sorted, keeping series with
// equal labels apart for the deduplication that follows.
type unionQuerier []storage.Querier

func (u unionQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	if len(u) == 0 {
		return storage.EmptySeriesSet()
	}
	set := u[0].Select(ctx, true, hints, ms...)
	for _, q := range u[1:] {
		set = newUnionSet(set, q.Select(ctx, true, hints, ms...))
	}
	return set
}

func (u unionQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	fs := make([]func() ([]string, annotations.Annotations, error), len(u))
	for i, q := range u {
		fs[i] = func() ([]string, annotations.Annotations, error) { return q.LabelValues(ctx, name, hints, ms...) }
	}
	return mergeStrings(fs...)
}

func (u unionQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	fs := make([]func() ([]string, annotations.Annotations, error), len(u))
	for i, q := range u {
		fs[i] = func() ([]string, annotations.Annotations, error) { return q.LabelNames(ctx, hints, ms...) }
	}
	return mergeStrings(fs...)
}

func (u unionQuerier) Close() error {
	var errs []error
	for _, q := range u {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

// part makes a creatorPart, inferring Thanos' unexported reporter type.
func part[R any](has func(mint, maxt int64) bool, create func(bool, []string, [][]*labels.Matcher, int64, bool, bool, *storepb.ShardInfo, R) storage.Queryable) creatorPart[R] {
	return creatorPart[R]{has: has, create: create}
}
