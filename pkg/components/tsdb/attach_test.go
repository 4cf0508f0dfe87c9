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
