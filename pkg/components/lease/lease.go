package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Lease.
type Options struct {
	Logger     log.Logger // with the component key already set
	Registerer prometheus.Registerer
	Store      Store
	// Holder is this daemon's role name, such as "replica-a".
	Holder string
	// TTL is how long a lease lasts without renewal; 30s when 0.
	TTL time.Duration
	// RenewInterval is how often the holder renews and a standby reads;
	// TTL/3 when 0.
	RenewInterval time.Duration
}

// Lease elects the compactor's daemon.
//
// No two daemons' clocks are assumed to agree; only each one's clock rate
// is (the idea of Kubernetes' leader election). A standby takes over only
// when the version it reads has not changed for a TTL on its own clock
// since it first saw that version, or when the body says released. The
// holder counts its lease from just before it sent its last successful
// write, and stops a margin (TTL/5) before that write's TTL ends, so it
// always stops before any standby can take over.
type Lease struct {
	logger   log.Logger
	store    Store
	holder   string
	instance string // random per process: a restarted daemon is another holder
	ttl      time.Duration
	renew    time.Duration
	retry    time.Duration // between renewals that failed
	margin   time.Duration
	m        *metrics
	running  atomic.Bool

	// Test hooks: skipRelease simulates SIGKILL, onHeld and onLost see the
	// times between which Check passes.
	skipRelease bool
	onHeld      func(epoch int64, at time.Time)
	onLost      func(at time.Time)

	mu       sync.Mutex
	held     bool
	acquired map[*context.CancelCauseFunc]struct{} // of the Acquired contexts
	gained   chan struct{}                         // closed, and replaced, when the lease is gained
	expiry   *time.Timer                           // loses the lease at safeEnd
	safeEnd  time.Time
	written  time.Time // just before the last successful write was sent
	lostWhy  string    // why the lease was last lost, for Check
	standby  bool      // the standby transition was counted and logged

	known    bool      // the store answered at least once
	present  bool      // a lease object exists, as last read or written
	cur      record    // its body
	version  string    // its version
	seenAt   time.Time // when this daemon first saw that version
	maxEpoch int64     // highest epoch seen, so that epochs only grow
	err      error     // last error talking to the store
}

// New validates the options and registers the metrics.
func New(o Options) (*Lease, error) {
	if o.Store == nil {
		return nil, errors.New("lease: no store")
	}
	if o.Holder == "" {
		return nil, errors.New("lease: no holder name")
	}
	if o.TTL < 0 || o.RenewInterval < 0 {
		return nil, fmt.Errorf("lease: negative ttl %s or renew interval %s", o.TTL, o.RenewInterval)
	}
	if o.TTL == 0 {
		o.TTL = 30 * time.Second
	}
	if o.RenewInterval == 0 {
		o.RenewInterval = o.TTL / 3
	}
	if o.TTL <= 2*o.RenewInterval {
		// The holder must get at least one more renewal in before its
		// safe end when one fails.
		return nil, fmt.Errorf("lease: ttl %s must be more than twice the renew interval %s", o.TTL, o.RenewInterval)
	}
	if o.Logger == nil {
		o.Logger = log.NewNopLogger()
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("lease: instance id: %w", err)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	return &Lease{
		logger:   o.Logger,
		store:    o.Store,
		holder:   o.Holder,
		instance: hex.EncodeToString(id),
		ttl:      o.TTL,
		renew:    o.RenewInterval,
		retry:    max(o.RenewInterval/4, time.Millisecond),
		margin:   o.TTL / 5,
		m:        m,
		gained:   make(chan struct{}),
		acquired: map[*context.CancelCauseFunc]struct{}{},
	}, nil
}

// Instance is this process' instance id, written into the lease.
func (l *Lease) Instance() string { return l.instance }

// Run competes for the lease and renews it until ctx ends, then releases
// it if held so that the standby takes over at once. A failing store is
// logged, counted and retried; Run returns nil when ctx ends.
func (l *Lease) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("lease: Run is already running")
	}
	defer l.running.Store(false)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.release()
			return nil
		case <-t.C:
		}
		if ctx.Err() != nil {
			continue
		}
		l.mu.Lock()
		held := l.held
		l.mu.Unlock()
		if held {
			t.Reset(l.renewOnce(ctx))
		} else {
			t.Reset(l.acquireOnce(ctx))
		}
	}
}

// acquireOnce reads the lease and takes it when it is absent, released,
// this process' own, or unchanged for a TTL. It returns when to try again.
func (l *Lease) acquireOnce(ctx context.Context) time.Duration {
	opCtx, cancel := context.WithTimeout(ctx, l.renew)
	defer cancel()
	body, version, err := l.store.Read(opCtx)
	if errors.Is(err, ErrNotFound) {
		l.observeAbsent()
		return l.take(ctx, "", 1)
	}
	if err != nil {
		return l.failed(ctx, "read", err, l.renew)
	}
	rec, perr := parseRecord(body)
	if perr != nil {
		// Unreadable: its holder is unknown, and it expires like any other.
		level.Warn(l.logger).Log("msg", "unreadable lease object", "store", l.store, "err", perr)
		rec = record{}
	}
	now := time.Now()
	l.mu.Lock()
	l.observe(version, rec, now)
	wait := max(l.ttl, rec.ttl()) - now.Sub(l.seenAt)
	epoch := max(rec.Epoch, l.maxEpoch) + 1
	l.mu.Unlock()
	if rec.Instance != l.instance && !rec.Released && wait > 0 {
		return min(wait, l.renew)
	}
	return l.take(ctx, version, epoch)
}

