// Package dedup deduplicates the replicas of a series: at query time (the
// querier) and in vertical compaction (the compactor), with one algorithm,
// so that a query over the compactor's merged block answers as the
// querier's deduplication did over the replicas' blocks.
package dedup

import (
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
)

// NewSet deduplicates the replicas of each series in set, which must be
// sorted with the replica labels already removed, so that replicas are
// adjacent. It follows Thanos' penalty algorithm (dedup.NewSeriesSet with
// AlgorithmPenalty): one replica is followed while it has samples, the
// other fills where it has none, and counters are adjusted where the answer
// switches replicas, so that no reset is invented.
//
// One difference: upstream seeks the other replica two of the followed
// replica's intervals past the last sample, so every gap it fills starts
// with up to two intervals of nothing (thanos-io/thanos#981), and a replica
// that was down leaves that hole in every answer. Here, once the followed
// replica's next sample is late (more than 1.5 of its intervals away), the
// other replica's first sample after the last one is used: with the same
// scrape interval it has one in every interval, so no distance between
// samples exceeds an interval. While the followed replica keeps its cadence
// it alone is returned, as upstream, so the sample rate is not doubled.
func NewSet(set storage.SeriesSet, fn string) storage.SeriesSet {
	return newSet(set, fn, math.MaxInt64)
}

// newSet is NewSet over data that ends at end: a replica that stops less
// than 1.5 of its intervals before it is not known to be late, so the
// other's last samples are not added (a block's replicas, scraping out of
// phase, end apart; the replica followed goes on in the next block).
func newSet(set storage.SeriesSet, fn string, end int64) storage.SeriesSet {
	counter := isCounterFunc(fn)
	return NewGroupSet(set, func(replicas []storage.Series) storage.Series {
		return &dedupSeries{replicas: replicas, counter: counter, end: end}
	})
}

// NewGroupSet groups adjacent series with equal labels with merge; a
// series alone is returned as it is.
func NewGroupSet(set storage.SeriesSet, merge func([]storage.Series) storage.Series) storage.SeriesSet {
	s := &dedupSet{set: set, merge: merge}
	s.ok = set.Next()
	if s.ok {
		s.peek = set.At()
	}
	return s
}

// isCounterFunc reports whether a selector's samples feed a function that
// reads them as a counter (Thanos decides the same way).
func isCounterFunc(fn string) bool {
	return fn == "increase" || fn == "rate" || fn == "irate" || fn == "resets"
}

type dedupSet struct {
	set      storage.SeriesSet
	merge    func([]storage.Series) storage.Series
	ok       bool
	peek     storage.Series
	replicas []storage.Series
}

func (s *dedupSet) Next() bool {
	if !s.ok {
		return false
	}
	s.replicas = append(s.replicas[:0], s.peek)
	lset := s.peek.Labels()
	for s.ok = s.set.Next(); s.ok; s.ok = s.set.Next() {
		s.peek = s.set.At()
		if !labels.Equal(lset, s.peek.Labels()) {
			break
		}
		s.replicas = append(s.replicas, s.peek)
	}
	return true
}

func (s *dedupSet) At() storage.Series {
	if len(s.replicas) == 1 {
		return s.replicas[0]
	}
	// Callers may keep the series past Next.
	return s.merge(append([]storage.Series(nil), s.replicas...))
}

func (s *dedupSet) Err() error                        { return s.set.Err() }
func (s *dedupSet) Warnings() annotations.Annotations { return s.set.Warnings() }

type dedupSeries struct {
	replicas []storage.Series
	counter  bool
	end      int64
}

func (s *dedupSeries) Labels() labels.Labels { return s.replicas[0].Labels() }

func (s *dedupSeries) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	interval := firstInterval(s.replicas)
	var it adjustable = s.wrap(s.replicas[0])
	for _, r := range s.replicas[1:] {
		d := newDedupIterator(it, s.wrap(r), s.end)
		d.interval = interval
		it = d
	}
	return it
}

// firstInterval is the shortest distance between a replica's first two
// samples, known before the first decision. Upstream starts with a fixed
// penalty instead (5s), so replicas scraping out of phase by more than that
// give the first samples of both (the followed one's second looks late):
// at the start of every query's selection and, in the compactor, of every
// merged block.
func firstInterval(replicas []storage.Series) int64 {
	var out int64
	for _, r := range replicas {
		it := r.Iterator(nil)
		if it.Next() == chunkenc.ValNone {
			continue
		}
		t := it.AtT()
		if it.Next() == chunkenc.ValNone {
			continue
		}
		if d := it.AtT() - t; d > 0 && (out == 0 || d < out) {
			out = d
		}
	}
	return out
}

func (s *dedupSeries) wrap(r storage.Series) adjustable {
	if s.counter {
		return &counterAdjust{Iterator: r.Iterator(nil)}
	}
	return noAdjust{Iterator: r.Iterator(nil)}
}

// adjustable is an iterator whose float values can be raised to continue a
// counter from another replica's last value.
type adjustable interface {
	chunkenc.Iterator
	adjust(last float64)
}

type noAdjust struct{ chunkenc.Iterator }

func (noAdjust) adjust(float64) {}

// counterAdjust adds what the replica's counter lags behind the value the
// answer last returned from another replica (Thanos' counterErrAdjust).
type counterAdjust struct {
	chunkenc.Iterator
	offset float64
}

func (c *counterAdjust) adjust(last float64) {
	if _, v := c.At(); last > v {
		c.offset += last - v
	}
}

func (c *counterAdjust) At() (int64, float64) {
	t, v := c.Iterator.At()
	return t, v + c.offset
}

