package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/route"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/promql"
	"github.com/thanos-io/thanos/pkg/query"
	"github.com/thanos-io/thanos/pkg/store"

	"github.com/monstackd/monstackd/pkg/components/querier"
	"github.com/monstackd/monstackd/pkg/components/rules"
	"github.com/monstackd/monstackd/pkg/components/scrape"
	"github.com/monstackd/monstackd/pkg/components/sidecar"
	"github.com/monstackd/monstackd/pkg/components/tsdb"
	"github.com/monstackd/monstackd/pkg/components/web"
	"github.com/monstackd/monstackd/pkg/config"
	"github.com/monstackd/monstackd/pkg/logging"
)

// Service is a non-critical actor: restarted with backoff when it fails.
type Service struct {
	Name string
	Run  func(ctx context.Context) error
}

// Options configure a daemon; cmd/monstackd fills them from flags.
type Options struct {
	// ConfigFile is monstack.yml; "" runs the embedded default.
	ConfigFile  string
	Runtime     config.Runtime
	GRPCAddress string
	EnablePprof bool
	// Flags are shown by /api/v1/status/flags.
	Flags   map[string]string
	Backoff Backoff
	// Services are extra non-critical actors run beside the components.
	Services []Service
}

// Daemon is one monstackd process.
type Daemon struct {
	opts      Options
	logger    log.Logger
	readiness *Readiness

	promReg    *prometheus.Registry // Prometheus components, as in the prometheus binary.
	querierReg *prometheus.Registry // Thanos querier: its engines collide with the rules engine's.
	sidecarReg *prometheus.Registry // Thanos gRPC server.

	reloadMtx     sync.Mutex
	reloaders     []reloader
	cfg           *config.Config
	reloadSuccess prometheus.Gauge
	reloadTime    prometheus.Gauge
}

// reloader is one step of a configuration reload, in order.
type reloader struct {
	name   string
	reload func(*promconfig.Config) error
}

// New returns a daemon; Run starts it.
func New(logger log.Logger, opts Options) *Daemon {
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	d := &Daemon{
		opts:       opts,
		logger:     logger,
		readiness:  NewReadiness(),
		promReg:    prometheus.NewRegistry(),
		querierReg: prometheus.NewRegistry(),
		sidecarReg: prometheus.NewRegistry(),
	}
	d.promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto.With(d.promReg)
	d.reloadSuccess = f.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_config_last_reload_successful",
		Help: "Whether the last configuration reload attempt was successful.",
	})
	d.reloadTime = f.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_config_last_reload_success_timestamp_seconds",
		Help: "Timestamp of the last successful configuration reload.",
	})
	return d
}

// Gatherer gathers every component's registry.
func (d *Daemon) Gatherer() prometheus.Gatherer {
	return prometheus.Gatherers{d.promReg, d.querierReg, d.sidecarReg}
}

