package querier

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/thanos-io/thanos/pkg/compact/downsample"
	"github.com/thanos-io/thanos/pkg/dedup"
	"github.com/thanos-io/thanos/pkg/query"
	"github.com/thanos-io/thanos/pkg/store/storepb"
)

// oneSeries is a storepb.SeriesSet of one series.
type oneSeries struct {
	chunks []storepb.AggrChunk
	done   bool
}

func (s *oneSeries) Next() bool {
	ok := !s.done
	s.done = true
	return ok
}
func (s *oneSeries) At() (labels.Labels, []storepb.AggrChunk) {
	return labels.FromStrings("__name__", "m"), s.chunks
}
func (s *oneSeries) Err() error { return nil }

// xorChunk holds a sample at each of ts, valued ts.
func xorChunk(t *testing.T, ts ...int64) storepb.AggrChunk {
	t.Helper()
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		app.Append(x, float64(x))
	}
	return storepb.AggrChunk{MinTime: ts[0], MaxTime: ts[len(ts)-1], Raw: &storepb.Chunk{Type: storepb.Chunk_XOR, Data: c.Bytes()}}
}

func span(from, to int64) []int64 {
	var out []int64
	for x := from; x <= to; x++ {
		out = append(out, x)
	}
	return out
}

// Thanos' chunk series iterator (patched in third_party/_thanos: each
// chunk seeks itself) reads overlapping chunks once each, the earlier chunk
// first, with Seek landing on the first sample at or after its argument,
// across chunks and in their overlap.
func TestChunkSeriesIteratorSeeksAcrossChunks(t *testing.T) {
	chunks := func() []storepb.AggrChunk {
		return []storepb.AggrChunk{xorChunk(t, span(0, 9)...), xorChunk(t, span(5, 14)...), xorChunk(t, span(20, 29)...)}
	}
	all := append(span(0, 14), span(20, 29)...)
	iterIn := func(mint, maxt int64) chunkenc.Iterator {
		set := query.NewPromSeriesSet(&oneSeries{chunks: chunks()}, mint, maxt, []storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM}, nil)
		if !set.Next() {
			t.Fatal("no series")
		}
		return set.At().Iterator(nil)
	}
	iter := func() chunkenc.Iterator { return iterIn(0, 100) }

	var got []int64
	for it := iter(); it.Next() == chunkenc.ValFloat; {
		ts, v := it.At()
		if v != float64(ts) {
			t.Fatalf("sample at %d is %g", ts, v)
		}
		got = append(got, ts)
	}
	if len(got) != len(all) {
		t.Fatalf("Next read %v, want %v", got, all)
	}
	for i := range all {
		if got[i] != all[i] {
			t.Fatalf("Next read %v, want %v", got, all)
		}
	}

	// From a fresh iterator, then forward on the same one: the first
	// sample at or after each t, then the rest by Next.
	for _, seeks := range [][]int64{{3}, {7}, {10}, {12}, {15}, {20}, {29}, {3, 3, 8, 11, 16, 25}, {0, 14}} {
		it := iter()
		for _, seek := range seeks {
			want := int64(-1)
			for _, x := range all {
				if x >= seek {
					want = x
					break
				}
			}
			vt := it.Seek(seek)
			if want < 0 {
				if vt != chunkenc.ValNone {
					t.Fatalf("seeks %v: Seek(%d) = %v, want none", seeks, seek, vt)
				}
				continue
			}
			if vt != chunkenc.ValFloat || it.AtT() != want {
				t.Fatalf("seeks %v: Seek(%d) at %d (%v), want %d", seeks, seek, it.AtT(), vt, want)
			}
		}
		last := seeks[len(seeks)-1]
		var rest []int64
		for _, x := range all {
			if x > it.AtT() {
				rest = append(rest, x)
			}
		}
		for _, want := range rest {
			if it.Next() != chunkenc.ValFloat || it.AtT() != want {
				t.Fatalf("seeks %v: after Seek(%d), Next at %d, want %d", seeks, last, it.AtT(), want)
			}
		}
		if it.Next() != chunkenc.ValNone {
			t.Fatalf("seeks %v: Next after the last sample", seeks)
		}
	}
	if it := iter(); it.Seek(30) != chunkenc.ValNone {
		t.Error("Seek past the last sample found one")
	}

	// Bounded to [3, 24]: Next starts at 3 and ends at 24, Seek before
	// the start lands on 3, after the end on nothing.
	var bounded []int64
	for it := iterIn(3, 24); it.Next() == chunkenc.ValFloat; {
		bounded = append(bounded, it.AtT())
	}
	want := append(span(3, 14), span(20, 24)...)
	if fmt.Sprint(bounded) != fmt.Sprint(want) {
		t.Errorf("bounded Next read %v, want %v", bounded, want)
	}
	if it := iterIn(3, 24); it.Seek(1) != chunkenc.ValFloat || it.AtT() != 3 {
		t.Errorf("bounded Seek(1) at %d, want 3", it.AtT())
	}
	if it := iterIn(3, 24); it.Seek(25) != chunkenc.ValNone {
		t.Error("bounded Seek(25) found a sample")
	}
}

