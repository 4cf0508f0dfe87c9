package dedup

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
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
	set := newSet(&chunkedSet{list: replicas}, "", end)
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

// chunkedSet is a SeriesSet of chunk series with equal labels, each read
// chunk after chunk: a replica's chain has its chunks in time order, not
// overlapping, so Prometheus' heap of per-chunk iterators
// (NewSeriesSetFromChunkSeriesSet), which cost as much as the decoding, is
// not needed.
type chunkedSet struct {
	list []storage.ChunkSeries
	i    int
}

func (l *chunkedSet) Next() bool                        { l.i++; return l.i <= len(l.list) }
func (l *chunkedSet) At() storage.Series                { return chunkedSeries{l.list[l.i-1]} }
func (l *chunkedSet) Err() error                        { return nil }
func (l *chunkedSet) Warnings() annotations.Annotations { return nil }

type chunkedSeries struct{ storage.ChunkSeries }

func (s chunkedSeries) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	return &chunksIterator{chunks: s.ChunkSeries.Iterator(nil)}
}

// chunksIterator reads the samples of time-ordered chunks in turn. A chunk
// that starts before the previous one ended (out-of-order data) ends the
// series with an error rather than a silently wrong merge.
type chunksIterator struct {
	chunks  chunks.Iterator
	cur     chunkenc.Iterator
	lastMax int64
	started bool
	err     error
}

func (it *chunksIterator) Next() chunkenc.ValueType {
	for it.err == nil {
		if it.cur != nil {
			if vt := it.cur.Next(); vt != chunkenc.ValNone {
				return vt
			}
			if err := it.cur.Err(); err != nil {
				it.err = err
				break
			}
		}
		if !it.chunks.Next() {
			it.err = it.chunks.Err()
			break
		}
		m := it.chunks.At()
		if it.started && m.MinTime <= it.lastMax {
			it.err = fmt.Errorf("chunk [%d, %d] overlaps the previous one, which ends at %d", m.MinTime, m.MaxTime, it.lastMax)
			break
		}
		it.started, it.lastMax = true, m.MaxTime
		it.cur = m.Chunk.Iterator(it.cur)
	}
	return chunkenc.ValNone
}

func (it *chunksIterator) Seek(t int64) chunkenc.ValueType {
	if it.cur != nil && it.cur.AtT() >= t {
		return it.cur.Seek(t)
	}
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if it.cur.AtT() >= t {
			return vt
		}
	}
	return chunkenc.ValNone
}

func (it *chunksIterator) At() (int64, float64) { return it.cur.At() }
func (it *chunksIterator) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	return it.cur.AtHistogram(h)
}
func (it *chunksIterator) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return it.cur.AtFloatHistogram(fh)
}
func (it *chunksIterator) AtT() int64 { return it.cur.AtT() }
func (it *chunksIterator) Err() error { return it.err }
