// Package web is monstackd's HTTP server: the query API and UI, Prometheus'
// own API, health, readiness, reload, metrics and profiles on one port.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	toolkitweb "github.com/prometheus/exporter-toolkit/web"
)

const shutdownGracePeriod = 5 * time.Second

// ErrNotReady is returned by a reload before the daemon can take one; the
// server answers 503 with the reason.
var ErrNotReady = errors.New("not ready")

// Routes is what the server serves once the components are up.
type Routes struct {
	// QueryAPI serves the Prometheus-compatible query API backed by the
	// deduplicating querier; mounted at /api/v1.
	QueryAPI http.Handler
	// PrometheusAPI is Prometheus' own API over the local TSDB; mounted at
	// /prometheus/api/v1, and at /api/v1 for the paths in prometheusPaths.
	PrometheusAPI http.Handler
	// UI is the Thanos query UI, at /.
	UI http.Handler
	// Bucket is the Thanos bucket UI (the blocks page) and its blocks API,
	// at BucketPrefix: the handler sees paths without it.
	Bucket http.Handler
}

// BucketPrefix is where the bucket UI is served; its React app calls the
// blocks API at BucketPrefix/api/v1/blocks.
const BucketPrefix = "/bucket"

// prometheusPaths are the /api/v1 paths answered by Prometheus' API rather
// than the querier: they describe this host's scraping, rules and TSDB.
var prometheusPaths = []string{
	"/targets", "/scrape_pools", "/rules", "/alerts", "/alertmanagers", "/metadata",
	"/query_exemplars", "/format_query", "/parse_query", "/notifications",
	"/status/config", "/status/tsdb", "/status/walreplay",
}

// Options configure the server.
type Options struct {
	Address string
	// WebConfigFile is an exporter-toolkit web config (TLS, client
	// certificates, basic auth), as Prometheus' --web.config.file; "" serves
	// plain HTTP. The toolkit re-reads it for every connection and request.
	WebConfigFile string
	EnablePprof   bool
	// EnableLifecycle serves /-/reload and /-/quit; without it they answer
	// 403, as in Prometheus without --web.enable-lifecycle.
	EnableLifecycle bool
	Gatherer        prometheus.Gatherer
	// Ready serves /-/ready; IsReady gates the APIs until start-up is done
	// (WAL replayed, first config applied).
	Ready   http.Handler
	IsReady func() bool
	// Reload runs a configuration reload for /-/reload.
	Reload func() error
	// Limits apply to every API request before it is parsed.
	Limits Limits
	// Quit asks the daemon to shut down gracefully, for /-/quit; it must
	// not block until the shutdown is done.
	Quit func()
	// Slogger is the exporter toolkit's logger; nil discards its lines.
	Slogger *slog.Logger
}

// ValidateWebConfig reads an exporter-toolkit web config file and the
// certificates it names, as Listen does; "" is valid.
func ValidateWebConfig(file string) error {
	if err := toolkitweb.Validate(file); err != nil {
		return fmt.Errorf("--web.config.file %s: %w", file, err)
	}
	return nil
}

// Server is the HTTP server.
type Server struct {
	logger log.Logger
	opts   Options
	lis    net.Listener
	srv    *http.Server
	routes atomic.Pointer[Routes]
	stop   sync.Once
	quit   sync.Once
}

