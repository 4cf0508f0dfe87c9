package lease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	testTTL   = 600 * time.Millisecond
	testRenew = 150 * time.Millisecond
	// slack covers scheduling under -race on a busy machine.
	slack = 250 * time.Millisecond
)

// waitUntil polls cond until it holds, or fails the test after 10s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// syncBuffer is a log destination for the test's leases, printed if it fails.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(t *testing.T) log.Logger {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lease logs:\n%s", buf)
		}
	})
	return log.With(log.NewLogfmtLogger(buf), "ts", log.DefaultTimestampUTC, "component", "lease")
}

func newLease(t *testing.T, s Store, holder string, ttl, renew time.Duration, reg prometheus.Registerer) *Lease {
	t.Helper()
	l, err := New(Options{Logger: log.With(testLogger(t), "holder", holder), Registerer: reg, Store: s,
		Holder: holder, TTL: ttl, RenewInterval: renew})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// runner is a Lease's Run in a goroutine.
type runner struct {
	l      *Lease
	cancel context.CancelFunc
	done   chan error
}

func run(t *testing.T, l *Lease) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{l: l, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- l.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run, releasing the lease; kill ends it without releasing, as
// SIGKILL would.
func (r *runner) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run returned %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its context ending")
	}
}

func (r *runner) kill(t *testing.T) {
	t.Helper()
	r.l.skipRelease = true // read by Run only after the cancel below
	r.stop(t)
}

// recorder keeps the intervals in which each lease passed Check.
type recorder struct {
	mu  sync.Mutex
	ivs []*interval
}

type interval struct {
	who      string
	epoch    int64
	from, to time.Time // to is zero while open
}

func (r *recorder) watch(l *Lease, who string) {
	var open *interval
	l.onHeld = func(epoch int64, at time.Time) {
		r.mu.Lock()
		defer r.mu.Unlock()
		open = &interval{who: who, epoch: epoch, from: at}
		r.ivs = append(r.ivs, open)
	}
	l.onLost = func(at time.Time) {
		r.mu.Lock()
		defer r.mu.Unlock()
		open.to = at
	}
}

// last is who's latest interval.
func (r *recorder) last(who string) *interval {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.ivs) - 1; i >= 0; i-- {
		if r.ivs[i].who == who {
			iv := *r.ivs[i]
			return &iv
		}
	}
	return nil
}

// checkNoOverlap fails the test if two intervals overlap or epochs do not
// grow from one holder to the next.
func (r *recorder) checkNoOverlap(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var ivs []*interval
	for _, iv := range r.ivs {
		c := *iv
		ivs = append(ivs, &c)
	}
	slices.SortFunc(ivs, func(a, b *interval) int { return a.from.Compare(b.from) })
	for i, iv := range ivs {
		if iv.to.IsZero() { // still holding
			iv.to = time.Now()
		}
		if i == 0 {
			continue
		}
		prev := ivs[i-1]
		if iv.from.Before(prev.to) {
			t.Errorf("%s (epoch %d) passed Check from %s while %s (epoch %d) did until %s",
				iv.who, iv.epoch, iv.from.Format(timeFormat), prev.who, prev.epoch, prev.to.Format(timeFormat))
		}
		if iv.epoch <= prev.epoch {
			t.Errorf("epoch went from %d (%s) to %d (%s)", prev.epoch, prev.who, iv.epoch, iv.who)
		}
	}
}

func (l *Lease) lastWrite() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written
}

// holderOf waits until exactly one of a and b passes Check.
func holderOf(t *testing.T, a, b *Lease) (holder, standby *Lease) {
	t.Helper()
	waitUntil(t, "a holder", func() bool { return (a.Check() == nil) != (b.Check() == nil) })
	if a.Check() == nil {
		return a, b
	}
	return b, a
}