// Run starts every component, blocks until SIGTERM/SIGINT, the end of ctx or
// a critical failure, then stops them in order and closes the TSDB last.
func (d *Daemon) Run(ctx context.Context) (err error) {
	rt := d.opts.Runtime
	slogger := logging.Slog(d.logger)

	// One signal handler for the process, installed before the long TSDB
	// open so that no signal is lost.
	term := make(chan os.Signal, 1)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(term)
	defer signal.Stop(hup)

	cfg, err := config.Load(d.opts.ConfigFile)
	if err != nil {
		return err
	}
	pcfg, err := cfg.LoadPrometheus(rt, slogger)
	if err != nil {
		return fmt.Errorf("load prometheus config: %w", err)
	}
	d.cfg = cfg

	d.readiness.NotReady(Web+"/config", "initial configuration not loaded")
	g := NewGroup(d.logger, d.promReg, d.readiness, d.opts.Backoff)

	// HTTP comes up first: /-/healthy, /-/ready and /metrics answer during
	// the WAL replay.
	srv, err := web.Listen(log.With(d.logger, "component", Web), web.Options{
		Address:     rt.HTTPAddress,
		EnablePprof: d.opts.EnablePprof,
		Gatherer:    d.Gatherer(),
		Ready:       d.readiness,
		IsReady:     d.readiness.IsReady,
		Reload:      d.reload,
	})
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	g.Add(Web, func() error { return <-serveErr }, func(error) { srv.Shutdown() })
	// Until the group runs, a failed start-up must stop the server itself.
	grouped := false
	defer func() {
		if !grouped {
			srv.Shutdown()
		}
	}()

	// TSDB.
	db := tsdb.New(filepath.Join(rt.DataDir, "tsdb"), cfg.TSDB, slogger.With("component", TSDB), d.promReg)
	d.readiness.NotReady(TSDB, "WAL replay in progress")
	replayDone, reporterDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(reporterDone); d.reportReplay(db, replayDone) }()
	level.Info(d.logger).Log("msg", "opening TSDB", "dir", db.Dir())
	err = db.Open()
	close(replayDone)
	<-reporterDone // so that no late progress report closes the gate again
	if err != nil {
		return err
	}
	d.readiness.Ready(TSDB)
	level.Info(d.logger).Log("msg", "TSDB started")
	// The TSDB closes after every actor has stopped: scraping, rules and
	// queries must not touch a closed storage.
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close TSDB: %w", cerr))
		}
		level.Info(d.logger).Log("msg", "TSDB closed")
	}()

	// Components over the open TSDB.
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(d.promReg)
	if err != nil {
		return fmt.Errorf("register service discovery metrics: %w", err)
	}
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:               slogger.With("component", "query engine"),
		Reg:                  d.promReg,
		MaxSamples:           cfg.Query.MaxSamples,
		Timeout:              time.Duration(cfg.Query.Timeout),
		ActiveQueryTracker:   promql.NewActiveQueryTracker(rt.DataDir, cfg.Query.MaxConcurrent, slogger.With("component", "activeQueryTracker")),
		LookbackDelta:        time.Duration(cfg.Query.LookbackDelta),
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return time.Duration(pcfg.GlobalConfig.EvaluationInterval).Milliseconds()
		},
	})
	scr, err := scrape.New(slogger, d.promReg, sdMetrics, db.DB())
	if err != nil {
		return err
	}
	externalURL, err := d.externalURL(cfg, rt)
	if err != nil {
		return err
	}
	rls, err := rules.New(slogger, d.promReg, sdMetrics, cfg.Rules, engine, db.DB(), externalURL)
	if err != nil {
		return err
	}
	sc := sidecar.New(log.With(d.logger, "component", Sidecar), d.sidecarReg, db.DB(), pcfg.GlobalConfig.ExternalLabels, d.opts.GRPCAddress)
	local := &querier.Local{DB: db.DB(), ExternalLabels: sc.ExternalLabels}
	if db.AttachesLabels() {
		local.Attach = tsdb.AttachLabels
	}
	q := querier.New(log.With(d.logger, "component", Querier), d.querierReg, cfg.Query, local,
		func() []store.Client { return nil },
		func() []*query.GRPCEndpointSpec { return nil })
	promAPI := web.NewPrometheusAPI(web.PrometheusAPIOptions{
		Logger:        slogger.With("component", "api"),
		Engine:        engine,
		DB:            db.DB(),
		Admin:         db.AdminStats(),
		DBDir:         db.Dir(),
		Scrape:        scr.Manager(),
		Rules:         rls.Manager(),
		Notifier:      rls.Notifier(),
		Flags:         d.opts.Flags,
		ExternalURL:   externalURL,
		ListenAddress: rt.HTTPAddress,
		LookbackDelta: time.Duration(cfg.Query.LookbackDelta),
		Retention:     cfg.TSDB.Retention.String(),
		Gatherer:      d.Gatherer(),
		Registerer:    d.promReg,
		IsReady:       d.readiness.IsReady,
	})
	queryAPI, ui := route.New(), route.New()
	q.RegisterAPI(queryAPI)
	q.RegisterUI(ui)
	srv.SetRoutes(web.Routes{QueryAPI: queryAPI, PrometheusAPI: promAPI, UI: ui})

	// What a reload touches, in order. Scrape and notifier take the new
	// config before their discovery managers send targets for it.
	d.reloaders = []reloader{
		{name: "runtime", reload: d.applyRuntime},
		{name: "sidecar_external_labels", reload: func(c *promconfig.Config) error {
			sc.SetExternalLabels(c.GlobalConfig.ExternalLabels)
			return nil
		}},
		{name: "prometheus_api", reload: promAPI.ApplyConfig},
		{name: "scrape", reload: scr.ApplyConfig},
		{name: "scrape_sd", reload: scr.ApplyDiscoveryConfig},
		{name: "notify", reload: rls.ApplyNotifierConfig},
		{name: "notify_sd", reload: rls.ApplyDiscoveryConfig},
		{name: "rules", reload: rls.ApplyRulesConfig},
	}
	if err := d.apply(pcfg); err != nil {
		return fmt.Errorf("apply initial configuration: %w", err)
	}
	d.readiness.Ready(Web + "/config")

	// Actors. Interrupts run in this order: stop accepting signals and
	// queries, stop scraping and rule evaluation, then the gRPC server.
	// The TSDB closes after all of them (deferred above).
	{
		cancel := make(chan struct{})
		g.Add("signals", func() error {
			d.notifySystemd(daemon.SdNotifyReady)
			for {
				select {
				case s := <-term:
					level.Info(d.logger).Log("msg", "received signal, shutting down", "signal", s)
					return nil
				case <-hup:
					_ = d.reload()
				case <-ctx.Done():
					return nil
				case <-cancel:
					return nil
				}
			}
		}, func(error) {
			d.notifySystemd(daemon.SdNotifyStopping)
			close(cancel)
		})
	}
	{
		g.Add("scrape discovery", scr.RunDiscovery, func(error) { scr.StopDiscovery() })
		g.Add(Scrape, scr.Run, func(error) { scr.Stop() })
	}
	g.AddService(Rules, rls.Run)
	g.AddService(Querier, q.RunEndpointUpdates)
	for _, s := range d.opts.Services {
		g.AddService(s.Name, s.Run)
	}
	g.Add(Sidecar, sc.Serve, sc.Shutdown)

	level.Info(d.logger).Log("msg", "monstackd is ready", "role", rt.Role.Name, "http", srv.Addr(), "grpc", d.opts.GRPCAddress)
	grouped = true
	return g.Run()
}