// counterChunk holds a counter at each of ts that grows by one and resets
// to zero at reset.
func counterChunk(t *testing.T, reset int64, ts ...int64) storepb.AggrChunk {
	t.Helper()
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		t.Fatal(err)
	}
	v := float64(0)
	for _, x := range ts {
		if x == reset {
			v = 0
		}
		app.Append(x, v)
		v++
	}
	return storepb.AggrChunk{MinTime: ts[0], MaxTime: ts[len(ts)-1], Raw: &storepb.Chunk{Type: storepb.Chunk_XOR, Data: c.Bytes()}}
}

// For rate and the like the querier reads counters through Thanos' counter
// reset iterator, bounded to the query: the same samples and Seek results
// as upstream's stack of the two (iter.go is patched around it).
func TestCounterIteratorAsUpstream(t *testing.T) {
	chunks := func() []storepb.AggrChunk {
		return []storepb.AggrChunk{counterChunk(t, 7, span(0, 9)...), counterChunk(t, 12, span(5, 14)...), counterChunk(t, 22, span(20, 29)...)}
	}
	ours := func(mint, maxt int64) chunkenc.Iterator {
		set := query.NewPromSeriesSet(&oneSeries{chunks: chunks()}, mint, maxt, []storepb.Aggr{storepb.Aggr_COUNTER}, nil)
		if !set.Next() {
			t.Fatal("no series")
		}
		return set.At().Iterator(nil)
	}
	upstream := func(mint, maxt int64) chunkenc.Iterator {
		var its []chunkenc.Iterator
		for _, c := range chunks() {
			chk, err := chunkenc.FromData(chunkenc.EncXOR, c.Raw.Data)
			if err != nil {
				t.Fatal(err)
			}
			its = append(its, chk.Iterator(nil))
		}
		return dedup.NewBoundedSeriesIterator(downsample.NewApplyCounterResetsIterator(its...), mint, maxt)
	}
	read := func(it chunkenc.Iterator, seeks []int64) string {
		var out []string
		for _, s := range seeks {
			vt := it.Seek(s)
			ts, v := it.At()
			out = append(out, fmt.Sprintf("seek %d: %v %d %g", s, vt, ts, v))
		}
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			out = append(out, fmt.Sprintf("%d %g", ts, v))
		}
		return fmt.Sprint(out)
	}
	for _, b := range [][2]int64{{0, 100}, {3, 24}, {12, 21}} {
		for _, seeks := range [][]int64{nil, {1}, {4}, {11, 13}, {21}, {26, 40}} {
			if got, want := read(ours(b[0], b[1]), seeks), read(upstream(b[0], b[1]), seeks); got != want {
				t.Errorf("bounds %v, seeks %v:\ngot  %s\nwant %s", b, seeks, got, want)
			}
		}
	}
}
