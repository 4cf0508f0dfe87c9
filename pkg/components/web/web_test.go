package web

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name+" "+r.URL.Path) })
}

func TestServerGatesAPIsUntilReadyAndRoutesByPath(t *testing.T) {
	var ready atomic.Bool
	var reloads atomic.Int32
	s, err := Listen(log.NewNopLogger(), Options{
		Address:  "127.0.0.1:0",
		Gatherer: prometheus.NewRegistry(),
		Ready: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if !ready.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "tsdb: not ready: WAL replay in progress")
			}
		}),
		IsReady:         ready.Load,
		EnableLifecycle: true,
		Reload: func() error {
			if reloads.Add(1) == 1 {
				return errors.New("prometheus.yml: bad")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	defer s.Shutdown()
	base := "http://" + s.Addr().String()

	if code, _ := get(t, base+"/-/healthy"); code != http.StatusOK {
		t.Fatalf("/-/healthy during start-up: %d", code)
	}
	if code, body := get(t, base+"/-/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "WAL replay") {
		t.Fatalf("/-/ready during start-up: %d %q", code, body)
	}
	for _, p := range []string{"/api/v1/query", "/prometheus/api/v1/query", "/graph", "/bucket/", "/bucket/api/v1/blocks"} {
		if code, body := get(t, base+p); code != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"error"`) {
			t.Fatalf("%s before ready: %d %q", p, code, body)
		}
	}

	s.SetRoutes(Routes{QueryAPI: named("thanos"), PrometheusAPI: named("prometheus"), UI: named("ui"), Bucket: named("bucket")})
	ready.Store(true)
	for path, want := range map[string]string{
		"/api/v1/query":            "thanos /query",
		"/api/v1/label/job/values": "thanos /label/job/values",
		"/api/v1/status/buildinfo": "thanos /status/buildinfo",
		"/api/v1/targets":          "prometheus /targets",
		"/api/v1/targets/metadata": "prometheus /targets/metadata",
		"/api/v1/metadata":         "prometheus /metadata",
		"/api/v1/status/walreplay": "prometheus /status/walreplay",
		"/prometheus/api/v1/query": "prometheus /query",
		"/graph":                   "ui /graph",
		"/api/v1/rulesX":           "thanos /rulesX",
		"/bucket":                  "bucket /", // redirected to /bucket/
		"/bucket/":                 "bucket /",
		"/bucket/blocks":           "bucket /blocks",
		"/bucket/api/v1/blocks":    "bucket /api/v1/blocks",
		"/bucketX":                 "ui /bucketX",
	} {
		if code, body := get(t, base+path); code != http.StatusOK || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}

	resp, err := http.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), "prometheus.yml: bad") {
		t.Fatalf("failed reload: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
	if code, _ := get(t, base+"/-/reload"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /-/reload: %d, want 405", code)
	}
}

func TestBannerOnHTMLPagesOnly(t *testing.T) {
	h := Banner(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"x":"<body>"}`))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<html><body class="x"><div id="root"></div></body></html>`))
	}), func() string { return "compactor lease: held by <replica-a>" })
	for path, want := range map[string]string{
		"/":    `<html><body class="x"><div id="monstackd-banner" style="position:fixed;bottom:0;left:0;right:0;z-index:2000;padding:6px 16px;background:#e8f4fd;color:#0c5460;border-top:1px solid #bee5eb;font-family:sans-serif;font-size:14px">compactor lease: held by &lt;replica-a&gt;</div><div id="root"></div></body></html>`,
		"/api": `{"x":"<body>"}`,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if got := rec.Body.String(); got != want {
			t.Errorf("%s: %s\nwant %s", path, got, want)
		}
	}
}
