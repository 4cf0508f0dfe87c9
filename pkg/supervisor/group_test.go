package supervisor

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// waitTimeout bounds every wait on the group; it is far above what any test
// needs so that only a real hang trips it.
const waitTimeout = 10 * time.Second

// pollUntil polls cond until it holds or waitTimeout passes.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// runGroup runs g in the background; the channel yields Run's result.
func runGroup(g *Group) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- g.Run() }()
	return ch
}

func waitRun(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("group did not stop")
		return nil
	}
}

// metricValue returns the value of metric{name=component} gathered from reg,
// and whether the series exists.
func metricValue(t *testing.T, reg *prometheus.Registry, metric, component string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "name" && lp.GetValue() == component {
					if c := m.GetCounter(); c != nil {
						return c.GetValue(), true
					}
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

func assertMetric(t *testing.T, reg *prometheus.Registry, metric, component string, want float64) {
	t.Helper()
	got, ok := metricValue(t, reg, metric, component)
	if !ok {
		t.Errorf("%s{name=%q} not exported, want %v", metric, component, want)
	} else if got != want {
		t.Errorf("%s{name=%q} = %v, want %v", metric, component, got, want)
	}
}

// failure is one "component failed; restarting with backoff" log record.
type failure struct {
	component string
	err       string
	backoff   time.Duration
}

// recLogger records the failures the group logs.
type recLogger struct {
	mtx      sync.Mutex
	failures []failure
}

func (l *recLogger) Log(keyvals ...any) error {
	kv := map[string]any{}
	for i := 0; i+1 < len(keyvals); i += 2 {
		kv[fmt.Sprint(keyvals[i])] = keyvals[i+1]
	}
	if kv["msg"] != "component failed; restarting with backoff" {
		return nil
	}
	f := failure{component: fmt.Sprint(kv["component"]), err: fmt.Sprint(kv["err"])}
	f.backoff, _ = kv["backoff"].(time.Duration)
	l.mtx.Lock()
	defer l.mtx.Unlock()
	l.failures = append(l.failures, f)
	return nil
}

func (l *recLogger) get() []failure {
	l.mtx.Lock()
	defer l.mtx.Unlock()
	return append([]failure(nil), l.failures...)
}

// progressActor is a critical actor that counts until told to finish
// (returns nil) or interrupted (returns errInterrupted).
type progressActor struct {
	count  atomic.Int64
	finish chan struct{}
	stop   chan struct{}
	once   sync.Once
}

var errInterrupted = errors.New("interrupted")

func addProgressActor(g *Group, name string) *progressActor {
	a := &progressActor{finish: make(chan struct{}), stop: make(chan struct{})}
	g.Add(name, func() error {
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-a.finish:
				return nil
			case <-a.stop:
				return errInterrupted
			case <-tk.C:
				a.count.Add(1)
			}
		}
	}, func(error) { a.once.Do(func() { close(a.stop) }) })
	return a
}

// waitProgress waits until the actor counted past its current value.
func (a *progressActor) waitProgress(t *testing.T) {
	t.Helper()
	from := a.count.Load()
	pollUntil(t, "the critical actor to make progress", func() bool { return a.count.Load() > from+2 })
}

func TestBackoffNext(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	var got []time.Duration
	var cur time.Duration
	for range 7 {
		cur = b.next(cur)
		got = append(got, cur)
	}
	ms := time.Millisecond
	if want := []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 80 * ms, 80 * ms, 80 * ms}; !reflect.DeepEqual(got, want) {
		t.Errorf("backoff sequence = %v, want %v", got, want)
	}
	if got := b.next(3 * ms); got != 10*ms {
		t.Errorf("next(below Min) = %v, want Min", got)
	}
	if got := b.next(60 * ms); got != 80*ms {
		t.Errorf("next(60ms) = %v, want capped at Max", got)
	}
	if got := defaultBackoff.next(defaultBackoff.Max); got != time.Minute {
		t.Errorf("defaultBackoff.next(Max) = %v, want 1m", got)
	}
}

