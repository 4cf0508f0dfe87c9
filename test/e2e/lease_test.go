package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/monstackd/monstackd/pkg/components/lease"
	"github.com/monstackd/monstackd/pkg/components/lease/leasetest"
)

const (
	leaseTTL   = 1500 * time.Millisecond
	leaseRenew = 300 * time.Millisecond
	// leaseSlack covers MinIO's latency and the test's polling.
	leaseSlack = 500 * time.Millisecond
)

func leaseStore(t *testing.T, m *minio, prefix string) lease.Store {
	t.Helper()
	conf := m.bucketYAML()
	if prefix != "" {
		conf += "prefix: " + prefix + "\n"
	}
	s, err := lease.NewStore([]byte(conf), "bucket.yml: field ")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// leaseRace runs the writers at once (leasetest.Race): any failure but a
// lost conditional write fails the test.
func leaseRace(t *testing.T, n int, write func(i int) (string, error)) (winners []int, versions []string) {
	t.Helper()
	return leasetest.Race(t, n, func(err error) bool { return errors.Is(err, lease.ErrConflict) }, write)
}

// MinIO's conditional writes are a compare-and-swap: of writers racing to
// Create the lease, or to Replace one version of it, exactly one wins.
func TestLeaseMinioCAS(t *testing.T) {
	m := startMinio(t)
	ctx := context.Background()
	const rounds, writers = 100, 8
	for r := range rounds {
		s := leaseStore(t, m, fmt.Sprintf("cas/%d", r))
		body := func(step, i int) []byte { return fmt.Appendf(nil, `{"round":%d,"step":%d,"writer":%d}`, r, step, i) }
		won, versions := leaseRace(t, writers, func(i int) (string, error) { return s.Create(ctx, body(0, i)) })
		if len(won) != 1 {
			t.Fatalf("round %d: %d of %d Creates won, want 1", r, len(won), writers)
		}
		leaseReadBack(t, s, body(0, won[0]), versions[0])
		first := versions[0]
		won, versions = leaseRace(t, writers, func(i int) (string, error) { return s.Replace(ctx, first, body(1, i)) })
		if len(won) != 1 {
			t.Fatalf("round %d: %d of %d Replaces won, want 1", r, len(won), writers)
		}
		leaseReadBack(t, s, body(1, won[0]), versions[0])
		if _, err := s.Replace(ctx, first, body(2, 0)); !errors.Is(err, lease.ErrConflict) {
			t.Fatalf("round %d: Replace of a stale version: want ErrConflict, got %v", r, err)
		}
	}
	s := leaseStore(t, m, "absent")
	if _, _, err := s.Read(ctx); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Read of a missing lease: want ErrNotFound, got %v", err)
	}
	// If-Match on a missing object is 404 NoSuchKey, not 412.
	if _, err := s.Replace(ctx, "0123456789abcdef0123456789abcdef", []byte("x")); !errors.Is(err, lease.ErrConflict) {
		t.Errorf("Replace of a missing lease: want ErrConflict, got %v", err)
	}
}

// Reads racing writes succeed, and each returns a body with its own
// version.
func TestLeaseMinioReadWhileWriting(t *testing.T) {
	m := startMinio(t)
	ctx := context.Background()
	s := leaseStore(t, m, "")
	v, err := s.Create(ctx, []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]string{v: "0"} // version → body
	type read struct{ version, body string }
	var (
		reads []read
		nread atomic.Int64
		done  atomic.Bool
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for !done.Load() {
			b, v, err := s.Read(ctx)
			if err != nil {
				t.Errorf("read while writing: %v", err)
				return
			}
			reads = append(reads, read{v, string(b)})
			nread.Add(1)
		}
	})
	// At least 200 writes, and on until 20 reads raced them (a loaded
	// machine may schedule the reader late).
	for i := 1; i <= 200 || (nread.Load() < 20 && i <= 5000); i++ {
		body := fmt.Sprint(i)
		if v, err = s.Replace(ctx, v, []byte(body)); err != nil {
			t.Fatal(err)
		}
		written[v] = body
	}
	done.Store(true)
	wg.Wait()
	for _, r := range reads {
		if want, ok := written[r.version]; !ok || want != r.body {
			t.Fatalf("read body %q as version %s, which has %q", r.body, r.version, want)
		}
	}
	if len(reads) < 20 {
		t.Fatalf("only %d reads", len(reads))
	}
}

