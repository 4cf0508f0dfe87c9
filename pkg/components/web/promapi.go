package web

import (
	"context"
	"github.com/grafana/regexp"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	"github.com/prometheus/common/version"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/notifications"
	api_v1 "github.com/prometheus/prometheus/web/api/v1"
)

// PrometheusAPIOptions are the parts of the daemon Prometheus' API reads.
type PrometheusAPIOptions struct {
	Logger *slog.Logger
	Engine *promql.Engine
	DB     *tsdb.DB
	Admin  api_v1.TSDBAdminStats
	DBDir  string
	Scrape *scrape.Manager
	// Rules returns the running rule manager: it is replaced on restart.
	Rules         func() *rules.Manager
	Notifier      *notifier.Manager
	Flags         map[string]string
	ExternalURL   *url.URL
	ListenAddress string
	LookbackDelta time.Duration
	Retention     string
	Gatherer      prometheus.Gatherer
	Registerer    prometheus.Registerer
	IsReady       func() bool
	// EnableAdmin serves the admin TSDB endpoints (delete series, clean
	// tombstones, snapshot), as Prometheus' --web.enable-admin-api.
	EnableAdmin bool
}

// PrometheusAPI is Prometheus' v1 HTTP API over the local TSDB.
type PrometheusAPI struct {
	http.Handler

	mtx      sync.RWMutex
	cfg      *promconfig.Config
	lastLoad time.Time
	loadOK   bool
}

// NewPrometheusAPI builds the API; ApplyConfig must run before it serves.
func NewPrometheusAPI(o PrometheusAPIOptions) *PrometheusAPI {
	p := &PrometheusAPI{cfg: &promconfig.DefaultConfig}
	birth := time.Now()
	cwd, _ := os.Getwd()
	hostname, _ := os.Hostname()
	notifs := notifications.NewNotifications(16, nil)
	ready := func(f http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !o.IsReady() {
				http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
				return
			}
			f(w, r)
		}
	}
	runtimeInfo := func() (api_v1.RuntimeInfo, error) {
		p.mtx.RLock()
		defer p.mtx.RUnlock()
		return api_v1.RuntimeInfo{
			StartTime:           birth,
			CWD:                 cwd,
			Hostname:            hostname,
			ServerTime:          time.Now().UTC(),
			ReloadConfigSuccess: p.loadOK,
			LastConfigTime:      p.lastLoad,
			GoroutineCount:      runtime.NumGoroutine(),
			GOMAXPROCS:          runtime.GOMAXPROCS(0),
			GOGC:                os.Getenv("GOGC"),
			GODEBUG:             os.Getenv("GODEBUG"),
			StorageRetention:    o.Retention,
		}, nil
	}
	api := api_v1.NewAPI(
		o.Engine, o.DB, nil, o.DB,
		func(context.Context) api_v1.ScrapePoolsRetriever { return o.Scrape },
		func(context.Context) api_v1.TargetRetriever { return o.Scrape },
		func(context.Context) api_v1.AlertmanagerRetriever { return o.Notifier },
		func() promconfig.Config {
			p.mtx.RLock()
			defer p.mtx.RUnlock()
			return *p.cfg
		},
		o.Flags,
		api_v1.GlobalURLOptions{ListenAddress: o.ListenAddress, Host: o.ExternalURL.Host, Scheme: o.ExternalURL.Scheme},
		ready,
		o.Admin,
		o.DBDir,
		o.EnableAdmin,
		o.Logger,
		func(context.Context) api_v1.RulesRetriever { return o.Rules() },
		5e7, 10, 1048576, // remote read limits, Prometheus' defaults.
		false,
		regexp.MustCompile(".*"),
		runtimeInfo,
		&api_v1.PrometheusVersion{
			Version:   version.Version,
			Revision:  version.Revision,
			Branch:    version.Branch,
			BuildUser: version.BuildUser,
			BuildDate: version.BuildDate,
			GoVersion: version.GoVersion,
		},
		notifs.Get,
		notifs.Sub,
		o.Gatherer,
		o.Registerer,
		nil,
		false, nil, false, false, false, false,
		o.LookbackDelta,
		false, false, nil, nil,
	)
	r := route.New()
	api.Register(r)
	p.Handler = r
	return p
}

// ApplyConfig records the running prometheus.yml for /status/config.
func (p *PrometheusAPI) ApplyConfig(cfg *promconfig.Config) error {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	p.cfg = cfg
	p.lastLoad = time.Now()
	p.loadOK = true
	return nil
}
