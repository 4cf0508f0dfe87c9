package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestHistoryIsTheLiveWorkload writes two blocks and reads them back: one
// block per 2h, and every sample is the value the live target serves at
// that tick, with the history's job and instance labels.
func TestHistoryIsTheLiveWorkload(t *testing.T) {
	dir := t.TempDir()
	const iv = time.Minute
	start := time.UnixMilli(baseTick * 15000).Truncate(blockRange)
	cfg := defaultCfg(300, 2)
	cfg.churnFraction = 0 // the series compared keeps its name
	o := historyOptions{out: dir, cfg: cfg, interval: iv, start: start, end: start.Add(2 * blockRange)}
	if err := writeHistory(o); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var blocks int
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "meta.json")); err == nil {
			blocks++
		}
	}
	if blocks != 2 {
		t.Fatalf("%d blocks, want 2", blocks)
	}

	// A read-only DB replays a WAL; the blocks have none.
	if err := os.Mkdir(filepath.Join(dir, "wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := tsdb.OpenDBReadOnly(dir, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := db.Querier(start.UnixMilli(), start.Add(2*blockRange).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	// One gauge of listener 1, compared tick by tick with the exposition.
	w := mustWorkload(t, cfg)
	line := firstLine(t, w.render(nil, 1, start.UnixMilli()/iv.Milliseconds(), 0), gaugeName+"{")
	want, err := parseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", gaugeName),
		labels.MustNewMatcher(labels.MatchEqual, "instance", "history-1"),
		labels.MustNewMatcher(labels.MatchEqual, "job", "bench")}
	for _, l := range want.labels {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.name, l.value))
	}
	ss := q.Select(context.Background(), false, nil, ms...)
	if !ss.Next() {
		t.Fatalf("no series for %s", line)
	}
	it := ss.At().Iterator(nil)
	n := 0
	for it.Next() == chunkenc.ValFloat {
		ts, v := it.At()
		got, err := parseLine(firstLine(t, w.render(nil, 1, ts/iv.Milliseconds(), 0), want.key))
		if err != nil {
			t.Fatal(err)
		}
		if v != got.value {
			t.Fatalf("at %d: %v, the target serves %v", ts, v, got.value)
		}
		n++
	}
	if wantN := int(2 * blockRange / iv); n != wantN {
		t.Fatalf("%d samples, want %d (one per tick)", n, wantN)
	}
	if ss.Next() {
		t.Fatal("more than one series matched")
	}
}

func firstLine(t *testing.T, b []byte, prefix string) string {
	t.Helper()
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starting with %q", prefix)
	return ""
}
