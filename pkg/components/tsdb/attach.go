package tsdb

import (
	"context"
	"errors"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/tombstones"
)

// The querier gives every local series the external labels. Adding them
// after the read copies each series' labels a second time and keeps both
// copies alive for the whole query (a few hundred bytes a series:
// tens of MiB for a query over 100k series). Added where the TSDB reads a
// series from its index, they go into the one copy the read makes anyway.

type attachKey struct{}

// AttachLabels returns a context under which Select on this TSDB's queriers
// returns every series with ls added, ls winning over a series' own label of
// the same name. The caller must not use it when a series may carry one of
// ls' names: the override could reorder series within a block.
func AttachLabels(ctx context.Context, ls labels.Labels) context.Context {
	return context.WithValue(ctx, attachKey{}, ls)
}

// AttachesLabels reports whether AttachLabels takes effect. The head's
// out-of-order reader bypasses the block querier hook, so it does not with
// out-of-order ingestion on.
func (t *TSDB) AttachesLabels() bool { return t.opts.BlockQuerierFunc != nil }

// newBlockQuerier is the TSDB's block querier hook: the default querier,
// and a labelling one for each Select whose context asks for labels.
func newBlockQuerier(b tsdb.BlockReader, mint, maxt int64) (storage.Querier, error) {
	q, err := tsdb.NewBlockQuerier(b, mint, maxt)
	if err != nil {
		return nil, err
	}
	// The labelling querier is opened at Select, and retention may have
	// started closing the block by then: a closing block opens no new
	// reader ("block is closing"). Its readers are opened now, with the
	// default querier's, and held until Close.
	p, err := pin(b)
	if err != nil {
		return nil, errors.Join(err, q.Close())
	}
	return &blockQuerier{Querier: q, b: p, mint: mint, maxt: maxt}, nil
}

type blockQuerier struct {
	storage.Querier
	b          *pinnedBlock
	mint, maxt int64

	mtx      sync.Mutex
	labelled []storage.Querier
}

func (q *blockQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	ls, ok := ctx.Value(attachKey{}).(labels.Labels)
	if !ok || ls.IsEmpty() {
		return q.Querier.Select(ctx, sortSeries, hints, ms...)
	}
	// Opened while the default querier is open, so the head range it
	// reads cannot be truncated in between; closed with it.
	lq, err := tsdb.NewBlockQuerier(labellingBlock{BlockReader: q.b, attach: ls}, q.mint, q.maxt)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	q.mtx.Lock()
	q.labelled = append(q.labelled, lq)
	q.mtx.Unlock()
	return lq.Select(ctx, sortSeries, hints, ms...)
}

func (q *blockQuerier) Close() error {
	q.mtx.Lock()
	defer q.mtx.Unlock()
	errs := []error{q.Querier.Close()}
	for _, lq := range q.labelled {
		errs = append(errs, lq.Close())
	}
	q.labelled = nil
	errs = append(errs, q.b.close())
	return errors.Join(errs...)
}

// pinnedBlock is a block whose readers were opened in advance; querier
// Close calls on them do nothing, close releases them.
type pinnedBlock struct {
	tsdb.BlockReader
	ir tsdb.IndexReader
	cr tsdb.ChunkReader
	tr tombstones.Reader
}

func pin(b tsdb.BlockReader) (p *pinnedBlock, err error) {
	p = &pinnedBlock{BlockReader: b}
	if p.ir, err = b.Index(); err != nil {
		return nil, err
	}
	if p.cr, err = b.Chunks(); err != nil {
		return nil, errors.Join(err, p.ir.Close())
	}
	if p.tr, err = b.Tombstones(); err != nil {
		return nil, errors.Join(err, p.ir.Close(), p.cr.Close())
	}
	return p, nil
}

func (p *pinnedBlock) Index() (tsdb.IndexReader, error)       { return keptIndex{p.ir}, nil }
func (p *pinnedBlock) Chunks() (tsdb.ChunkReader, error)      { return keptChunks{p.cr}, nil }
func (p *pinnedBlock) Tombstones() (tombstones.Reader, error) { return keptTombstones{p.tr}, nil }

func (p *pinnedBlock) close() error { return errors.Join(p.ir.Close(), p.cr.Close(), p.tr.Close()) }

type keptIndex struct{ tsdb.IndexReader }

func (keptIndex) Close() error { return nil }

type keptChunks struct{ tsdb.ChunkReader }

func (keptChunks) Close() error { return nil }

type keptTombstones struct{ tombstones.Reader }

func (keptTombstones) Close() error { return nil }

type labellingBlock struct {
	tsdb.BlockReader
	attach labels.Labels
}

func (b labellingBlock) Index() (tsdb.IndexReader, error) {
	ir, err := b.BlockReader.Index()
	if err != nil {
		return nil, err
	}
	ix := &labellingIndex{IndexReader: ir}
	b.attach.Range(func(l labels.Label) { ix.attach = append(ix.attach, l) })
	return ix, nil
}

// labellingIndex adds the labels to each series it reads. One Select reads
// through it, series after series, so the buffers are reused.
type labellingIndex struct {
	tsdb.IndexReader
	attach  []labels.Label // sorted by name
	scratch labels.ScratchBuilder
	buf     labels.Labels
}

// Series merges the two sorted label lists, the attached label winning on
// equal names, so the result needs no sort.
func (ix *labellingIndex) Series(ref storage.SeriesRef, builder *labels.ScratchBuilder, chks *[]chunks.Meta) error {
	ix.scratch.Reset()
	if err := ix.IndexReader.Series(ref, &ix.scratch, chks); err != nil {
		return err
	}
	// A block adds a series' labels to the builder one by one, the head
	// assigns its own: Overwrite reuses a buffer for the first, and Labels
	// returns the second without a copy.
	ix.scratch.Overwrite(&ix.buf)
	if ix.buf.IsEmpty() {
		ix.buf = ix.scratch.Labels()
	}
	builder.Reset()
	i := 0
	ix.buf.Range(func(l labels.Label) {
		for ; i < len(ix.attach) && ix.attach[i].Name <= l.Name; i++ {
			builder.Add(ix.attach[i].Name, ix.attach[i].Value)
			if ix.attach[i].Name == l.Name {
				l.Name = "" // overridden
			}
		}
		if l.Name != "" {
			builder.Add(l.Name, l.Value)
		}
	})
	for ; i < len(ix.attach); i++ {
		builder.Add(ix.attach[i].Name, ix.attach[i].Value)
	}
	return nil
}
