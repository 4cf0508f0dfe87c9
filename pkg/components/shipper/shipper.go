// Package shipper uploads the TSDB's completed 2h blocks to the bucket with
// the external labels, as the Thanos sidecar does, from one actor, and keeps
// local retention from deleting a block before it is uploaded.
package shipper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	thanosshipper "github.com/thanos-io/thanos/pkg/shipper"
)

// Backoff between failed syncs: a bucket that is down is retried soon, an
// outage does not turn into a request storm.
const (
	minBackoff = 5 * time.Second
	maxBackoff = 5 * time.Minute
)

// ErrNoExternalLabels is why nothing is uploaded without external labels:
// blocks of different sources would be indistinguishable in the bucket.
var ErrNoExternalLabels = errors.New("no external labels: set global.external_labels in prometheus.yml or run with --role=replica-<name>")

// Options configure the shipper.
type Options struct {
	Logger     log.Logger
	Registerer prometheus.Registerer
	Bucket     objstore.Bucket
	// Dir is the TSDB directory; thanos.shipper.json is kept there.
	Dir string
	// Labels are the external labels stamped on every uploaded block.
	Labels func() labels.Labels
	// Interval between syncs while all goes well.
	Interval time.Duration
	// Uploaded is told after a sync that uploaded blocks (the store gateway
	// loads them at once).
	Uploaded func()
	// Report receives the sync state for readiness: nil when all blocks
	// are uploaded, else why some are pending.
	Report func(error)
}

// Shipper uploads blocks.
type Shipper struct {
	opts    Options
	shipper *thanosshipper.Shipper
	trigger chan struct{}

	uploadedMtx sync.Mutex
	uploaded    []func()

	pending       prometheus.Gauge
	oldestPending prometheus.Gauge
}

// New opens the TSDB directory for the shipper.
func New(o Options) (*Shipper, error) {
	if err := os.MkdirAll(o.Dir, 0o777); err != nil {
		return nil, fmt.Errorf("create TSDB directory: %w", err)
	}
	root, err := os.OpenRoot(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("open TSDB directory for the shipper: %w", err)
	}
	f := promauto.With(o.Registerer)
	s := &Shipper{
		opts: o,
		shipper: thanosshipper.New(o.Bucket, root,
			thanosshipper.WithLogger(o.Logger),
			thanosshipper.WithRegisterer(o.Registerer),
			thanosshipper.WithSource(metadata.SidecarSource),
			thanosshipper.WithLabels(o.Labels),
		),
		trigger: make(chan struct{}, 1),
		pending: f.NewGauge(prometheus.GaugeOpts{
			Name: "monstackd_shipper_pending_blocks",
			Help: "Completed local blocks not uploaded to the bucket yet.",
		}),
		oldestPending: f.NewGauge(prometheus.GaugeOpts{
			Name: "monstackd_shipper_oldest_pending_block_timestamp_seconds",
			Help: "When the oldest block pending upload was cut (0 when none is pending).",
		}),
	}
	if o.Uploaded != nil {
		s.uploaded = append(s.uploaded, o.Uploaded)
	}
	return s, nil
}

// OnUploaded adds f to what is told after a sync that uploaded blocks (the
// store gateway, built after the shipper, syncs at once).
func (s *Shipper) OnUploaded(f func()) {
	s.uploadedMtx.Lock()
	defer s.uploadedMtx.Unlock()
	s.uploaded = append(s.uploaded, f)
}

// Keep is the TSDB's retention guard: a non-empty block stays until it is
// uploaded. Empty blocks are never uploaded, so they may go.
func (s *Shipper) Keep(m tsdb.BlockMeta) bool {
	if m.Stats.NumSamples == 0 {
		return false
	}
	uploaded := s.shipper.UploadedBlocks()
	_, ok := uploaded[m.ULID]
	return !ok
}

// Trigger asks for a sync now (a block was just cut).
func (s *Shipper) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Run syncs until ctx ends: every Interval, at once when triggered, and
// with backoff while the bucket fails. Ingestion never waits for it.
func (s *Shipper) Run(ctx context.Context) error {
	var wait, backoff time.Duration
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		case <-s.trigger:
		}
		uploaded, err := s.sync(ctx)
		if ctx.Err() != nil {
			return nil
		}
		n, oldest := s.Pending()
		s.pending.Set(float64(n))
		s.oldestPending.Set(0)
		if n > 0 {
			s.oldestPending.Set(float64(oldest.Unix()))
		}
		switch {
		case err != nil:
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			wait = backoff
			if n > 0 {
				err = fmt.Errorf("%d blocks pending upload, the oldest cut %s ago; retrying in %s: %w", n, time.Since(oldest).Round(time.Second), wait, err)
			} else {
				err = fmt.Errorf("no block pending upload; retrying in %s: %w", wait, err)
			}
			level.Warn(s.opts.Logger).Log("msg", "shipping failed", "err", err)
		default:
			backoff, wait = 0, s.opts.Interval
		}
		if s.opts.Report != nil {
			s.opts.Report(err)
		}
		if uploaded > 0 {
			s.uploadedMtx.Lock()
			fs := s.uploaded
			s.uploadedMtx.Unlock()
			for _, f := range fs {
				f()
			}
		}
	}
}

func (s *Shipper) sync(ctx context.Context) (int, error) {
	if s.opts.Labels().IsEmpty() {
		return 0, ErrNoExternalLabels
	}
	return s.shipper.Sync(ctx)
}

// Pending counts the completed non-empty blocks not uploaded yet and when
// the oldest of them was cut.
func (s *Shipper) Pending() (int, time.Time) {
	uploaded := s.shipper.UploadedBlocks()
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return 0, time.Time{}
	}
	var (
		n      int
		oldest time.Time
	)
	for _, e := range entries {
		id, ok := block.IsBlockDir(e.Name())
		if !ok {
			continue
		}
		if _, done := uploaded[id]; done {
			continue
		}
		m, err := metadata.ReadFromDir(filepath.Join(s.opts.Dir, e.Name()))
		if err != nil || m.Stats.NumSamples == 0 || m.Compaction.Level > 1 {
			continue
		}
		n++
		if cut := ulid.Time(id.Time()); oldest.IsZero() || cut.Before(oldest) {
			oldest = cut
		}
	}
	return n, oldest
}

// Close releases the directory.
func (s *Shipper) Close() error { return s.shipper.Close() }