// take writes a new lease of epoch: a Create if version is empty, else a
// Replace of version.
func (l *Lease) take(ctx context.Context, version string, epoch int64) time.Duration {
	opCtx, cancel := context.WithTimeout(ctx, l.renew)
	defer cancel()
	send := time.Now()
	rec := record{
		Holder:   l.holder,
		Instance: l.instance,
		Epoch:    epoch,
		Acquired: formatTime(send),
		Renewed:  formatTime(send),
		Expires:  formatTime(send.Add(l.ttl)),
		TTL:      l.ttl.String(),
	}
	var err error
	if version == "" {
		version, err = l.store.Create(opCtx, rec.marshal())
	} else {
		version, err = l.store.Replace(opCtx, version, rec.marshal())
	}
	switch {
	case errors.Is(err, ErrConflict):
		// Another daemon won; the next read shows whom.
		return l.retry
	case err != nil:
		return l.failed(ctx, "acquire", err, l.renew)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wrote(version, rec, send)
	now := time.Now()
	safeEnd := send.Add(l.ttl - l.margin)
	if !now.Before(safeEnd) {
		// The write took so long that the lease is of no use; the next
		// round takes it again, as this process' own.
		return 0
	}
	l.held, l.standby, l.safeEnd, l.lostWhy = true, false, safeEnd, ""
	l.expiry = time.AfterFunc(safeEnd.Sub(now), l.expire)
	close(l.gained)
	l.gained = make(chan struct{})
	l.m.held.Set(1)
	l.m.transitions.WithLabelValues("held").Inc()
	level.Info(l.logger).Log("msg", "acquired the compactor lease", "holder", l.holder, "instance", l.instance,
		"epoch", epoch, "expires", rec.Expires, "store", l.store)
	if l.onHeld != nil {
		l.onHeld(epoch, now)
	}
	return l.renew
}

// renewOnce extends the lease. It returns when to renew next.
func (l *Lease) renewOnce(ctx context.Context) time.Duration {
	l.mu.Lock()
	rec, version := l.cur, l.version
	l.mu.Unlock()
	opCtx, cancel := context.WithTimeout(ctx, l.renew)
	defer cancel()
	send := time.Now()
	rec.Renewed = formatTime(send)
	rec.Expires = formatTime(send.Add(l.ttl))
	rec.Renewals++
	version, err := l.store.Replace(opCtx, version, rec.marshal())
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		l.wrote(version, rec, send)
		if l.held {
			l.safeEnd = send.Add(l.ttl - l.margin)
			l.expiry.Reset(time.Until(l.safeEnd))
		}
		// Else the lease ran out while this write was under way; the
		// object is this process' own, and the next round takes it again.
		return l.renew
	case errors.Is(err, ErrConflict):
		l.present = false // unknown until the next read, which comes at once
		l.lose(level.Warn(l.logger), fmt.Sprintf("the lease object changed in the bucket: another daemon took it over (%v)", err))
		return 0
	case ctx.Err() != nil:
		return 0
	}
	l.errored(err)
	level.Warn(l.logger).Log("msg", "renewing the compactor lease failed", "store", l.store, "err", err,
		"safe_end_in", time.Until(l.safeEnd).Round(time.Millisecond))
	if l.held && !time.Now().Before(l.safeEnd) {
		l.lose(level.Warn(l.logger), l.expiredWhy())
	}
	return l.retry
}

// failed records a store error (unless ctx ended) and returns wait.
func (l *Lease) failed(ctx context.Context, op string, err error, wait time.Duration) time.Duration {
	if ctx.Err() != nil {
		return 0
	}
	l.mu.Lock()
	l.errored(err)
	l.mu.Unlock()
	level.Warn(l.logger).Log("msg", "compactor lease: "+op+" failed", "store", l.store, "err", err)
	return wait
}

func (l *Lease) errored(err error) {
	l.err = err
	l.m.errors.Inc()
}

// expire loses the lease at its safe end; a renewal may have moved that.
func (l *Lease) expire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held && !time.Now().Before(l.safeEnd) {
		l.lose(level.Warn(l.logger), l.expiredWhy())
	}
}

func (l *Lease) expiredWhy() string {
	why := fmt.Sprintf("expired: the last renewal that succeeded was sent at %s, and its safe end passed at %s",
		formatTime(l.written), formatTime(l.safeEnd))
	if l.err != nil {
		why += fmt.Sprintf("; renewing failed with: %v", l.err)
	}
	return why
}

