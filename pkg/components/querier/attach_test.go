package querier

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

// openBlockAndHead writes 5h of scrapes a minute apart and persists the
// first 2h as a block, so queries merge a block and the head.
func openBlockAndHead(t *testing.T, m readMode) *tsdb.DB {
	t.Helper()
	db := openTSDBStep(t, m.opts(), 300, time.Minute, func(int) bool { return false })
	if err := db.CompactHead(tsdb.NewRangeHead(db.Head(), 0, (2*time.Hour).Milliseconds()-1)); err != nil {
		t.Fatal(err)
	}
	if n := len(db.Blocks()); n != 1 {
		t.Fatalf("%d blocks, want 1", n)
	}
	return db
}

func attachesAtIndex(t *testing.T, m readMode, db *tsdb.DB, ext labels.Labels) bool {
	t.Helper()
	q, err := db.Querier(0, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	return newLocalQuerier(q, ext, true, []string{"replica"}, m.attach).attachAtIndex(context.Background())
}

// Labels attached at the index give the same answers over a persisted
// block and the head as Thanos' StoreAPI path.
func TestAttachAtIndexOverBlockAndHead(t *testing.T) {
	ext := labels.FromStrings("cluster", "c1", "replica", "a")
	end := time.Unix(0, 0).Add(299 * time.Minute)
	for _, m := range readModes {
		db := openBlockAndHead(t, m)
		if got, want := attachesAtIndex(t, m, db, ext), m.attach != nil; got != want {
			t.Fatalf("%s: attaches at index %t, want %t", m.name, got, want)
		}
		native := creator(withLocal(m.local(db, ext), func(int64, int64) bool { return false }, thanosCreator(t), nil, nil))
		for _, dedupOn := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/dedup=%t", m.name, dedupOn), func(t *testing.T) {
				want := evalAll(t, thanosCreator(t, tsdbClient(db, ext)), dedupOn, queries, end)
				compare(t, want, evalAll(t, native, dedupOn, queries, end))
				if want[`sum(m)`] == "" {
					t.Fatal("empty result")
				}
			})
		}
	}
}

// A series with its own label named like an external label gets the
// external value, as from Thanos' TSDBStore; the querier then attaches
// after the read, where the override cannot reorder a block's series.
func TestAttachWithConflictingSeriesLabel(t *testing.T) {
	ext := labels.FromStrings("cluster", "c1", "replica", "a")
	m := readModes[1]
	db := openBlockAndHead(t, m)
	app := db.Appender(context.Background())
	for i := 0; i < 10; i++ {
		ts := (4*time.Hour + 30*time.Minute + time.Duration(i)*time.Minute).Milliseconds()
		if _, err := app.Append(0, labels.FromStrings("__name__", "m", "cluster", "own", "job", "x", "pod", "9"), ts, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if attachesAtIndex(t, m, db, ext) {
		t.Fatal("attaches at index although a series has a cluster label")
	}
	end := time.Unix(0, 0).Add(299 * time.Minute)
	native := creator(withLocal(m.local(db, ext), func(int64, int64) bool { return false }, thanosCreator(t), nil, nil))
	for _, dedupOn := range []bool{true, false} {
		want, got := evalAll(t, thanosCreator(t, tsdbClient(db, ext)), dedupOn, queries, end), evalAll(t, native, dedupOn, queries, end)
		// Thanos lists the name twice here ([... cluster cluster ...]);
		// the native path lists it once.
		if got["label names"] != "[__name__ cluster job pod]" && got["label names"] != "[__name__ cluster job pod replica]" {
			t.Errorf("label names %s", got["label names"])
		}
		delete(want, "label names")
		compare(t, want, got)
	}
}
