package dedup

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// chunked is a replica's series as a block holds it: chunks of 120 samples.
func chunked(pts []pt) storage.ChunkSeries {
	var parts [][]chunks.Sample
	for i := 0; i < len(pts); i += 120 {
		var part []chunks.Sample
		for _, p := range pts[i:min(i+120, len(pts))] {
			part = append(part, p)
		}
		parts = append(parts, part)
	}
	return storage.NewListChunkSeriesFromSamples(labels.FromStrings("__name__", "m"), parts...)
}

func samplesOf(t *testing.T, s storage.ChunkSeries) []pt {
	t.Helper()
	var out []pt
	it := s.Iterator(nil)
	for it.Next() {
		si := it.At().Chunk.Iterator(nil)
		for si.Next() == chunkenc.ValFloat {
			tt, v := si.At()
			out = append(out, pt{tt, v})
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The compactor's merge of two replicas' blocks holds what the querier's
// deduplication answers over them.
func TestChunkSeriesMergeEqualsQueryDedup(t *testing.T) {
	const m = int64(time.Minute / time.Millisecond)
	a := every(0, 1000*m, m, counter)
	// b was down for 30 minutes: the merge fills a's gap from it.
	b := every(20_000, 1000*m+20_000, m, counter)
	a = slices.DeleteFunc(a, func(p pt) bool { return p.t > 300*m && p.t < 330*m })

	got := samplesOf(t, ChunkSeriesMerge(chunked(a), chunked(b)))
	want := dedupPoints(t, false, "", a, b)
	if !slices.Equal(got, want) {
		t.Fatalf("merge gives %d samples, query dedup %d", len(got), len(want))
	}
	if d := maxDistance(got); d > m {
		t.Errorf("merged samples %dms apart: a gap was not filled", d)
	}
}

// A replica's consecutive blocks are concatenated, chunks as they were.
func TestChunkSeriesMergeConcatenatesNonOverlapping(t *testing.T) {
	const m = int64(time.Minute / time.Millisecond)
	first, second := every(0, 119*m, m, counter), every(120*m, 239*m, m, counter)
	merged := ChunkSeriesMerge(chunked(second), chunked(first))
	if got, want := samplesOf(t, merged), append(slices.Clone(first), second...); !slices.Equal(got, want) {
		t.Fatalf("concatenation gives %d samples, want %d", len(got), len(want))
	}
	n := 0
	for it := merged.Iterator(nil); it.Next(); {
		n++
	}
	if n != 2 {
		t.Errorf("%d chunks, want the 2 chunks as they were", n)
	}
}