// lose ends holding, if held: Check fails from now on and the Acquired
// contexts are cancelled. Called with mu held.
func (l *Lease) lose(logger log.Logger, why string) {
	if !l.held {
		return
	}
	now := time.Now()
	l.held, l.standby, l.lostWhy = false, true, why
	l.expiry.Stop()
	// Cancelled here, not by a goroutine, so that they are done when the
	// lease is, and before a release lets the standby in.
	cause := errors.New("compactor lease lost: " + why)
	for cancel := range l.acquired {
		(*cancel)(cause)
	}
	clear(l.acquired)
	l.m.held.Set(0)
	l.m.transitions.WithLabelValues("standby").Inc()
	logger.Log("msg", "lost the compactor lease", "holder", l.holder, "instance", l.instance, "epoch", l.cur.Epoch,
		"expires", l.cur.Expires, "reason", why)
	if l.onLost != nil {
		l.onLost(minTime(now, l.safeEnd))
	}
}

// release gives the lease up when Run ends: Check fails first, then a
// released body lets the standby take over without waiting for the TTL.
func (l *Lease) release() {
	l.mu.Lock()
	l.lose(level.Info(l.logger), "released: the daemon is stopping")
	own := l.present && l.cur.Instance == l.instance && !l.cur.Released
	rec, version := l.cur, l.version
	l.mu.Unlock()
	if !own || l.skipRelease {
		return
	}
	now := time.Now()
	rec.Released = true
	rec.Renewed = formatTime(now)
	rec.Expires = formatTime(now)
	rec.Renewals++
	ctx, cancel := context.WithTimeout(context.Background(), l.renew)
	defer cancel()
	version, err := l.store.Replace(ctx, version, rec.marshal())
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errored(err)
		level.Warn(l.logger).Log("msg", "releasing the compactor lease failed; the standby takes over when it expires",
			"store", l.store, "err", err)
		return
	}
	l.wrote(version, rec, now)
	level.Info(l.logger).Log("msg", "released the compactor lease", "holder", l.holder, "epoch", rec.Epoch)
}

// wrote records a successful write of this process. Called with mu held.
func (l *Lease) wrote(version string, rec record, send time.Time) {
	l.written, l.err = send, nil
	l.setObject(version, rec, time.Now())
}

// observe records a lease object read. Called with mu held.
func (l *Lease) observe(version string, rec record, now time.Time) {
	l.err = nil
	prev := l.cur
	changed := !l.present || version != l.version
	l.setObject(version, rec, now)
	if !changed || rec.Instance == l.instance {
		return
	}
	if !l.standby || prev.Instance != rec.Instance || prev.Epoch != rec.Epoch || prev.Released != rec.Released {
		msg := "compactor lease held by another daemon"
		if rec.Released {
			msg = "compactor lease released by another daemon"
		}
		level.Info(l.logger).Log("msg", msg, "holder", rec.Holder, "instance", rec.Instance, "epoch", rec.Epoch,
			"expires", rec.Expires)
	}
	if !l.standby {
		l.standby = true
		l.m.transitions.WithLabelValues("standby").Inc()
	}
}

func (l *Lease) setObject(version string, rec record, now time.Time) {
	if !l.present || version != l.version {
		l.seenAt = now
	}
	l.known, l.present, l.cur, l.version = true, true, rec, version
	l.maxEpoch = max(l.maxEpoch, rec.Epoch)
	l.m.epoch.Set(float64(rec.Epoch))
	if t := rec.expires(); !t.IsZero() {
		l.m.expiry.Set(float64(t.UnixMilli()) / 1e3)
	}
	l.m.setHolder(rec.Holder)
}

func (l *Lease) observeAbsent() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.known, l.present, l.version, l.err = true, false, "", nil
	l.m.setHolder("")
}

// Acquired blocks until this daemon holds the lease, or ctx ends
// (ctx.Err()). The context it returns is cancelled when the lease is lost
// or released, or ctx ends; its cause says which.
func (l *Lease) Acquired(ctx context.Context) (context.Context, error) {
	for {
		l.mu.Lock()
		if l.held && time.Now().Before(l.safeEnd) {
			c, cancel := context.WithCancelCause(ctx)
			l.acquired[&cancel] = struct{}{}
			l.mu.Unlock()
			context.AfterFunc(c, func() {
				l.mu.Lock()
				delete(l.acquired, &cancel)
				l.mu.Unlock()
			})
			return c, nil
		}
		gained := l.gained
		l.mu.Unlock()
		select {
		case <-gained:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Check returns nil only while this daemon holds the lease and before its
// safe end; otherwise why not. Call it before every destructive step.
func (l *Lease) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	switch {
	case l.held && now.Before(l.safeEnd):
		return nil
	case l.held:
		return errors.New("compactor lease " + l.expiredWhy())
	case l.lostWhy != "" && (!l.present || l.cur.Instance == l.instance):
		return errors.New("compactor lease lost: " + l.lostWhy)
	case l.present:
		return fmt.Errorf("compactor lease not held: holder %s (instance %s) epoch %d", l.cur.Holder, l.cur.Instance, l.cur.Epoch)
	case l.err != nil:
		return fmt.Errorf("compactor lease not held: %w", l.err)
	default:
		return errors.New("compactor lease not held yet")
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
