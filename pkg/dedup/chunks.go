package dedup

import (
	"cmp"
	"math"
	"slices"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// ChunkSeriesMerge is the compactor's vertical merge of one series' replicas
// (their blocks' chunk series, with equal labels): the samples NewSet's
// algorithm picks, encoded again into chunks. Thanos' penalty chunk merger
// runs its algorithm per group of overlapping chunks, starting afresh at
// each, and keeps both replicas' samples where groups meet (one extra
// sample per 120); here the blocks are first chained into replicas, as the
// querier sees them, and one deduplication runs over the whole series, so
// the merged block answers as the querier did over the replicas.
//
// Series whose blocks do not overlap in time (a replica's consecutive
// blocks) are concatenated as by Prometheus' compactor, chunks untouched.
func ChunkSeriesMerge(series ...storage.ChunkSeries) storage.ChunkSeries {
	chains, end := chain(series)
	if len(chains) < 2 {
		return concat(series...)
	}
	replicas := make([]storage.ChunkSeries, len(chains))
	for i, c := range chains {
		replicas[i] = concat(c...)
	}
	set := newSet(storage.NewSeriesSetFromChunkSeriesSet(&chunkSeriesList{list: replicas}), "", end)
	set.Next()
	return storage.NewSeriesToChunkEncoder(set.At())
}

var concat = storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge)

// chain splits the series into chains of series that do not overlap in
// time, first fit in the order they start: a replica's consecutive blocks
// form one chain, an overlapping block (the other replica's) starts
// another. It also returns the last sample time of all. Reading the
// chunks' metadata decodes nothing.
func chain(series []storage.ChunkSeries) ([][]storage.ChunkSeries, int64) {
	type span struct {
		s        storage.ChunkSeries
		min, max int64
	}
	spans := make([]span, 0, len(series))
	end := int64(math.MinInt64)
	for _, s := range series {
		sp := span{s, math.MaxInt64, math.MinInt64}
		for it := s.Iterator(nil); it.Next(); {
			m := it.At()
			sp.min, sp.max = min(sp.min, m.MinTime), max(sp.max, m.MaxTime)
		}
		spans = append(spans, sp)
		end = max(end, sp.max)
	}
	slices.SortStableFunc(spans, func(a, b span) int { return cmp.Compare(a.min, b.min) })
	var (
		chains [][]storage.ChunkSeries
		ends   []int64
	)
next:
	for _, sp := range spans {
		for i := range chains {
			if ends[i] < sp.min {
				chains[i], ends[i] = append(chains[i], sp.s), sp.max
				continue next
			}
		}
		chains, ends = append(chains, []storage.ChunkSeries{sp.s}), append(ends, sp.max)
	}
	return chains, end
}

// chunkSeriesList is a ChunkSeriesSet of series with equal labels.
type chunkSeriesList struct {
	list []storage.ChunkSeries
	i    int
}

func (l *chunkSeriesList) Next() bool                        { l.i++; return l.i <= len(l.list) }
func (l *chunkSeriesList) At() storage.ChunkSeries           { return l.list[l.i-1] }
func (l *chunkSeriesList) Err() error                        { return nil }
func (l *chunkSeriesList) Warnings() annotations.Annotations { return nil }
