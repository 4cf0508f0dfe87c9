// Package tsdb runs the local Prometheus TSDB: WAL, head and 2h blocks.
package tsdb

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/monstackd/monstackd/pkg/config"
)

// BlockDuration is the only block range the TSDB writes. The shipper uploads
// level-1 blocks only, so local compaction must never merge them (DESIGN.md §3.7).
const BlockDuration = 2 * time.Hour

// TSDB is the local time series database.
type TSDB struct {
	dir    string
	opts   *tsdb.Options
	logger *slog.Logger
	reg    prometheus.Registerer
	stats  *tsdb.DBStats
	guard  *DiskGuard

	db *tsdb.DB
	// open is db for retention, which runs in the DB's goroutines during
	// and after Open: nothing is deleted before Open returns.
	open atomic.Pointer[tsdb.DB]

	keepMtx sync.RWMutex
	keep    []func(tsdb.BlockMeta) bool
}

// New prepares a TSDB in dir; Open does the (possibly long) WAL replay.
// guard pauses appends when the disk runs low.
func New(dir string, cfg config.TSDBConfig, logger *slog.Logger, reg prometheus.Registerer, guard *DiskGuard) *TSDB {
	t := &TSDB{dir: dir, opts: Options(cfg), logger: logger, reg: reg, stats: tsdb.NewDBStats(), guard: guard}
	t.opts.BlocksToDelete = t.blocksToDelete
	return t
}

// KeepBlocks registers a retention guard: a block that keep returns true
// for is not deleted, whatever its age (the shipper keeps blocks it has not
// uploaded, the store gateway those it does not serve yet).
func (t *TSDB) KeepBlocks(keep func(tsdb.BlockMeta) bool) {
	t.keepMtx.Lock()
	defer t.keepMtx.Unlock()
	t.keep = append(t.keep, keep)
}

func (t *TSDB) blocksToDelete(blocks []*tsdb.Block) map[ulid.ULID]struct{} {
	db := t.open.Load()
	if db == nil {
		return nil
	}
	deletable := tsdb.DefaultBlocksToDelete(db)(blocks)
	t.keepMtx.RLock()
	defer t.keepMtx.RUnlock()
	for _, b := range blocks {
		if _, ok := deletable[b.Meta().ULID]; !ok {
			continue
		}
		for _, keep := range t.keep {
			if keep(b.Meta()) {
				delete(deletable, b.Meta().ULID)
				break
			}
		}
	}
	return deletable
}

// Options maps monstack.yml's tsdb section onto TSDB options.
func Options(cfg config.TSDBConfig) *tsdb.Options {
	o := tsdb.DefaultOptions()
	o.MinBlockDuration = BlockDuration.Milliseconds()
	o.MaxBlockDuration = BlockDuration.Milliseconds()
	o.EnableOverlappingCompaction = false
	// Retention runs when blocks are reloaded; the shipper and the store
	// gateway release blocks for it, so it should not wait a minute more.
	o.BlockReloadInterval = 15 * time.Second
	o.RetentionDuration = time.Duration(cfg.Retention).Milliseconds()
	o.OutOfOrderTimeWindow = time.Duration(cfg.OutOfOrderTimeWindow).Milliseconds()
	o.WALCompression = compression.None
	if cfg.WALCompression {
		o.WALCompression = compression.Snappy
	}
	o.EnableExemplarStorage = cfg.MaxExemplars > 0
	o.MaxExemplars = cfg.MaxExemplars
	if o.OutOfOrderTimeWindow == 0 {
		o.BlockQuerierFunc = newBlockQuerier
	}
	return o
}

// Open replays the WAL and opens the database.
func (t *TSDB) Open() error {
	db, err := tsdb.Open(t.dir, t.logger, t.reg, t.opts, t.stats)
	if err != nil {
		return fmt.Errorf("open TSDB in %s: %w", t.dir, err)
	}
	t.db = db
	t.open.Store(db)
	return nil
}

// DB returns the open database; nil before Open.
func (t *TSDB) DB() *tsdb.DB { return t.db }

// Appendable is where scrapes and rules append: the database behind the
// disk guard.
func (t *TSDB) Appendable() storage.Appendable { return t.guard.Appendable(t.db) }

// Dir returns the TSDB directory.
func (t *TSDB) Dir() string { return t.dir }

// Close flushes and closes the database. It is safe before Open.
func (t *TSDB) Close() error {
	if t.db == nil {
		return nil
	}
	return t.db.Close()
}

// ReplayProgress describes the WAL replay for the readiness detail.
func (t *TSDB) ReplayProgress() string {
	s := t.stats.Head.WALReplayStatus.GetWALReplayStatus()
	if s.Max <= 0 {
		return "WAL replay in progress"
	}
	return fmt.Sprintf("WAL replay in progress (segment %d of %d)", s.Current, s.Max)
}

// AdminStats is the view of the TSDB that Prometheus' HTTP API needs
// (api_v1.TSDBAdminStats).
func (t *TSDB) AdminStats() *AdminStats { return &AdminStats{t: t} }

// AdminStats adapts *tsdb.DB to api_v1.TSDBAdminStats.
type AdminStats struct{ t *TSDB }

func (a *AdminStats) CleanTombstones() error { return a.t.db.CleanTombstones() }

func (a *AdminStats) Delete(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) error {
	return a.t.db.Delete(ctx, mint, maxt, ms...)
}

func (a *AdminStats) Snapshot(dir string, withHead bool) error { return a.t.db.Snapshot(dir, withHead) }

func (a *AdminStats) Stats(statsByLabelName string, limit int) (*tsdb.Stats, error) {
	return a.t.db.Head().Stats(statsByLabelName, limit), nil
}

func (a *AdminStats) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return a.t.stats.Head.WALReplayStatus.GetWALReplayStatus(), nil
}

func (a *AdminStats) BlockMetas() ([]tsdb.BlockMeta, error) { return a.t.db.BlockMetas(), nil }