func TestNewValidates(t *testing.T) {
	s := fsStoreAt(t, t.TempDir())
	for _, o := range []Options{
		{Store: s},
		{Holder: "a"},
		{Store: s, Holder: "a", TTL: 300 * time.Millisecond, RenewInterval: 150 * time.Millisecond},
		{Store: s, Holder: "a", TTL: -time.Second},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	l, err := New(Options{Store: s, Holder: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if l.ttl != 30*time.Second || l.renew != 10*time.Second || l.margin != 6*time.Second {
		t.Errorf("defaults: ttl %s renew %s margin %s", l.ttl, l.renew, l.margin)
	}
	if l2, _ := New(Options{Store: s, Holder: "a"}); l2.instance == l.instance {
		t.Error("two Leases share an instance id")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Store: s, Holder: "a", Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Store: s, Holder: "a", Registerer: reg}); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
}

// Of two daemons one holds; when it dies without releasing, the other
// takes over no sooner than a TTL after the last renewal, and not much
// later.
func TestTakeoverAfterKill(t *testing.T) {
	s := fsStoreAt(t, t.TempDir())
	rec := &recorder{}
	a := newLease(t, s, "replica-a", testTTL, testRenew, nil)
	b := newLease(t, s, "replica-b", testTTL, testRenew, nil)
	rec.watch(a, "replica-a")
	rec.watch(b, "replica-b")
	runners := map[*Lease]*runner{a: run(t, a), b: run(t, b)}
	holder, standby := holderOf(t, a, b)
	heldCtx, err := holder.Acquired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Renewals keep it: the standby stays out for more than a TTL.
	deadline := time.Now().Add(testTTL + testRenew)
	for time.Now().Before(deadline) {
		if holder.Check() != nil || standby.Check() == nil {
			t.Fatalf("holder: %v, standby: %v", holder.Check(), standby.Check())
		}
		time.Sleep(5 * time.Millisecond)
	}

	killed := time.Now()
	runners[holder].kill(t)
	if heldCtx.Err() == nil {
		t.Error("the Acquired context outlived Run")
	}
	waitUntil(t, "the standby to take over", func() bool { return standby.Check() == nil })
	hw := holder.lastWrite()
	took := rec.last(standbyName(standby, a)).from
	if d := took.Sub(hw); d < testTTL {
		t.Errorf("took over %s after the holder's last renewal, before the TTL %s", d, testTTL)
	}
	if d := took.Sub(killed); d > testTTL+testRenew+slack {
		t.Errorf("took over %s after the kill, want at most TTL+renew interval (+%s)", d, slack)
	}
	if err := holder.Check(); err == nil {
		t.Error("the killed holder passes Check")
	}
	if got := standby.State().Epoch; got != 2 {
		t.Errorf("epoch after takeover %d, want 2", got)
	}
	rec.checkNoOverlap(t)
}

func standbyName(l, a *Lease) string {
	if l == a {
		return "replica-a"
	}
	return "replica-b"
}

// A daemon that stops releases the lease, and the standby takes over
// within about one renew interval.
func TestGracefulStopHandsOver(t *testing.T) {
	s := fsStoreAt(t, t.TempDir())
	rec := &recorder{}
	a := newLease(t, s, "replica-a", testTTL, testRenew, nil)
	b := newLease(t, s, "replica-b", testTTL, testRenew, nil)
	rec.watch(a, "replica-a")
	rec.watch(b, "replica-b")
	runners := map[*Lease]*runner{a: run(t, a), b: run(t, b)}
	holder, standby := holderOf(t, a, b)
	heldCtx, err := holder.Acquired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the standby to have read the lease, so that it polls.
	waitUntil(t, "the standby to read the lease", func() bool { return standby.State().Present })
	stopped := time.Now()
	runners[holder].stop(t)
	if cause := context.Cause(heldCtx); cause == nil || !strings.Contains(cause.Error(), "released") {
		t.Errorf("Acquired context's cause after stop: %v", cause)
	}
	if err := holder.Check(); err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("Check after stop: %v", err)
	}
	waitUntil(t, "the standby to take over", func() bool { return standby.Check() == nil })
	if d := time.Since(stopped); d > testRenew+slack {
		t.Errorf("took over %s after the release, want about one renew interval %s", d, testRenew)
	}
	rec.checkNoOverlap(t)
}

// A restarted daemon (same holder name, new instance) is another holder:
// it stays standby while the lease is renewed, and takes over only after
// the TTL once the old instance is dead.
func TestRestartedHolderStaysStandby(t *testing.T) {
	s := fsStoreAt(t, t.TempDir())
	rec := &recorder{}
	old := newLease(t, s, "replica-a", testTTL, testRenew, nil)
	rec.watch(old, "old")
	oldRun := run(t, old)
	waitUntil(t, "the first instance to hold", func() bool { return old.Check() == nil })

	restarted := newLease(t, s, "replica-a", testTTL, testRenew, nil)
	rec.watch(restarted, "restarted")
	run(t, restarted)
	deadline := time.Now().Add(2 * testTTL)
	for time.Now().Before(deadline) {
		if err := old.Check(); err != nil {
			t.Fatalf("the first instance lost the lease: %v", err)
		}
		if restarted.Check() == nil {
			t.Fatal("the restarted instance holds the lease while the first one renews it")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := restarted.State().String(); !strings.Contains(st, "standby: held by replica-a (another instance "+old.instance+")") {
		t.Errorf("restarted instance's state: %s", st)
	}
	oldRun.kill(t)
	waitUntil(t, "the restarted instance to take over", func() bool { return restarted.Check() == nil })
	if d := rec.last("restarted").from.Sub(old.lastWrite()); d < testTTL {
		t.Errorf("the restarted instance took over %s after the last renewal, before the TTL", d)
	}
	rec.checkNoOverlap(t)
}

// jitterStore delays every call before and after the underlying one, so
// that writes land while their writers have not heard back yet.
type jitterStore struct{ Store }

func jitter() { time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond) }

func (s jitterStore) Read(ctx context.Context) ([]byte, string, error) {
	jitter()
	defer jitter()
	return s.Store.Read(ctx)
}

func (s jitterStore) Create(ctx context.Context, body []byte) (string, error) {
	jitter()
	defer jitter()
	return s.Store.Create(ctx, body)
}

func (s jitterStore) Replace(ctx context.Context, v string, body []byte) (string, error) {
	jitter()
	defer jitter()
	return s.Store.Replace(ctx, v, body)
}

// Leases started at once, whose holders stop, die or are cut off from the
// bucket one after another, never pass Check at the same time, and the
// epoch grows with each holder.
func TestNoTwoHoldersAtOnce(t *testing.T) {
	const (
		rounds  = 20
		leases  = 4
		ttl     = 300 * time.Millisecond
		renew   = 60 * time.Millisecond
		handoff = 3
	)
	for r := range rounds {
		shared := jitterStore{fsStoreAt(t, t.TempDir())}
		rec := &recorder{}
		var live, all []*runner
		stores := map[*Lease]*cutStore{}
		for i := range leases {
			s := &cutStore{Store: shared, cutReads: true}
			l := newLease(t, s, fmt.Sprintf("replica-%d", i), ttl, renew, nil)
			stores[l] = s
			rec.watch(l, fmt.Sprintf("replica-%d", i))
			live = append(live, &runner{l: l})
		}
		for i, rn := range live {
			live[i] = run(t, rn.l)
		}
		all = slices.Clone(live)
		for h := range handoff {
			var holder int
			waitUntil(t, "a holder", func() bool {
				holder = slices.IndexFunc(live, func(rn *runner) bool { return rn.l.Check() == nil })
				return holder >= 0
			})
			switch (r + h) % 3 {
			case 0:
				live[holder].kill(t)
			case 1:
				live[holder].stop(t)
			case 2:
				// It keeps running, and holding until its safe end.
				stores[live[holder].l].cut.Store(true)
			}
			live = slices.Delete(live, holder, holder+1)
		}
		for _, rn := range all {
			rn.stop(t)
		}
		rec.checkNoOverlap(t)
		if t.Failed() {
			t.Fatalf("round %d", r)
		}
		rec.mu.Lock()
		n := len(rec.ivs)
		rec.mu.Unlock()
		if n < handoff {
			t.Fatalf("round %d: %d holders for %d handoffs", r, n, handoff)
		}
	}
}

// cutStore fails writes (or every call) while cut, like a daemon cut off
// from the bucket, and counts the writes that succeed.
type cutStore struct {
	Store
	cut      atomic.Bool
	cutReads bool
	wrote    atomic.Int64
}

var errCut = errors.New("injected: bucket unreachable")

func (s *cutStore) Read(ctx context.Context) ([]byte, string, error) {
	if s.cutReads && s.cut.Load() {
		return nil, "", errCut
	}
	return s.Store.Read(ctx)
}

func (s *cutStore) Create(ctx context.Context, body []byte) (string, error) {
	if s.cut.Load() {
		return "", errCut
	}
	v, err := s.Store.Create(ctx, body)
	if err == nil {
		s.wrote.Add(1)
	}
	return v, err
}

func (s *cutStore) Replace(ctx context.Context, version string, body []byte) (string, error) {
	if s.cut.Load() {
		return "", errCut
	}
	v, err := s.Store.Replace(ctx, version, body)
	if err == nil {
		s.wrote.Add(1)
	}
	return v, err
}

// A holder cut off from the bucket fails Check no later than its safe end,
// its Acquired context ends, and it does not hold again until a write
// succeeds.
func TestCutOff(t *testing.T) {
	for _, cutReads := range []bool{false, true} {
		t.Run(fmt.Sprintf("reads fail too: %t", cutReads), func(t *testing.T) {
			s := &cutStore{Store: fsStoreAt(t, t.TempDir()), cutReads: cutReads}
			reg := prometheus.NewRegistry()
			l := newLease(t, s, "replica-a", testTTL, testRenew, reg)
			var gained atomic.Int64
			l.onHeld = func(int64, time.Time) { gained.Add(1) }
			run(t, l)
			ctx, err := l.Acquired(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			s.cut.Store(true)
			var failed time.Time
			for giveUp := time.Now().Add(time.Minute); ; {
				if err := l.Check(); err != nil {
					failed = time.Now()
					if !strings.Contains(err.Error(), "expired") {
						t.Errorf("Check: %v", err)
					}
					break
				}
				if time.Now().After(giveUp) {
					t.Fatal("Check passes a minute after the cut")
				}
				time.Sleep(100 * time.Microsecond)
			}
			l.mu.Lock()
			safeEnd, written := l.safeEnd, l.written
			l.mu.Unlock()
			// Check is clocked, not polled, so only this loop's step and
			// scheduling come on top.
			if failed.After(safeEnd.Add(20 * time.Millisecond)) {
				t.Errorf("Check passed until %s, after the safe end %s", failed.Sub(safeEnd), safeEnd.Format(timeFormat))
			}
			if d := safeEnd.Sub(written); d != testTTL-testTTL/5 {
				t.Errorf("safe end %s after the last renewal, want TTL-TTL/5", d)
			}
			select {
			case <-ctx.Done():
				if c := context.Cause(ctx); !strings.Contains(c.Error(), "injected: bucket unreachable") {
					t.Errorf("cause: %v", c)
				}
			case <-time.After(slack):
				t.Fatal("the Acquired context outlived the safe end")
			}
			if st := l.State(); st.Held || !errors.Is(st.Err, errCut) || !strings.Contains(st.String(), "bucket unreachable") {
				t.Errorf("state: %+v: %s", st, st)
			}
			// It keeps trying, and fails, for two TTLs.
			n := gained.Load()
			deadline := time.Now().Add(2 * testTTL)
			for time.Now().Before(deadline) {
				if l.Check() == nil || gained.Load() != n {
					t.Fatal("the lease was gained again without a successful write")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if e := testutil.ToFloat64(l.m.errors); e < 2 {
				t.Errorf("errors_total %v, want several", e)
			}
			// Back in touch: the lease is still this process' own, so it
			// takes it again at once with a new epoch.
			wrote := s.wrote.Load()
			s.cut.Store(false)
			waitUntil(t, "the lease again", func() bool { return l.Check() == nil })
			if s.wrote.Load() == wrote {
				t.Error("held again without a successful write")
			}
			if st := l.State(); st.Epoch != 2 || st.Err != nil {
				t.Errorf("state after the cut: %+v", st)
			}
		})
	}
}

// A standby that cannot reach the bucket stays standby, and a bucket that
// answers with another holder's lease keeps it so.
func TestAcquiredWaits(t *testing.T) {
	s := fsStoreAt(t, t.TempDir())
	a := newLease(t, s, "replica-a", testTTL, testRenew, nil)
	b := newLease(t, s, "replica-b", testTTL, testRenew, nil)
	run(t, a)
	waitUntil(t, "a to hold", func() bool { return a.Check() == nil })
	run(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTTL)
	defer cancel()
	if _, err := b.Acquired(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("standby's Acquired returned %v", err)
	}
	if err := b.Check(); err == nil || !strings.Contains(err.Error(), "not held: holder replica-a") {
		t.Errorf("standby's Check: %v", err)
	}
}

func TestMetricsAndState(t *testing.T) {
	s := fsStoreAt(t, t.TempDir())
	ra, rb := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := newLease(t, s, "replica-a", testTTL, testRenew, ra)
	b := newLease(t, s, "replica-b", testTTL, testRenew, rb)
	if st := a.State().String(); st != "unknown: the bucket was not read yet" {
		t.Errorf("state before Run: %s", st)
	}
	runA := run(t, a)
	waitUntil(t, "a to hold", func() bool { return a.Check() == nil })
	run(t, b)
	waitUntil(t, "b to read the lease", func() bool { return b.State().Present })

	wantHolder := func(m *metrics, name string) {
		t.Helper()
		if n := testutil.CollectAndCount(m.holder); n != 1 {
			t.Errorf("%d holder series, want 1", n)
		}
		if v := testutil.ToFloat64(m.holder.WithLabelValues(name)); v != 1 {
			t.Errorf("holder{holder=%q} = %v", name, v)
		}
	}
	if v := testutil.ToFloat64(a.m.held); v != 1 {
		t.Errorf("a held = %v", v)
	}
	if v := testutil.ToFloat64(b.m.held); v != 0 {
		t.Errorf("b held = %v", v)
	}
	wantHolder(a.m, "replica-a")
	wantHolder(b.m, "replica-a")
	if v := testutil.ToFloat64(b.m.epoch); v != 1 {
		t.Errorf("b epoch = %v", v)
	}
	if v := testutil.ToFloat64(a.m.expiry); v < float64(time.Now().Unix()) {
		t.Errorf("a expiry_timestamp_seconds = %v, in the past", v)
	}
	if st := a.State(); !strings.HasPrefix(st.String(), "holder replica-a (this daemon), epoch 1, expires in ") || !st.Held {
		t.Errorf("holder's state: %s", st)
	}
	if st := b.State().String(); !strings.HasPrefix(st, "standby: held by replica-a, epoch 1, expires in ") {
		t.Errorf("standby's state: %s", st)
	}

	runA.stop(t)
	waitUntil(t, "b to hold", func() bool { return b.Check() == nil })
	wantHolder(b.m, "replica-b")
	if v := testutil.ToFloat64(b.m.transitions.WithLabelValues("held")); v != 1 {
		t.Errorf("b transitions_total{to=held} = %v", v)
	}
	if v := testutil.ToFloat64(b.m.transitions.WithLabelValues("standby")); v != 1 {
		t.Errorf("b transitions_total{to=standby} = %v", v)
	}
	if v := testutil.ToFloat64(a.m.transitions.WithLabelValues("standby")); v != 1 {
		t.Errorf("a transitions_total{to=standby} = %v", v)
	}
	if v := testutil.ToFloat64(a.m.held); v != 0 {
		t.Errorf("a held after stop = %v", v)
	}
	if st := a.State().String(); st != "standby: released by replica-a (this daemon), epoch 1" {
		t.Errorf("a's state after release: %s", st)
	}
	if v := testutil.ToFloat64(b.m.epoch); v != 2 {
		t.Errorf("b epoch = %v", v)
	}
}