// A non-critical service that keeps failing is restarted with a growing
// backoff and counted, shows as degraded without making the daemon unready,
// and does not disturb the critical actor; once it runs again it is healthy.
func TestServiceRestartedWithBackoff(t *testing.T) {
	const minFailures = 7
	backoff := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	reg := prometheus.NewRegistry()
	rd := NewReadiness()
	logger := &recLogger{}
	g := NewGroup(logger, reg, rd, backoff)

	ingest := addProgressActor(g, "ingest")

	var (
		mtx    sync.Mutex
		starts []time.Time
		ctxs   []context.Context
	)
	attempts := func() int {
		mtx.Lock()
		defer mtx.Unlock()
		return len(starts)
	}
	healthy := make(chan struct{})   // closed by the test: the next attempt succeeds
	recovered := make(chan struct{}) // closed by the healthy attempt
	g.AddService("flaky", func(ctx context.Context) error {
		mtx.Lock()
		starts = append(starts, time.Now())
		ctxs = append(ctxs, ctx)
		n := len(starts)
		mtx.Unlock()
		select {
		case <-healthy:
			close(recovered)
			<-ctx.Done()
			return ctx.Err()
		default:
		}
		switch n {
		case 2:
			return nil // returning early without an error is a failure too
		case 3:
			panic("boom")
		default:
			return fmt.Errorf("broken #%d", n)
		}
	})

	done := runGroup(g)

	// While the service fails, look at readiness and at the critical actor.
	var (
		sawDegraded     bool
		progressAtStart int64
	)
	pollUntil(t, "the service to fail twice", func() bool { return attempts() >= 2 })
	progressAtStart = ingest.count.Load()
	pollUntil(t, fmt.Sprintf("%d failed attempts and a degraded detail", minFailures), func() bool {
		if !rd.IsReady() {
			t.Fatalf("daemon became unready while a non-critical service failed: %q", rd.Detail())
		}
		for _, l := range rd.Detail() {
			if !strings.HasPrefix(l, "flaky: degraded: failed, restarting in ") {
				t.Fatalf("unexpected detail line %q", l)
			}
			sawDegraded = true
		}
		return sawDegraded && attempts() >= minFailures
	})
	if p := ingest.count.Load(); p <= progressAtStart {
		t.Errorf("critical actor stalled while the service failed: count %d -> %d", progressAtStart, p)
	}
	select {
	case err := <-done:
		t.Fatalf("group stopped while only a non-critical service failed: %v", err)
	default:
	}

	close(healthy)
	select {
	case <-recovered:
	case <-time.After(waitTimeout):
		t.Fatal("the service was not restarted after failing")
	}
	// The detail is cleared and up set before the attempt runs.
	assertDetail(t, rd)
	assertMetric(t, reg, "monstackd_component_up", "flaky", 1)
	ingest.waitProgress(t)

	close(ingest.finish)
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run() = %v, want nil after the critical actor returned nil", err)
	}

	mtx.Lock()
	defer mtx.Unlock()
	failures := len(starts) - 1 // every attempt but the last, healthy one
	if failures < minFailures {
		t.Fatalf("only %d failures", failures)
	}

	// The same run ctx is reused for every attempt, and is cancelled on stop.
	for i, ctx := range ctxs {
		if ctx.Err() == nil {
			t.Errorf("attempt %d: run ctx not cancelled after the group stopped", i+1)
		}
	}

	// Gaps between attempts are at least the backoff, which doubles from Min
	// and is capped at Max. Only lower bounds: scheduling may add delay.
	wantWait := func(i int) time.Duration { return min(backoff.Min<<i, backoff.Max) }
	for i := range failures {
		if gap := starts[i+1].Sub(starts[i]); gap < wantWait(i) {
			t.Errorf("gap after failure %d = %v, want >= %v", i+1, gap, wantWait(i))
		}
	}

	// Every failure was logged with the exact backoff and cause.
	logged := logger.get()
	if len(logged) != failures {
		t.Fatalf("%d failures logged, want %d: %+v", len(logged), failures, logged)
	}
	for i, f := range logged {
		if f.component != "flaky" || f.backoff != wantWait(i) {
			t.Errorf("failure %d logged as %+v, want component flaky, backoff %v", i+1, f, wantWait(i))
		}
		var want string
		switch i + 1 {
		case 2:
			want = "returned unexpectedly"
		case 3:
			want = "panic: boom"
		default:
			want = fmt.Sprintf("broken #%d", i+1)
		}
		if !strings.Contains(f.err, want) {
			t.Errorf("failure %d logged error %q, want it to contain %q", i+1, f.err, want)
		}
	}

	expected := fmt.Sprintf(`
# HELP monstackd_component_panics_total Panics recovered in a non-critical component.
# TYPE monstackd_component_panics_total counter
monstackd_component_panics_total{name="flaky"} 1
# HELP monstackd_component_restarts_total Restarts of a non-critical component after it failed.
# TYPE monstackd_component_restarts_total counter
monstackd_component_restarts_total{name="flaky"} %d
`, failures)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected),
		"monstackd_component_restarts_total", "monstackd_component_panics_total"); err != nil {
		t.Error(err)
	}
	// The critical actor is reported down once it returned.
	assertMetric(t, reg, "monstackd_component_up", "ingest", 0)
}

