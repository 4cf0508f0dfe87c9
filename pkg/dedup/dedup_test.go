package dedup

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	thanosdedup "github.com/thanos-io/thanos/pkg/dedup"
)

type pt struct {
	t int64
	v float64
}

func (p pt) T() int64                      { return p.t }
func (p pt) F() float64                    { return p.v }
func (p pt) H() *histogram.Histogram       { return nil }
func (p pt) FH() *histogram.FloatHistogram { return nil }
func (p pt) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (p pt) Copy() chunks.Sample           { return p }

// every returns samples from start to end (inclusive) every step, valued v(t).
func every(start, end, step int64, v func(int64) float64) []pt {
	var out []pt
	for t := start; t <= end; t += step {
		out = append(out, pt{t, v(t)})
	}
	return out
}

func flat(int64) float64 { return 1 }

// counter rises by one per second of its timestamp.
func counter(t int64) float64 { return float64(t) / 1000 }

// listSet is a sorted series set of the given series.
type listSet struct {
	ss []storage.Series
	i  int
}

func (l *listSet) Next() bool                        { l.i++; return l.i <= len(l.ss) }
func (l *listSet) At() storage.Series                { return l.ss[l.i-1] }
func (l *listSet) Err() error                        { return nil }
func (l *listSet) Warnings() annotations.Annotations { return nil }

// dedupPoints deduplicates the replicas (the same series, replica label
// removed) with ours or, for comparison, Thanos' penalty algorithm.
func dedupPoints(t *testing.T, thanos bool, fn string, replicas ...[]pt) []pt {
	t.Helper()
	set := &listSet{}
	for _, r := range replicas {
		samples := make([]chunks.Sample, len(r))
		for i := range r {
			samples[i] = r[i]
		}
		set.ss = append(set.ss, storage.NewListSeries(labels.FromStrings("__name__", "m"), samples))
	}
	var out storage.SeriesSet
	if thanos {
		out = thanosdedup.NewSeriesSet(set, fn, thanosdedup.AlgorithmPenalty)
	} else {
		out = NewSet(set, fn)
	}
	var pts []pt
	n := 0
	for out.Next() {
		n++
		it := out.At().Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			tt, v := it.At()
			pts = append(pts, pt{tt, v})
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Fatalf("%d series, want 1", n)
	}
	return pts
}

func maxDistance(pts []pt) int64 {
	var g int64
	for i := 1; i < len(pts); i++ {
		g = max(g, pts[i].t-pts[i-1].t)
	}
	return g
}

// With both replicas complete, the answer is one replica's samples: the
// sample rate is not doubled.
func TestDedupFollowsOneReplica(t *testing.T) {
	a := every(0, 60_000, 1000, flat)
	b := every(400, 59_400, 1000, flat)
	got := dedupPoints(t, false, "", a, b)
	if len(got) != len(a) || got[0] != a[0] || got[len(got)-1] != a[len(a)-1] {
		t.Errorf("got %d samples %v..%v, want replica a's %d", len(got), got[0], got[len(got)-1], len(a))
	}
	// Jitter of a few ms keeps the followed replica.
	jit := every(0, 60_000, 1000, flat)
	for i := range jit {
		jit[i].t += int64(i%3) * 7
	}
	if got := dedupPoints(t, false, "", jit, b); len(got) != len(jit) {
		t.Errorf("jittered: %d samples, want %d", len(got), len(jit))
	}
}

// A replica down for a while: the other fills the gap from its first sample
// half an interval on, so no distance exceeds one interval. Thanos' penalty
// algorithm leaves up to two intervals there.
func TestDedupFillsGapFromFirstSample(t *testing.T) {
	const interval = 1000
	a := append(every(0, 10_000, interval, flat), every(70_000, 100_000, interval, flat)...)
	b := every(700, 100_700, interval, flat)
	got := dedupPoints(t, false, "", a, b)
	if d := maxDistance(got); d > interval {
		t.Errorf("max distance %s with a gap in replica a, want at most one interval", time.Duration(d)*time.Millisecond)
	}
	if up := dedupPoints(t, true, "", a, b); maxDistance(up) <= interval {
		t.Errorf("Thanos' penalty algorithm left no gap (max distance %dms): the comparison no longer shows the difference", maxDistance(up))
	}
	// Both directions: the gap in b while b is followed.
	if d := maxDistance(dedupPoints(t, false, "", b, a)); d > interval {
		t.Errorf("max distance %dms with replica b first", d)
	}
	// Once b is followed it stays so: a's return does not make it flap.
	var fromB int
	for _, p := range got {
		if p.t > 10_000 && p.t%interval == 700 {
			fromB++
		}
	}
	if want := 91; fromB != want {
		t.Errorf("%d samples from replica b after the switch, want %d (b followed to the end)", fromB, want)
	}
}