// Listen checks the web config file and binds the address, so that a bad
// file or a port in use fails before the long TSDB open; Serve then serves
// health, readiness and metrics at once.
func Listen(logger log.Logger, opts Options) (*Server, error) {
	if err := ValidateWebConfig(opts.WebConfigFile); err != nil {
		return nil, err
	}
	if opts.Slogger == nil {
		opts.Slogger = slog.New(slog.DiscardHandler)
	}
	lis, err := net.Listen("tcp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("listen on --http.address %s: %w", opts.Address, err)
	}
	s := &Server{logger: logger, opts: opts, lis: lis}
	s.srv = &http.Server{
		Handler:           s.mux(),
		ReadHeaderTimeout: 30 * time.Second,
		// TLS handshake failures and the like, as Prometheus logs them.
		ErrorLog: slog.NewLogLogger(opts.Slogger.Handler(), slog.LevelError),
	}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// SetRoutes installs the API and UI handlers.
func (s *Server) SetRoutes(r Routes) { s.routes.Store(&r) }

func (s *Server) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "monstackd is Healthy.")
	})
	mux.Handle("/-/ready", s.opts.Ready)
	mux.HandleFunc("/-/reload", s.lifecycle(s.reload))
	mux.HandleFunc("/-/quit", s.lifecycle(s.quitHandler))
	mux.Handle("/metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}))
	if s.opts.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/prometheus/api/v1/", s.opts.Limits.limit(s.gated(func(r *Routes) http.Handler {
		return http.StripPrefix("/prometheus/api/v1", r.PrometheusAPI)
	})))
	mux.Handle("/api/v1/", s.opts.Limits.limit(s.gated(func(r *Routes) http.Handler {
		return http.StripPrefix("/api/v1", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if isPrometheusPath(req.URL.Path) {
				r.PrometheusAPI.ServeHTTP(w, req)
				return
			}
			r.QueryAPI.ServeHTTP(w, req)
		}))
	})))
	mux.Handle(BucketPrefix+"/", s.gated(func(r *Routes) http.Handler {
		if r.Bucket == nil {
			return http.NotFoundHandler()
		}
		return http.StripPrefix(BucketPrefix, r.Bucket)
	}))
	mux.Handle("/", s.gated(func(r *Routes) http.Handler { return r.UI }))
	return mux
}

func isPrometheusPath(p string) bool {
	for _, pp := range prometheusPaths {
		if p == pp || strings.HasPrefix(p, pp+"/") {
			return true
		}
	}
	return false
}

// gated answers 503 until the routes are installed and the daemon is ready,
// in the API's error format so that Grafana and promtool show the reason.
func (s *Server) gated(h func(*Routes) http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := s.routes.Load()
		if r == nil || !s.opts.IsReady() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"status":"error","errorType":"unavailable","error":"monstackd is not ready yet (see /-/ready)"}`)
			return
		}
		h(r).ServeHTTP(w, req)
	})
}

// lifecycle admits POST and PUT to h, and only with EnableLifecycle: the
// answers are Prometheus'.
func (s *Server) lifecycle(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost && req.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "use POST or PUT", http.StatusMethodNotAllowed)
			return
		}
		if !s.opts.EnableLifecycle {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, "Lifecycle API is not enabled.")
			return
		}
		h(w, req)
	}
}

func (s *Server) quitHandler(w http.ResponseWriter, _ *http.Request) {
	first := false
	s.quit.Do(func() {
		first = true
		level.Info(s.logger).Log("msg", "termination requested via /-/quit")
		s.opts.Quit()
	})
	if !first {
		fmt.Fprint(w, "Termination already in progress.")
		return
	}
	fmt.Fprint(w, "Requesting termination... Goodbye!")
}

func (s *Server) reload(w http.ResponseWriter, _ *http.Request) {
	if err := s.opts.Reload(); err != nil {
		if errors.Is(err, ErrNotReady) {
			http.Error(w, fmt.Sprintf("cannot reload yet: %s", err), http.StatusServiceUnavailable)
			return
		}
		http.Error(w, fmt.Sprintf("failed to reload config: %s", err), http.StatusInternalServerError)
	}
}

// Serve serves until Shutdown, through the exporter toolkit: TLS and basic
// auth as the web config file says.
func (s *Server) Serve() error {
	file := s.opts.WebConfigFile
	err := toolkitweb.Serve(s.lis, s.srv, &toolkitweb.FlagConfig{WebConfigFile: &file}, s.opts.Slogger)
	if !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve HTTP: %w", err)
	}
	return nil
}

// Shutdown stops accepting requests and waits briefly for running ones.
// Calls after the first do nothing.
func (s *Server) Shutdown() { s.stop.Do(s.shutdown) }

func (s *Server) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGracePeriod)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		level.Warn(s.logger).Log("msg", "HTTP shutdown", "err", err)
		_ = s.srv.Close()
	}
}