// reportReplay keeps the readiness reason current during the WAL replay.
func (d *Daemon) reportReplay(db *tsdb.TSDB, done <-chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			d.readiness.NotReady(TSDB, db.ReplayProgress())
		}
	}
}

func (d *Daemon) externalURL(cfg *config.Config, rt config.Runtime) (*url.URL, error) {
	if cfg.Web.ExternalURL != "" {
		u, err := url.Parse(cfg.Web.ExternalURL)
		if err != nil {
			return nil, fmt.Errorf("%s: field web.external_url: %w", cfg.File(), err)
		}
		return u, nil
	}
	host, _ := os.Hostname()
	_, port, err := net.SplitHostPort(rt.HTTPAddress)
	if err != nil {
		return nil, fmt.Errorf("--http.address %q: %w", rt.HTTPAddress, err)
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}, nil
}

// reload re-reads monstack.yml and prometheus.yml. Every file is validated
// before anything is applied: a bad config is rejected and the old one keeps
// running.
func (d *Daemon) reload() (err error) {
	d.reloadMtx.Lock()
	defer d.reloadMtx.Unlock()
	defer func() {
		if err != nil {
			d.reloadSuccess.Set(0)
			level.Error(d.logger).Log("msg", "configuration reload failed; keeping the running configuration", "err", err)
		}
	}()
	rt := d.opts.Runtime
	slogger := logging.Slog(d.logger)
	cfg, err := config.Load(d.opts.ConfigFile)
	if err != nil {
		return err
	}
	if errs := cfg.Check(rt, slogger); len(errs) > 0 {
		return errors.Join(errs...)
	}
	pcfg, err := cfg.LoadPrometheus(rt, slogger)
	if err != nil {
		return err
	}
	if restartOnly(d.cfg, cfg) {
		level.Warn(d.logger).Log("msg", "monstack.yml changed outside prometheus.config_file; those changes take effect after a restart", "file", cfg.File())
	}
	if err := d.apply(pcfg); err != nil {
		return err
	}
	d.cfg = cfg
	return nil
}

// restartOnly reports whether settings read only at start-up changed.
func restartOnly(old, cur *config.Config) bool {
	a, b := *old, *cur
	a.Prometheus, b.Prometheus = config.PrometheusConfig{}, config.PrometheusConfig{}
	return !reflect.DeepEqual(a, b)
}

// apply runs the reloaders in order, as Prometheus does: each step is
// attempted and the failures are reported together.
func (d *Daemon) apply(pcfg *promconfig.Config) error {
	start := time.Now()
	var errs []error
	for _, r := range d.reloaders {
		rstart := time.Now()
		if err := r.reload(pcfg); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
			continue
		}
		level.Debug(d.logger).Log("msg", "applied configuration", "step", r.name, "duration", time.Since(rstart))
	}
	if len(errs) > 0 {
		d.reloadSuccess.Set(0)
		return errors.Join(errs...)
	}
	d.reloadSuccess.Set(1)
	d.reloadTime.SetToCurrentTime()
	level.Info(d.logger).Log("msg", "completed loading of configuration", "duration", time.Since(start))
	return nil
}

// applyRuntime applies prometheus.yml's runtime section as Prometheus does:
// GOGC from the file, else from the environment, else config.DefaultGoGC.
func (d *Daemon) applyRuntime(c *promconfig.Config) error {
	if old := debug.SetGCPercent(c.Runtime.GoGC); old != c.Runtime.GoGC {
		level.Info(d.logger).Log("msg", "updated GOGC", "old", old, "new", c.Runtime.GoGC)
	}
	return nil
}

func (d *Daemon) notifySystemd(state string) {
	if ok, err := daemon.SdNotify(false, state); err != nil {
		level.Warn(d.logger).Log("msg", "systemd notify failed", "state", state, "err", err)
	} else if ok {
		level.Debug(d.logger).Log("msg", "notified systemd", "state", state)
	}
}