// A counter whose followed replica lags at the switch (it missed the last
// increase before it stopped) gets no invented reset, and rate reads only
// increases.
func TestDedupCounterSwitchInventsNoReset(t *testing.T) {
	a := every(0, 10_000, 1000, counter)
	a = append(a, every(40_000, 60_000, 1000, counter)...)
	// b restarted before: its counter runs 5 below a's.
	b := every(500, 60_500, 1000, func(t int64) float64 { return counter(t) - 5 })
	got := dedupPoints(t, false, "rate", a, b)
	for i := 1; i < len(got); i++ {
		if got[i].v < got[i-1].v {
			t.Fatalf("counter decreases at %d: %v -> %v", got[i].t, got[i-1].v, got[i].v)
		}
	}
	if d := maxDistance(got); d > 1000 {
		t.Errorf("max distance %dms", d)
	}
}

// Seek lands on the first deduplicated sample at or after t.
func TestDedupSeek(t *testing.T) {
	a := append(every(0, 10_000, 1000, flat), every(40_000, 60_000, 1000, flat)...)
	b := every(500, 60_500, 1000, flat)
	set := &listSet{}
	for _, r := range [][]pt{a, b} {
		samples := make([]chunks.Sample, len(r))
		for i := range r {
			samples[i] = r[i]
		}
		set.ss = append(set.ss, storage.NewListSeries(labels.EmptyLabels(), samples))
	}
	s := NewSet(set, "")
	s.Next()
	it := s.At().Iterator(nil)
	if it.Seek(20_100) != chunkenc.ValFloat || it.AtT() != 20_500 {
		t.Errorf("Seek(20100) at %d, want 20500 (replica b in a's gap)", it.AtT())
	}
	if it.Seek(0) != chunkenc.ValFloat || it.AtT() != 20_500 {
		t.Errorf("Seek backwards moved to %d", it.AtT())
	}
}

// A range shorter than the initial penalty: the other replica's samples
// after the followed one's last are still there to continue the answer
// (the other replica is never read ahead of the last sample).
func TestDedupShortRangeKeepsTheOtherReplica(t *testing.T) {
	b := every(820_953, 823_953, 1000, flat)
	a := every(821_273, 824_273, 1000, flat)
	for _, order := range [][][]pt{{b, a}, {a, b}} {
		got := dedupPoints(t, false, "", order...)
		if last := got[len(got)-1]; last.t != 824_273 {
			t.Errorf("last sample at %d, want 824273 (replica a's, after b's last): %v", last.t, got)
		}
	}
}

// Replicas scraping out of phase by more than the initial penalty (20s
// of a 1m interval) are not switched between at every sample: the answer
// is one replica's samples, as Thanos' is.
func TestDedupOutOfPhaseReplicasNotInterleaved(t *testing.T) {
	const m = int64(time.Minute / time.Millisecond)
	a := every(0, 60*m, m, counter)
	b := every(20_000, 60*m+20_000, m, counter)
	got := dedupPoints(t, false, "", a, b)
	if len(got) > len(a)+1 {
		t.Fatalf("%d samples from replicas of %d each: interleaved\n%v", len(got), len(a), got[:6])
	}
	if d := maxDistance(got); d > m {
		t.Errorf("samples %dms apart, more than the interval", d)
	}
	if thanos := dedupPoints(t, true, "", a, b); len(thanos) > len(a)+1 {
		t.Errorf("Thanos' algorithm gives %d samples", len(thanos))
	}
}
