package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"
	promconfig "github.com/prometheus/prometheus/config"
	promdiscovery "github.com/prometheus/prometheus/discovery"

	"github.com/monstackd/monstackd/pkg/components/grpcserver"
	"github.com/monstackd/monstackd/pkg/components/web"
	"github.com/monstackd/monstackd/pkg/config"
	"github.com/monstackd/monstackd/pkg/logging"
)

// configGate is the readiness gate closed until the first configuration is applied.
const configGate = "config"

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
	// GRPCTLS are the gRPC server's TLS files; zero serves plaintext.
	GRPCTLS grpcserver.TLS
	// WebConfigFile is the HTTP server's exporter-toolkit web config (TLS,
	// client certificates, basic auth); "" serves plain HTTP.
	WebConfigFile string
	EnablePprof   bool
	// EnableLifecycle serves POST /-/reload and /-/quit; SIGHUP reloads either way.
	EnableLifecycle bool
	// EnableAdminAPI serves Prometheus' admin TSDB endpoints.
	EnableAdminAPI bool
	// Flags are shown by Prometheus' /api/v1/status/flags.
	Flags   map[string]string
	Backoff Backoff
	// Services are extra non-critical modules, declared into the graph
	// beside the components (tests use them).
	Services []Service
	// Registry holds the Prometheus components' metrics; nil selects the
	// process' default registry, as in the prometheus binary. The default
	// registry is gathered either way: packages register there at init
	// (prometheus_template_*), and it has the Go and process collectors.
	Registry *prometheus.Registry
}

// Daemon is one monstackd process.
type Daemon struct {
	opts      Options
	logger    log.Logger
	slogger   *slog.Logger
	readiness *Readiness
	term, hup chan os.Signal
	quit      chan struct{} // closed by /-/quit
	quitOnce  sync.Once

	promReg prometheus.Registerer // Prometheus components, as in the prometheus binary.
	regMtx  sync.Mutex
	regs    []prometheus.Gatherer // the default gatherer, then one registry per Thanos module

	actors atomic.Pointer[[]string] // the run group's actors, in interrupt order

	reloadMtx     sync.Mutex
	reloaders     []reloader // nil until the first configuration is applied
	cfg           *config.Config
	reloadSuccess prometheus.Gauge
	reloadTime    prometheus.Gauge
}

// New returns a daemon; Run starts it.
func New(logger log.Logger, opts Options) *Daemon {
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = defaultBackoff
	}
	d := &Daemon{
		opts:      opts,
		logger:    logger,
		slogger:   logging.Slog(logger),
		readiness: NewReadiness(),
		quit:      make(chan struct{}),
		promReg:   prometheus.DefaultRegisterer,
		regs:      []prometheus.Gatherer{prometheus.DefaultGatherer},
	}
	if opts.Registry != nil {
		d.promReg = opts.Registry
		d.regs = append(d.regs, opts.Registry)
	}
	f := promauto.With(d.promReg)
	d.reloadSuccess = f.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_config_last_reload_successful",
		Help: "Whether the last configuration reload attempt was successful.",
	})
	d.reloadTime = f.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_config_last_reload_success_timestamp_seconds",
		Help: "Timestamp of the last successful configuration reload.",
	})
	d.promReg.MustRegister(versioncollector.NewCollector("monstackd"))
	return d
}

// Check validates the files the options name (the web config, the gRPC TLS
// files), as start-up would; `monstackd check config` reports them.
func (o Options) Check() []error {
	var errs []error
	if err := web.ValidateWebConfig(o.WebConfigFile); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.GRPCTLS.Config(log.NewNopLogger()); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// requestQuit ends the daemon as SIGTERM does (/-/quit); it returns at once.
func (d *Daemon) requestQuit() { d.quitOnce.Do(func() { close(d.quit) }) }

// newRegistry returns a registry that /metrics gathers too.
func (d *Daemon) newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	d.gather(r)
	return r
}

// gather adds r to what /metrics serves.
func (d *Daemon) gather(r *prometheus.Registry) {
	d.regMtx.Lock()
	defer d.regMtx.Unlock()
	d.regs = append(d.regs, r)
}

// Gatherer gathers every registry of the daemon, including those of modules
// initialised later.
func (d *Daemon) Gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		d.regMtx.Lock()
		gs := prometheus.Gatherers(slices.Clone(d.regs))
		d.regMtx.Unlock()
		return gs.Gather()
	})
}

