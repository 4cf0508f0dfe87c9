package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// blockRange is the span of one history block: Prometheus' level-1 block,
// the only level a Thanos shipper (and so `thanos tools bucket
// upload-blocks`) uploads.
const blockRange = 2 * time.Hour

// historyOptions are the flags of `target history`.
type historyOptions struct {
	out        string
	cfg        config
	interval   time.Duration
	offset     time.Duration
	start, end time.Time
}

// runHistory is `target history`: it writes the workload's past, the ticks
// of [start, end), as Prometheus TSDB blocks of blockRange each, as a
// Prometheus that scraped every listener since start would have. The samples
// are the very lines the live target serves, parsed as a scrape parses them,
// so history and live data are one workload.
func runHistory(args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	out := fs.String("out", "", "directory to write the blocks into (created)")
	seriesN := fs.Int("series", 10000, "total series over all listeners at any tick")
	listeners := fs.Int("listeners", 1, "number of listeners (instances) whose series are written")
	interval := fs.Duration("interval", 15*time.Second, "tick duration: one sample per series and tick, at the tick's start")
	start := fs.Int64("start", 0, "first millisecond of the history (Unix ms); must be a multiple of 2h")
	end := fs.Int64("end", 0, "end of the history (Unix ms, exclusive); must be a multiple of 2h")
	offset := fs.Duration("offset", 0, "each sample this long after its tick's start, shorter than --interval: another replica's scrape phase")
	churnFraction := fs.Float64("churn-fraction", 0.02, "as the target's flag")
	churnTicks := fs.Int64("churn-ticks", 40, "as the target's flag")
	resetTicks := fs.Int64("counter-reset-ticks", 240, "as the target's flag")
	if err := fs.Parse(args); err != nil {
		return err
	}
	br := blockRange.Milliseconds()
	switch {
	case *out == "":
		return fmt.Errorf("history: --out is required")
	case *start%br != 0 || *end%br != 0 || *end <= *start:
		return fmt.Errorf("history: --start and --end must be multiples of %s with start < end", blockRange)
	case *interval < time.Millisecond || br%interval.Milliseconds() != 0:
		return fmt.Errorf("history: --interval must divide %s", blockRange)
	case *offset < 0 || *offset >= *interval:
		return fmt.Errorf("history: --offset must be in [0, --interval)")
	}
	o := historyOptions{
		out: *out,
		cfg: config{series: *seriesN, listeners: *listeners, churnFraction: *churnFraction,
			churnTicks: *churnTicks, counterResetTicks: *resetTicks},
		interval: *interval,
		offset:   *offset,
		start:    time.UnixMilli(*start),
		end:      time.UnixMilli(*end),
	}
	return writeHistory(o)
}

// writeHistory writes one block per blockRange of [start, end), a block per
// CPU at a time: each block is independent, its own head in memory.
func writeHistory(o historyOptions) error {
	w, err := newWorkload(o.cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	began := time.Now()
	var mints []int64
	for t := o.start.UnixMilli(); t < o.end.UnixMilli(); t += blockRange.Milliseconds() {
		mints = append(mints, t)
	}
	jobs := make(chan int64)
	errs := make(chan error, len(mints))
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(mints)) {
		wg.Go(func() {
			for mint := range jobs {
				errs <- writeBlock(w, o.out, mint, o.interval.Milliseconds(), o.offset.Milliseconds())
			}
		})
	}
	for _, m := range mints {
		jobs <- m
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Printf("history: %d blocks of %d series (%d listeners) every %s in %s\n",
		len(mints), o.cfg.series, o.cfg.listeners, o.interval, time.Since(began).Round(time.Millisecond))
	return nil
}

// writeBlock renders every tick of [mint, mint+blockRange) for every
// listener and appends it to a block writer. Series references are cached
// by the exposition's series text: a known series costs a line split, a
// float parse and a map lookup; only a new one is parsed into labels with
// Prometheus' text parser (the lexer would otherwise take half the time).
func writeBlock(w *workload, dir string, mint, ivMs, offMs int64) error {
	bw, err := tsdb.NewBlockWriter(slog.New(slog.NewTextHandler(io.Discard, nil)), dir, blockRange.Milliseconds())
	if err != nil {
		return fmt.Errorf("history: block at %d: %w", mint, err)
	}
	defer bw.Close()
	ctx := context.Background()
	b := &blockAppender{refs: make([]map[string]storage.SeriesRef, len(w.parts)), st: labels.NewSymbolTable(),
		lb: labels.NewBuilder(labels.EmptyLabels())}
	for l := range b.refs {
		b.refs[l] = map[string]storage.SeriesRef{}
	}
	var buf []byte
	for k := mint / ivMs; k*ivMs < mint+blockRange.Milliseconds(); k++ {
		app := bw.Appender(ctx)
		for l := range w.parts {
			buf = w.render(buf[:0], l, k, 0)
			if err := b.appendExposition(app, l, k*ivMs+offMs, buf); err != nil {
				return fmt.Errorf("history: listener %d tick %d: %w", l, k, err)
			}
		}
		if err := app.Commit(); err != nil {
			return fmt.Errorf("history: commit tick %d: %w", k, err)
		}
	}
	if _, err := bw.Flush(ctx); err != nil {
		return fmt.Errorf("history: flush block at %s: %w", time.UnixMilli(mint).UTC(), err)
	}
	return nil
}

// blockAppender appends expositions to one block's head.
type blockAppender struct {
	refs []map[string]storage.SeriesRef // by listener, then series text
	st   *labels.SymbolTable
	lb   *labels.Builder
	lset labels.Labels
}

// appendExposition appends every sample of listener l's exposition at ts.
// The workload writes `series value` lines without timestamps, and comments.
func (b *blockAppender) appendExposition(app storage.Appender, l int, ts int64, expo []byte) error {
	for line := range bytes.Lines(expo) {
		if line[0] == '#' {
			continue
		}
		sp := bytes.LastIndexByte(line, ' ')
		if sp < 0 {
			return fmt.Errorf("no value in %q", line)
		}
		s, val := line[:sp], bytes.TrimSuffix(line[sp+1:], []byte("\n"))
		// unsafe.String: the value bytes stay unchanged during the call,
		// and a per-sample string copy would be most of the garbage.
		v, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(val), len(val)), 64)
		if err != nil {
			return fmt.Errorf("value in %q: %w", line, err)
		}
		// A known reference is enough: the head ignores the labels.
		if ref, ok := b.refs[l][string(s)]; ok {
			if _, err := app.Append(ref, labels.EmptyLabels(), ts, v); err != nil {
				return err
			}
			continue
		}
		lset, err := b.parseLabels(line)
		if err != nil {
			return err
		}
		b.lb.Reset(lset)
		b.lb.Set("job", "bench")
		b.lb.Set("instance", "history-"+strconv.Itoa(l))
		ref, err := app.Append(0, b.lb.Labels(), ts, v)
		if err != nil {
			return err
		}
		b.refs[l][string(s)] = ref
	}
	return nil
}

// parseLabels parses one sample line's labels as a scrape would.
func (b *blockAppender) parseLabels(line []byte) (labels.Labels, error) {
	p := textparse.NewPromParser(line, b.st, false)
	for {
		e, err := p.Next()
		if err != nil {
			return labels.EmptyLabels(), fmt.Errorf("parse %q: %w", line, err)
		}
		if e == textparse.EntrySeries {
			p.Labels(&b.lset)
			return b.lset, nil
		}
	}
}
