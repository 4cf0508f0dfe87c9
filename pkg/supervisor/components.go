package supervisor

import (
	"context"
	"log/slog"
	"net/url"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	promdiscovery "github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/promql"
	"github.com/thanos-io/objstore"

	"github.com/monstackd/monstackd/pkg/components/admission"
	"github.com/monstackd/monstackd/pkg/components/discovery"
	"github.com/monstackd/monstackd/pkg/components/frontend"
	"github.com/monstackd/monstackd/pkg/components/grpcserver"
	"github.com/monstackd/monstackd/pkg/components/lease"
	"github.com/monstackd/monstackd/pkg/components/querier"
	"github.com/monstackd/monstackd/pkg/components/rules"
	"github.com/monstackd/monstackd/pkg/components/scrape"
	"github.com/monstackd/monstackd/pkg/components/shipper"
	"github.com/monstackd/monstackd/pkg/components/sidecar"
	"github.com/monstackd/monstackd/pkg/components/storegateway"
	"github.com/monstackd/monstackd/pkg/components/tsdb"
	"github.com/monstackd/monstackd/pkg/components/web"
	"github.com/monstackd/monstackd/pkg/config"
)

// components holds what each initialised module provides to the modules
// that depend on it, typed; a module's init reads only its dependencies'
// fields and sets its own.
type components struct {
	d    *Daemon
	ctx  context.Context
	cfg  *config.Config     // monstack.yml
	pcfg *promconfig.Config // prometheus.yml as read at start-up
	rt   config.Runtime

	sdMetrics   map[string]promdiscovery.DiscovererMetrics
	externalURL *url.URL

	http      *web.Server
	grpc      *grpcserver.Server
	db        *tsdb.TSDB
	engine    *promql.Engine
	scrapeSD  *discovery.Discovery
	scrape    *scrape.Scrape
	notifySD  *discovery.Discovery
	notifier  *rules.Notifier
	rules     *rules.Rules
	sidecar   *sidecar.Sidecar
	querier   *querier.Querier
	frontend  *frontend.Frontend // nil when switched off
	promAPI   *web.PrometheusAPI
	admission *admission.Guard
	bucket    objstore.InstrumentedBucket
	shipper   *shipper.Shipper

	storeGateway *storegateway.StoreGateway
	lease        *lease.Lease // the compactor's, nil without one
}

// logger returns the go-kit logger of a module.
func (c *components) logger(name string) log.Logger { return log.With(c.d.logger, "component", name) }

// slogger returns the slog logger of a Prometheus module.
func (c *components) slogger(name string) *slog.Logger { return c.d.slogger.With("component", name) }

// registry returns a registry of the module's own: Thanos components
// register metrics that collide with Prometheus' (DESIGN.md §3.10).
func (c *components) registry() *prometheus.Registry { return c.d.newRegistry() }