// Run initialises the enabled modules in dependency order, applies the
// configuration, then runs their actors until SIGTERM/SIGINT, the end of ctx
// or a critical failure; it stops them dependents first and closes the
// modules in reverse init order, the TSDB last.
func (d *Daemon) Run(ctx context.Context) (err error) {
	// One signal handler for the process, installed before the long TSDB
	// open so that no signal is lost.
	d.term, d.hup = make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(d.term, os.Interrupt, syscall.SIGTERM)
	signal.Notify(d.hup, syscall.SIGHUP)
	defer signal.Stop(d.term)
	defer signal.Stop(d.hup)

	rt := d.opts.Runtime
	cfg, err := config.Load(d.opts.ConfigFile)
	if err != nil {
		return err
	}
	// The validation of check config and reload: a config that every later
	// reload would reject must not start either.
	if errs := cfg.Check(rt, d.slogger); len(errs) > 0 {
		for _, e := range errs {
			level.Error(d.logger).Log("msg", "invalid configuration", "err", e)
		}
		return fmt.Errorf("refusing to start with an invalid configuration (%d problems, each logged above): %w", len(errs), errors.Join(errs...))
	}
	pcfg, err := cfg.LoadPrometheus(rt, d.slogger)
	if err != nil {
		return fmt.Errorf("load prometheus config: %w", err)
	}
	g, err := buildGraph(d.modules(), rt.Role, cfg)
	if err != nil {
		return err
	}
	c := &components{d: d, ctx: ctx, cfg: cfg, pcfg: pcfg, rt: rt}
	if c.externalURL, err = externalURL(cfg, rt); err != nil {
		return err
	}
	if c.sdMetrics, err = promdiscovery.CreateAndRegisterSDMetrics(d.promReg); err != nil {
		return fmt.Errorf("register service discovery metrics: %w", err)
	}
	d.readiness.NotReady(configGate, "initial configuration not applied yet")

	var inited []initialised
	defer func() {
		// Reverse init order (graph.closeOrder) over what was initialised.
		for _, m := range slices.Backward(inited) {
			if m.parts.close == nil {
				continue
			}
			if cerr := m.parts.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("%s: %w", m.name, cerr))
			}
		}
	}()
	for _, m := range g {
		p, err := m.init(c)
		if err != nil {
			return fmt.Errorf("start %s: %w", m.name, err)
		}
		inited = append(inited, initialised{module: m, parts: p})
	}

	var reloaders []reloader
	for _, m := range inited {
		for _, r := range m.parts.reloaders {
			r.module = m.name
			reloaders = append(reloaders, r)
		}
	}
	if err := d.applyFirst(cfg, pcfg, reloaders); err != nil {
		return fmt.Errorf("apply initial configuration: %w", err)
	}

	group := NewGroup(d.logger, d.promReg, d.readiness, d.opts.Backoff)
	for _, m := range g.actorOrder() {
		p := partsOf(inited, m.name)
		switch m.kind {
		case critical:
			group.Add(m.name, p.run, p.interrupt)
		case service:
			group.AddService(m.name, p.serve)
		}
	}
	actors := group.Names()
	d.actors.Store(&actors)
	d.readiness.Ready(configGate)
	level.Info(d.logger).Log("msg", "monstackd is ready", "role", rt.Role.Name,
		"http", c.http.Addr(), "grpc", c.grpc.Addr(), "modules", len(inited))
	return group.Run()
}

// initialised is a module with what its init returned.
type initialised struct {
	module
	parts parts
}

func partsOf(inited []initialised, name string) parts {
	for _, m := range inited {
		if m.name == name {
			return m.parts
		}
	}
	panic("module " + name + " was not initialised")
}

// modules is the component table plus the extra services of the options.
func (d *Daemon) modules() []module {
	mods := modules()
	for _, s := range d.opts.Services {
		run := s.Run
		mods = append(mods, module{name: s.Name, kind: service, help: "extra service",
			init: func(*components) (parts, error) { return parts{serve: run}, nil }})
	}
	return mods
}

func externalURL(cfg *config.Config, rt config.Runtime) (*url.URL, error) {
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

// applyFirst applies the configuration read at start-up and makes reloads
// possible from then on.
func (d *Daemon) applyFirst(cfg *config.Config, pcfg *promconfig.Config, reloaders []reloader) error {
	d.reloadMtx.Lock()
	defer d.reloadMtx.Unlock()
	if err := d.apply(pcfg, reloaders); err != nil {
		return err
	}
	d.reloaders, d.cfg = reloaders, cfg
	return nil
}

// reload re-reads monstack.yml and prometheus.yml. Every file is validated
// before anything is applied: a bad config is rejected and the old one keeps
// running. Before the first configuration is applied (during the WAL replay)
// it fails with web.ErrNotReady instead of pretending to succeed.
func (d *Daemon) reload() (err error) {
	d.reloadMtx.Lock()
	defer d.reloadMtx.Unlock()
	if d.reloaders == nil {
		return fmt.Errorf("%w: the initial configuration is not applied yet (see /-/ready)", web.ErrNotReady)
	}
	defer func() {
		if err != nil {
			d.reloadSuccess.Set(0)
			level.Error(d.logger).Log("msg", "configuration reload failed; keeping the running configuration", "err", err)
		}
	}()
	rt := d.opts.Runtime
	cfg, err := config.Load(d.opts.ConfigFile)
	if err != nil {
		return err
	}
	if errs := cfg.Check(rt, d.slogger); len(errs) > 0 {
		return errors.Join(errs...)
	}
	pcfg, err := cfg.LoadPrometheus(rt, d.slogger)
	if err != nil {
		return err
	}
	if restartOnly(d.cfg, cfg) {
		level.Warn(d.logger).Log("msg", "monstack.yml changed outside prometheus.config_file; those changes take effect after a restart", "file", cfg.File())
	}
	if err := d.apply(pcfg, d.reloaders); err != nil {
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
func (d *Daemon) apply(pcfg *promconfig.Config, reloaders []reloader) error {
	start := time.Now()
	var errs []error
	for _, r := range reloaders {
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

func (d *Daemon) notifySystemd(state string) {
	if ok, err := daemon.SdNotify(false, state); err != nil {
		level.Warn(d.logger).Log("msg", "systemd notify failed", "state", state, "err", err)
	} else if ok {
		level.Debug(d.logger).Log("msg", "notified systemd", "state", state)
	}
}