// A panic is recovered, counted and shown (first line only) as degraded;
// stopping the group does not wait for the backoff to elapse.
func TestServicePanicRecovered(t *testing.T) {
	reg := prometheus.NewRegistry()
	rd := NewReadiness()
	logger := &recLogger{}
	g := NewGroup(logger, reg, rd, Backoff{Min: time.Hour, Max: time.Hour})
	ingest := addProgressActor(g, "ingest")

	var (
		calls  atomic.Int32
		runCtx atomic.Pointer[context.Context]
	)
	g.AddService("rules", func(ctx context.Context) error {
		runCtx.Store(&ctx)
		calls.Add(1)
		panic(fmt.Sprintf("kaboom %d", 42))
	})
	done := runGroup(g)

	want := "rules: degraded: failed, restarting in 1h0m0s: panic: kaboom 42"
	pollUntil(t, "the panic to show in the readiness detail", func() bool {
		d := rd.Detail()
		return len(d) == 1 && d[0] == want
	})
	if !rd.IsReady() {
		t.Error("a panicking non-critical service made the daemon unready")
	}
	assertMetric(t, reg, "monstackd_component_panics_total", "rules", 1)
	assertMetric(t, reg, "monstackd_component_restarts_total", "rules", 1)
	assertMetric(t, reg, "monstackd_component_up", "rules", 0)
	assertMetric(t, reg, "monstackd_component_up", "ingest", 1)
	ingest.waitProgress(t)

	// The log keeps the stack trace the detail leaves out.
	logged := logger.get()
	if len(logged) != 1 || !strings.Contains(logged[0].err, "panic: kaboom 42\n") ||
		!strings.Contains(logged[0].err, "group_test.go") {
		t.Errorf("logged failures = %+v, want one with the panic and its stack", logged)
	}

	start := time.Now()
	close(ingest.finish)
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %v: the backoff was waited out", d)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("service ran %d times, want 1 (backoff of 1h)", n)
	}
	if (*runCtx.Load()).Err() == nil {
		t.Error("service run ctx not cancelled after the group stopped")
	}
}

// When a critical actor fails, Run returns its error prefixed with its name,
// and services are stopped (their run returned) before Run returns.
func TestCriticalActorErrorStopsGroup(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := NewGroup(log.NewNopLogger(), reg, NewReadiness(), Backoff{Min: time.Millisecond, Max: time.Millisecond})

	var svcReturned atomic.Bool
	started := make(chan struct{})
	g.AddService("querier", func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		svcReturned.Store(true)
		return ctx.Err()
	})
	cause := errors.New("disk full")
	fail := make(chan struct{})
	g.Add("tsdb", func() error { <-fail; return cause }, func(error) {})
	other := addProgressActor(g, "web")

	done := runGroup(g)
	<-started
	pollUntil(t, "tsdb to report up", func() bool {
		v, ok := metricValue(t, reg, "monstackd_component_up", "tsdb")
		return ok && v == 1
	})
	close(fail)
	err := waitRun(t, done)
	if !errors.Is(err, cause) || err.Error() != "tsdb: disk full" {
		t.Errorf("Run() = %v, want %q wrapping the cause", err, "tsdb: disk full")
	}
	if !svcReturned.Load() {
		t.Error("Run returned before the service's run returned")
	}
	select {
	case <-other.stop:
	default:
		t.Error("the other critical actor was not interrupted")
	}
	assertMetric(t, reg, "monstackd_component_up", "tsdb", 0)
	// A service stopped by the group is not a failure.
	if v, ok := metricValue(t, reg, "monstackd_component_restarts_total", "querier"); ok && v != 0 {
		t.Errorf("restarts{querier} = %v, want 0", v)
	}
}

