package tsdb

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/monstackd/monstackd/pkg/config"
)

// Selected under AttachLabels, every series carries the labels, merged in
// order, an attached label replacing the series' own of the same name; other
// Selects on the same TSDB are untouched.
func TestAttachLabels(t *testing.T) {
	db, err := tsdb.Open(t.TempDir(), nil, nil, Options(config.TSDBConfig{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	series := []labels.Labels{
		labels.FromStrings("__name__", "m", "a", "1"),
		labels.FromStrings("__name__", "m", "cluster", "own", "z", "2"),
		labels.FromStrings("__name__", "m", "replica", "x", "zz", "3"),
	}
	app := db.Appender(context.Background())
	for _, s := range series {
		if _, err := app.Append(0, s, 1000, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	attach := labels.FromStrings("cluster", "c1", "replica", "a")
	want := []labels.Labels{
		labels.FromStrings("__name__", "m", "a", "1", "cluster", "c1", "replica", "a"),
		labels.FromStrings("__name__", "m", "cluster", "c1", "replica", "a", "z", "2"),
		labels.FromStrings("__name__", "m", "cluster", "c1", "replica", "a", "zz", "3"),
	}
	for name, c := range map[string]struct {
		ctx  context.Context
		want []labels.Labels
	}{
		"attached": {AttachLabels(context.Background(), attach), want},
		"plain":    {context.Background(), series},
	} {
		q, err := db.Querier(0, time.Hour.Milliseconds())
		if err != nil {
			t.Fatal(err)
		}
		got := selectLabels(t, q.Select(c.ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")))
		if len(got) != len(c.want) {
			t.Fatalf("%s: %d series, want %d: %v", name, len(got), len(c.want), got)
		}
		for i := range got {
			if labels.Compare(got[i], c.want[i]) != 0 {
				t.Errorf("%s: series %d = %s, want %s", name, i, got[i], c.want[i])
			}
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func selectLabels(t *testing.T, set storage.SeriesSet) []labels.Labels {
	t.Helper()
	var out []labels.Labels
	for set.Next() {
		out = append(out, set.At().Labels())
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// With out-of-order ingestion the head is read around the hook: no attach.
func TestAttachesLabelsOnlyWithoutOutOfOrder(t *testing.T) {
	if !New(t.TempDir(), config.TSDBConfig{}, nil, nil, nil).AttachesLabels() {
		t.Error("in-order TSDB does not attach labels")
	}
	if New(t.TempDir(), config.TSDBConfig{OutOfOrderTimeWindow: config.Duration(time.Minute)}, nil, nil, nil).AttachesLabels() {
		t.Error("out-of-order TSDB attaches labels")
	}
}

// A block that retention starts closing after a querier opened it still
// answers that querier's labelled Selects: the labelling querier's readers
// were pinned with the querier, and the block waits for them to close.
func TestAttachWhileBlockCloses(t *testing.T) {
	dir := t.TempDir()
	db, err := tsdb.Open(dir, nil, nil, Options(config.TSDBConfig{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app := db.Appender(context.Background())
	for ts := int64(0); ts < 3*BlockDuration.Milliseconds(); ts += 60_000 {
		if _, err := app.Append(0, labels.FromStrings("__name__", "m"), ts, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	blocks := db.Blocks()
	if len(blocks) == 0 {
		t.Fatal("no block cut")
	}
	b := blocks[0]
	q, err := db.Querier(b.MinTime(), b.MaxTime()-1)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	// Wait until the block refuses new readers: it is closing.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ir, err := b.Index()
		if err != nil {
			break
		}
		_ = ir.Close()
		if time.Now().After(deadline) {
			t.Fatal("block never started closing")
		}
		time.Sleep(time.Millisecond)
	}
	ctx := AttachLabels(context.Background(), labels.FromStrings("replica", "a"))
	ss := q.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	n := 0
	for ss.Next() {
		if got := ss.At().Labels().Get("replica"); got != "a" {
			t.Errorf("series %s without the attached label", ss.At().Labels())
		}
		n++
	}
	if err := ss.Err(); err != nil {
		t.Fatalf("Select on a closing block: %v", err)
	}
	if n != 1 {
		t.Errorf("%d series, want 1", n)
	}
	select {
	case <-closed:
		t.Fatal("the block closed while a querier held it")
	default:
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
