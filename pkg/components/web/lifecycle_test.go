package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

func send(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// lifecycleServer serves with the given lifecycle setting and counts the
// reloads and quits it is asked for.
func lifecycleServer(t *testing.T, enable bool) (base string, reloads, quits *atomic.Int32) {
	t.Helper()
	reloads, quits = new(atomic.Int32), new(atomic.Int32)
	s, err := Listen(log.NewNopLogger(), Options{
		Address:         "127.0.0.1:0",
		EnableLifecycle: enable,
		Gatherer:        prometheus.NewRegistry(),
		Ready:           http.NotFoundHandler(),
		IsReady:         func() bool { return true },
		Reload:          func() error { reloads.Add(1); return nil },
		Quit:            func() { quits.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(s.Shutdown)
	return "http://" + s.Addr().String(), reloads, quits
}

// Without EnableLifecycle, /-/reload and /-/quit answer 403 as in Prometheus
// and do nothing.
func TestLifecycleAPIOffByDefault(t *testing.T) {
	base, reloads, quits := lifecycleServer(t, false)
	for _, path := range []string{"/-/reload", "/-/quit"} {
		for _, m := range []string{http.MethodPost, http.MethodPut} {
			if code, body := send(t, m, base+path); code != http.StatusForbidden || body != "Lifecycle API is not enabled." {
				t.Errorf("%s %s: %d %q, want 403 \"Lifecycle API is not enabled.\"", m, path, code, body)
			}
		}
	}
	if reloads.Load() != 0 || quits.Load() != 0 {
		t.Fatalf("%d reloads, %d quits with the lifecycle API off", reloads.Load(), quits.Load())
	}
}

func TestLifecycleAPIEnabled(t *testing.T) {
	base, reloads, quits := lifecycleServer(t, true)
	if code, body := send(t, http.MethodPut, base+"/-/reload"); code != http.StatusOK {
		t.Fatalf("PUT /-/reload: %d %q", code, body)
	}
	if reloads.Load() != 1 {
		t.Fatalf("%d reloads, want 1", reloads.Load())
	}
	if code, _ := send(t, http.MethodGet, base+"/-/quit"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /-/quit: %d, want 405", code)
	}
	if code, body := send(t, http.MethodPost, base+"/-/quit"); code != http.StatusOK || !strings.Contains(body, "Requesting termination") {
		t.Fatalf("POST /-/quit: %d %q", code, body)
	}
	if code, body := send(t, http.MethodPost, base+"/-/quit"); code != http.StatusOK || !strings.Contains(body, "already in progress") {
		t.Fatalf("second POST /-/quit: %d %q", code, body)
	}
	if quits.Load() != 1 {
		t.Fatalf("%d quits, want 1", quits.Load())
	}
}

// A web config file that cannot be used fails Listen with an error naming
// it, before the port is bound.
func TestListenRejectsBadWebConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(file, []byte("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(log.NewNopLogger(), Options{Address: "127.0.0.1:0", WebConfigFile: file, Gatherer: prometheus.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), "--web.config.file "+file) {
		t.Fatalf("Listen with a bad web config: %v, want an error naming %s", err, file)
	}
	if err := os.WriteFile(file, []byte("basic_auth_users:\n  admin: not-a-bcrypt-hash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ValidateWebConfig(file); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("ValidateWebConfig with a plain-text password: %v", err)
	}
}

// adminStats records the admin calls that reach the TSDB.
type adminStats struct{ cleans atomic.Int32 }

func (a *adminStats) CleanTombstones() error { a.cleans.Add(1); return nil }
func (a *adminStats) Delete(context.Context, int64, int64, ...*labels.Matcher) error {
	return nil
}
func (a *adminStats) Snapshot(string, bool) error            { return nil }
func (a *adminStats) Stats(string, int) (*tsdb.Stats, error) { return &tsdb.Stats{}, nil }
func (a *adminStats) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return tsdb.WALReplayStatus{}, nil
}
func (a *adminStats) BlockMetas() ([]tsdb.BlockMeta, error) { return nil, nil }

// Prometheus' admin TSDB endpoints answer "admin APIs disabled" unless
// EnableAdmin is set.
func TestPrometheusAdminAPI(t *testing.T) {
	for _, enable := range []bool{false, true} {
		admin := &adminStats{}
		api := NewPrometheusAPI(PrometheusAPIOptions{
			Logger:      slog.New(slog.DiscardHandler),
			Admin:       admin,
			DBDir:       t.TempDir(),
			ExternalURL: &url.URL{Scheme: "http", Host: "localhost:9090"},
			Gatherer:    prometheus.NewRegistry(),
			Registerer:  prometheus.NewRegistry(),
			IsReady:     func() bool { return true },
			EnableAdmin: enable,
		})
		req, _ := http.NewRequest(http.MethodPost, "/admin/tsdb/clean_tombstones", nil)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		switch {
		case !enable && (rec.Code/100 == 2 || !strings.Contains(rec.Body.String(), "admin APIs disabled") || admin.cleans.Load() != 0):
			t.Errorf("admin API off: %d %q, %d calls; want the error \"admin APIs disabled\"", rec.Code, rec.Body.String(), admin.cleans.Load())
		case enable && (rec.Code/100 != 2 || admin.cleans.Load() != 1):
			t.Errorf("admin API on: %d %q, %d calls; want success", rec.Code, rec.Body.String(), admin.cleans.Load())
		}
	}
}