// initialPenalty is when the followed replica's next sample is late while
// its interval is not known yet: Thanos' constant, typical scrape intervals
// being several seconds.
const initialPenalty = 5000

type dedupIterator struct {
	a, b       adjustable
	aval, bval chunkenc.ValueType
	useA       bool
	started    bool
	cur        chunkenc.ValueType
	lastT      int64
	// interval is the followed replica's last sample interval, 0 while
	// unknown.
	interval int64
	// end is where the data ends (newSet).
	end int64
}

func newDedupIterator(a, b adjustable, end int64) *dedupIterator {
	return &dedupIterator{a: a, b: b, aval: a.Next(), bval: b.Next(), useA: true, lastT: math.MinInt64, end: end}
}

func (it *dedupIterator) Next() chunkenc.ValueType {
	if !it.started {
		it.started = true
		switch {
		case it.aval == chunkenc.ValNone:
			return it.use(false)
		case it.bval == chunkenc.ValNone:
			return it.use(true)
		}
		return it.use(it.a.AtT() <= it.b.AtT())
	}
	if it.cur == chunkenc.ValNone {
		return chunkenc.ValNone
	}
	lastV, lastFloat := it.lastFloat()
	wasA := it.useA

	followed, other := it.a, it.b
	fval, oval := &it.aval, &it.bval
	if !it.useA {
		followed, other, fval, oval = it.b, it.a, &it.bval, &it.aval
	}
	// The other replica is kept at the first sample after the last one,
	// never further, so that it can fill any gap.
	*fval = stepAfter(followed, *fval, it.lastT)
	*oval = stepAfter(other, *oval, it.lastT)

	var (
		switchTo bool
		step     int64 // from the last sample to the followed replica's next
	)
	switch {
	case *fval == chunkenc.ValNone && *oval == chunkenc.ValNone:
		it.cur = chunkenc.ValNone
		return it.cur
	case *fval == chunkenc.ValNone:
		if it.interval > 0 && it.lastT+it.interval+it.interval/2 > it.end {
			it.cur = chunkenc.ValNone
			return it.cur
		}
		switchTo = true
	case *oval == chunkenc.ValNone:
		switchTo = false
	default:
		tf, to := followed.AtT(), other.AtT()
		step = tf - it.lastT
		// Late: beyond 1.5 intervals, or upstream's initial penalty while
		// the interval is not known yet.
		late := step > it.interval+it.interval/2
		if it.interval == 0 {
			late = tf-it.lastT > initialPenalty
		}
		switchTo = late && to < tf
	}
	useA := wasA != switchTo
	vt := it.use(useA)
	if switchTo && it.interval == 0 {
		// The interval is learnt between samples of one replica, never
		// across a switch: taken as the abandoned replica's step, or
		// replicas scraping out of phase by more than the initial penalty
		// would be switched between at every sample (each one's next
		// sample "late" behind the other's).
		it.interval = step
	}
	if useA != wasA && lastFloat {
		// Continue a counter from the value just returned.
		it.iter().adjust(lastV)
	}
	return vt
}

// stepAfter moves it to its first sample after t. By Next, not Seek: both
// replicas move a sample or two per step, and Seek on a series read from
// chunks (a chain of per-chunk iterators) rebuilds its heap at every call,
// which made the compactor's merge 40 times slower than Thanos'.
func stepAfter(it adjustable, cur chunkenc.ValueType, t int64) chunkenc.ValueType {
	for cur != chunkenc.ValNone && it.AtT() <= t {
		cur = it.Next()
	}
	return cur
}

// use makes a (or b) the followed replica at its current sample.
func (it *dedupIterator) use(a bool) chunkenc.ValueType {
	switched := it.started && a != it.useA && it.lastT != math.MinInt64
	it.useA = a
	it.cur = it.bval
	if a {
		it.cur = it.aval
	}
	if it.cur == chunkenc.ValNone {
		return it.cur
	}
	t := it.iter().AtT()
	if !switched && it.lastT != math.MinInt64 {
		it.interval = t - it.lastT
	}
	it.lastT = t
	return it.cur
}

func (it *dedupIterator) iter() adjustable {
	if it.useA {
		return it.a
	}
	return it.b
}

func (it *dedupIterator) lastFloat() (float64, bool) {
	if it.cur != chunkenc.ValFloat {
		return 0, false
	}
	_, v := it.iter().At()
	return v, true
}

// adjust passes a counter adjustment down when this iterator is itself one
// replica of an outer deduplication (three or more replicas).
func (it *dedupIterator) adjust(last float64) {
	if it.aval == chunkenc.ValFloat {
		it.a.adjust(last)
	}
	if it.bval == chunkenc.ValFloat {
		it.b.adjust(last)
	}
}

// Seek steps forward with Next, not the replicas' Seek: jumping could skip
// the gaps that decide which replica to follow.
func (it *dedupIterator) Seek(t int64) chunkenc.ValueType {
	if !it.started {
		if it.Next() == chunkenc.ValNone {
			return chunkenc.ValNone
		}
	}
	for it.cur != chunkenc.ValNone && it.AtT() < t {
		it.Next()
	}
	return it.cur
}

func (it *dedupIterator) At() (int64, float64) { return it.iter().At() }

func (it *dedupIterator) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	return it.iter().AtHistogram(h)
}

func (it *dedupIterator) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return it.iter().AtFloatHistogram(fh)
}

func (it *dedupIterator) AtT() int64 { return it.iter().AtT() }

func (it *dedupIterator) Err() error {
	if err := it.a.Err(); err != nil {
		return err
	}
	return it.b.Err()
}
