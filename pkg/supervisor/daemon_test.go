package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/monstackd/monstackd/pkg/config"
)

func gatherValue(t *testing.T, d *testDaemon, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := d.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %v", what, err)
}

// testDaemon is a daemon run by a test on a config of its own.
type testDaemon struct {
	*Daemon
	dir, httpAddr string
	done          chan error
}

// newTestDaemon writes prom as prometheus.yml (%s is replaced with the HTTP
// address) and monstack.yml with the monstack sections added (%d is
// replaced with the test's directory), and returns a daemon on them with a
// registry of its own.
func newTestDaemon(t *testing.T, prom string, opts Options, monstack ...string) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := l.Addr().String()
	l.Close()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(strings.ReplaceAll(prom, "%s", httpAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "monstack.yml")
	if err := os.WriteFile(cfgFile, []byte("prometheus:\n  config_file: prometheus.yml\n"+strings.ReplaceAll(strings.Join(monstack, ""), "%d", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.ConfigFile = cfgFile
	role := config.Role{Name: config.RoleStandalone}
	if opts.Runtime.Role.Name != "" {
		role = opts.Runtime.Role
	}
	opts.Runtime = config.Runtime{Role: role, DataDir: filepath.Join(dir, "data"), HTTPAddress: httpAddr}
	opts.GRPCAddress = "127.0.0.1:0"
	opts.Registry = prometheus.NewRegistry()
	return &testDaemon{Daemon: New(log.NewNopLogger(), opts), dir: dir, httpAddr: httpAddr, done: make(chan error, 1)}
}

// start runs the daemon until the end of the test and waits until it is ready.
func (d *testDaemon) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { d.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-d.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop within 10s")
		}
	})
	waitFor(t, 30*time.Second, "ready", func() error {
		code, body, err := d.get("/-/ready")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
}

func (d *testDaemon) get(path string) (int, string, error) {
	resp, err := http.Get("http://" + d.httpAddr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

const selfScrape = "global:\n  scrape_interval: 100ms\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: [%q]\n"

// A non-critical component that keeps failing is restarted with growing
// backoff, counted and reported, while scraping goes on.
func TestDaemonRestartsFailingServiceWhileScraping(t *testing.T) {
	var (
		mtx      sync.Mutex
		attempts []time.Time
	)
	failing := Service{Name: "failing", Run: func(ctx context.Context) error {
		mtx.Lock()
		attempts = append(attempts, time.Now())
		n := len(attempts)
		mtx.Unlock()
		if n%2 == 0 {
			panic("boom")
		}
		return errors.New("bucket unreachable")
	}}
	d := newTestDaemon(t, fmt.Sprintf(selfScrape, "%s"), Options{
		Backoff:  Backoff{Min: 20 * time.Millisecond, Max: 320 * time.Millisecond},
		Services: []Service{failing},
	})
	d.start(t)
	httpAddr := d.httpAddr

	appended := func() float64 {
		return gatherValue(t, d, "prometheus_tsdb_head_samples_appended_total", map[string]string{"type": "float"})
	}
	waitFor(t, 10*time.Second, "first scrapes", func() error {
		if v := appended(); v == 0 {
			return errors.New("no sample appended yet")
		}
		return nil
	})
	start := appended()

	waitFor(t, 20*time.Second, "6 restarts", func() error {
		if v := gatherValue(t, d, "monstackd_component_restarts_total", map[string]string{"name": "failing"}); v < 6 {
			return fmt.Errorf("%v restarts", v)
		}
		return nil
	})
	if v := gatherValue(t, d, "monstackd_component_panics_total", map[string]string{"name": "failing"}); v < 3 {
		t.Errorf("%v panics recovered, want at least 3", v)
	}

	mtx.Lock()
	gaps := make([]time.Duration, 0, len(attempts))
	for i := 1; i < len(attempts); i++ {
		gaps = append(gaps, attempts[i].Sub(attempts[i-1]))
	}
	mtx.Unlock()
	// 20ms, 40ms, 80ms, 160ms, 320ms, 320ms: each wait at least the backoff.
	want := 20 * time.Millisecond
	for i, g := range gaps[:6] {
		if g < want {
			t.Errorf("gap %d before restart was %s, want at least %s (gaps %v)", i, g, want, gaps)
		}
		if want < 320*time.Millisecond {
			want *= 2
		}
	}

	// Scraping went on while the component failed.
	waitFor(t, 10*time.Second, "ingestion to continue", func() error {
		if v := appended(); v <= start {
			return fmt.Errorf("samples appended %v, still %v", v, start)
		}
		return nil
	})

	// The daemon stays ready; the detail names the failing component.
	resp, err := http.Get("http://" + httpAddr + "/-/ready")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "failing: degraded") {
		t.Fatalf("/-/ready: %d %q, want 200 naming the failing component", resp.StatusCode, body)
	}
	if v := gatherValue(t, d, "monstackd_component_up", map[string]string{"name": Scrape}); v != 1 {
		t.Fatalf("monstackd_component_up{name=scrape} = %v, want 1", v)
	}
}