func leaseReadBack(t *testing.T, s lease.Store, want []byte, wantVersion string) {
	t.Helper()
	got, v, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) || v != wantVersion {
		t.Fatalf("read %s version %s, want %s version %s", got, v, want, wantVersion)
	}
}

// severableStore is a daemon's view of the bucket that can be cut off, and
// that remembers when its last successful write was sent.
type severableStore struct {
	lease.Store
	cut    atomic.Bool
	mu     sync.Mutex
	lastOK time.Time
}

func (s *severableStore) Read(ctx context.Context) ([]byte, string, error) {
	if s.cut.Load() {
		return nil, "", errors.New("cut off")
	}
	return s.Store.Read(ctx)
}

func (s *severableStore) Create(ctx context.Context, body []byte) (string, error) {
	return s.write(func() (string, error) { return s.Store.Create(ctx, body) })
}

func (s *severableStore) Replace(ctx context.Context, version string, body []byte) (string, error) {
	return s.write(func() (string, error) { return s.Store.Replace(ctx, version, body) })
}

func (s *severableStore) write(f func() (string, error)) (string, error) {
	if s.cut.Load() {
		return "", errors.New("cut off")
	}
	sent := time.Now()
	v, err := f()
	if err == nil {
		s.mu.Lock()
		s.lastOK = sent
		s.mu.Unlock()
	}
	return v, err
}

func (s *severableStore) lastWrite() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastOK
}

// startLease runs a Lease until the test ends; its logs go to logs.
func startLease(t *testing.T, s lease.Store, holder string, logs *syncBuffer) *lease.Lease {
	t.Helper()
	l, err := lease.New(lease.Options{
		Logger: log.With(log.NewLogfmtLogger(logs), "ts", log.DefaultTimestampUTC, "component", "lease", "daemon", holder),
		Store:  s, Holder: holder, TTL: leaseTTL, RenewInterval: leaseRenew,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", holder, err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("lease logs:\n%s", logs)
		}
	})
	return l
}