// Actors are interrupted in the order they were added, and a service is fully
// stopped before the actors added after it are interrupted.
func TestInterruptOrder(t *testing.T) {
	g := NewGroup(log.NewNopLogger(), prometheus.NewRegistry(), NewReadiness(), defaultBackoff)
	var (
		mtx    sync.Mutex
		events []string
	)
	record := func(e string) {
		mtx.Lock()
		defer mtx.Unlock()
		events = append(events, e)
	}
	var started sync.WaitGroup
	service := func(name string) func(context.Context) error {
		started.Add(1)
		return func(ctx context.Context) error {
			started.Done()
			<-ctx.Done()
			// A slow shutdown: the actors added later must wait for it.
			time.Sleep(20 * time.Millisecond)
			record(name + " stopped")
			return nil
		}
	}
	critical := func(name string) {
		stop := make(chan struct{})
		g.Add(name, func() error { <-stop; return nil }, func(error) {
			record(name + " interrupted")
			close(stop)
		})
	}

	trigger := make(chan struct{})
	g.Add("trigger", func() error { <-trigger; return nil }, func(error) { record("trigger interrupted") })
	g.AddService("svc1", service("svc1"))
	critical("A")
	g.AddService("svc2", service("svc2"))
	critical("B")

	done := runGroup(g)
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	select {
	case <-allStarted:
	case <-time.After(waitTimeout):
		t.Fatal("services did not start")
	}
	close(trigger)
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run() = %v", err)
	}

	want := []string{"trigger interrupted", "svc1 stopped", "A interrupted", "svc2 stopped", "B interrupted"}
	mtx.Lock()
	defer mtx.Unlock()
	if !reflect.DeepEqual(events, want) {
		t.Errorf("stop order = %q, want %q", events, want)
	}
}

// A service that honours its ctx and keeps running is never restarted.
func TestHealthyServiceNotRestarted(t *testing.T) {
	reg := prometheus.NewRegistry()
	rd := NewReadiness()
	g := NewGroup(log.NewNopLogger(), reg, rd, Backoff{Min: time.Millisecond, Max: time.Millisecond})
	var calls atomic.Int32
	g.AddService("querier", func(ctx context.Context) error {
		calls.Add(1)
		<-ctx.Done()
		return errors.New("stopping") // an error on shutdown is not a failure
	})
	ingest := addProgressActor(g, "ingest")
	done := runGroup(g)
	pollUntil(t, "the service to start", func() bool { return calls.Load() == 1 })
	ingest.waitProgress(t)
	assertMetric(t, reg, "monstackd_component_up", "querier", 1)
	close(ingest.finish)
	if err := waitRun(t, done); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("service ran %d times, want 1", n)
	}
	if _, ok := metricValue(t, reg, "monstackd_component_restarts_total", "querier"); ok {
		t.Error("restarts counted for a service that never failed")
	}
	assertDetail(t, rd)
}

// A failure after a healthy run longer than the longest backoff starts the
// backoff over instead of waiting the maximum forever after.
func TestBackoffResetsAfterHealthyRun(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := NewGroup(log.NewNopLogger(), reg, NewReadiness(), Backoff{Min: 10 * time.Millisecond, Max: 40 * time.Millisecond})
	var (
		mtx      sync.Mutex
		attempts []time.Time
	)
	g.AddService("shipper", func(ctx context.Context) error {
		mtx.Lock()
		attempts = append(attempts, time.Now())
		n := len(attempts)
		mtx.Unlock()
		if n == 5 {
			// Healthy for longer than Max, then a new failure.
			time.Sleep(100 * time.Millisecond)
		}
		return errors.New("unreachable")
	})
	stop := make(chan struct{})
	g.Add("tsdb", func() error { <-stop; return nil }, func(error) {})
	done := runGroup(g)
	pollUntil(t, "7 attempts", func() bool {
		mtx.Lock()
		defer mtx.Unlock()
		return len(attempts) >= 7
	})
	close(stop)
	_ = waitRun(t, done)
	mtx.Lock()
	defer mtx.Unlock()
	// Attempt 5 ran 100ms; the wait after it is Min again, not Max.
	afterHealthy := attempts[5].Sub(attempts[4]) - 100*time.Millisecond
	if afterHealthy >= 40*time.Millisecond {
		t.Errorf("wait after a healthy run %s, want the minimum backoff (10ms) again", afterHealthy)
	}
	if gap := attempts[6].Sub(attempts[5]); gap < 20*time.Millisecond {
		t.Errorf("wait after the next failure %s, want it doubled to at least 20ms", gap)
	}
}