func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// When the holder stops renewing, the standby takes over no sooner than a
// TTL after the holder's last renewal, and within TTL + renew interval of
// its stop.
func TestLeaseMinioTakeover(t *testing.T) {
	m := startMinio(t)
	logs := &syncBuffer{}
	sa := &severableStore{Store: leaseStore(t, m, "")}
	a := startLease(t, sa, "replica-a", logs)
	pollUntil(t, 10*time.Second, "replica-a to hold", func() bool { return a.Check() == nil })
	b := startLease(t, leaseStore(t, m, ""), "replica-b", logs)
	pollUntil(t, 10*time.Second, "replica-b to read the lease", func() bool { return b.State().Present })
	if b.Check() == nil {
		t.Fatal("both hold")
	}
	heldCtx, err := a.Acquired(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	sa.cut.Store(true)
	cut := time.Now()
	pollUntil(t, 2*leaseTTL+leaseSlack, "replica-b to take over", func() bool {
		if a.Check() == nil && b.Check() == nil {
			t.Fatal("both pass Check")
		}
		return b.Check() == nil
	})
	took := b.State().Renewed // when its winning write was sent
	if d := took.Sub(sa.lastWrite()); d < leaseTTL {
		t.Errorf("replica-b took over %s after replica-a's last renewal, before the TTL %s", d, leaseTTL)
	}
	if d := took.Sub(cut); d > leaseTTL+leaseRenew+leaseSlack {
		t.Errorf("replica-b took over %s after replica-a stopped renewing", d)
	}
	if err := a.Check(); err == nil {
		t.Error("replica-a still passes Check")
	}
	if heldCtx.Err() == nil {
		t.Error("replica-a's Acquired context is not cancelled")
	}
	if st := b.State(); st.Epoch != 2 || !strings.HasPrefix(st.String(), "holder replica-b (this daemon), epoch 2") {
		t.Errorf("replica-b's state: %s", st)
	}
	// Back in touch, replica-a finds replica-b holding and stays standby.
	sa.cut.Store(false)
	pollUntil(t, 10*time.Second, "replica-a to see replica-b", func() bool { return a.State().Holder == "replica-b" })
	if err := a.Check(); err == nil || !strings.Contains(err.Error(), "replica-b") {
		t.Errorf("replica-a's Check: %v", err)
	}
}

// A holder whose MinIO goes away fails Check no later than its safe end;
// nobody holds while MinIO is down, exactly one after it is back, and no
// error, state or log line quotes the secret key.
func TestLeaseMinioOutage(t *testing.T) {
	m := startMinio(t)
	logs := &syncBuffer{}
	a := startLease(t, leaseStore(t, m, ""), "replica-a", logs)
	pollUntil(t, 10*time.Second, "replica-a to hold", func() bool { return a.Check() == nil })
	b := startLease(t, leaseStore(t, m, ""), "replica-b", logs)
	pollUntil(t, 10*time.Second, "replica-b to read the lease", func() bool { return b.State().Present })

	var seen []string // errors and states, to check for the secret
	note := func(s fmt.Stringer, errs ...error) {
		seen = append(seen, s.String())
		for _, err := range errs {
			if err != nil {
				seen = append(seen, err.Error())
			}
		}
	}
	// Watch replica-a from before the stop: the last safe end it showed
	// while holding, and when Check first failed.
	type watch struct {
		safeEnd, failed time.Time
		both            bool
	}
	watched := make(chan watch, 1)
	stopWatch := make(chan struct{})
	go func() {
		var w watch
		defer func() { watched <- w }()
		for {
			select {
			case <-stopWatch:
				return
			default:
			}
			st := a.State()
			errA, errB := a.Check(), b.Check()
			if errA == nil && errB == nil {
				w.both = true
			}
			if st.Held {
				w.safeEnd = st.SafeEnd
			}
			if errA != nil && w.failed.IsZero() {
				w.failed = time.Now()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	m.stop()
	pollUntil(t, 2*leaseTTL+leaseSlack, "replica-a to fail Check", func() bool { return a.Check() != nil })
	// Nobody can write while MinIO is down: nobody holds for two TTLs.
	down := time.Now()
	for time.Since(down) < 2*leaseTTL {
		if errA, errB := a.Check(), b.Check(); errA == nil || errB == nil {
			t.Fatalf("a daemon holds while MinIO is down: replica-a %v, replica-b %v", errA, errB)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stopWatch)
	w := <-watched
	if w.both {
		t.Error("both daemons passed Check at once")
	}
	if w.failed.After(w.safeEnd.Add(20 * time.Millisecond)) {
		t.Errorf("replica-a passed Check until %s after its safe end", w.failed.Sub(w.safeEnd))
	}
	stA, stB := a.State(), b.State()
	if stA.Err == nil || stB.Err == nil {
		t.Errorf("no store errors in the states while MinIO is down: %s / %s", stA, stB)
	}
	if !strings.Contains(stA.String(), "bucket unreachable") {
		t.Errorf("replica-a's state: %s", stA)
	}
	note(stA, stA.Err, a.Check())
	note(stB, stB.Err, b.Check())

	m.restart()
	pollUntil(t, 2*leaseTTL+leaseSlack, "a holder after the restart", func() bool {
		errA, errB := a.Check(), b.Check()
		if errA == nil && errB == nil {
			t.Fatal("both daemons hold after the restart")
		}
		return errA == nil || errB == nil
	})
	// And it stays exactly one.
	for up := time.Now(); time.Since(up) < leaseTTL; time.Sleep(5 * time.Millisecond) {
		if (a.Check() == nil) == (b.Check() == nil) {
			t.Fatalf("not exactly one holder: replica-a %v, replica-b %v", a.Check(), b.Check())
		}
	}
	note(a.State(), a.Check())
	note(b.State(), b.Check())

	// A store with a wrong access key: MinIO refuses it.
	bad, err := lease.NewStore([]byte(strings.Replace(m.bucketYAML(), "access_key: "+minioAccessKey, "access_key: nobody", 1)), "bucket.yml: field ")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = bad.Read(context.Background())
	if err == nil {
		t.Fatal("read with a wrong access key succeeded")
	}
	note(bad, err)
	for _, s := range append(seen, logs.String()) {
		if strings.Contains(s, minioSecretKey) {
			t.Errorf("the secret key appears in: %s", s)
		}
	}
}
