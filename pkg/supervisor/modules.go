package supervisor

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	promconfig "github.com/prometheus/prometheus/config"

	"github.com/monstackd/monstackd/pkg/config"
)

// Module names, as `monstackd components` prints them and as the
// monstackd_component_* metrics label them.
const (
	HTTPServer      = "http-server"
	GRPCServer      = "grpc-server"
	Runtime         = "runtime"
	TSDB            = "tsdb"
	QueryEngine     = "query-engine"
	ScrapeDiscovery = "scrape-discovery"
	Scrape          = "scrape"
	NotifyDiscovery = "notify-discovery"
	Notifier        = "notifier"
	Rules           = "rules"
	Sidecar         = "sidecar"
	Querier         = "querier"
	QueryFrontend   = "query-frontend"
	Bucket          = "bucket"
	Shipper         = "shipper"
	StoreGateway    = "store-gateway"
	Compactor       = "compactor"
	PrometheusAPI   = "prometheus-api"
	Admission       = "admission"
	Web             = "web"
	Signals         = "signals"
	Drift           = "drift"
)

// kind says how the supervisor runs a module's actor.
type kind int

const (
	// setup modules build what others use and run no actor.
	setup kind = iota
	// critical actors end the process when they return.
	critical
	// service actors are restarted with backoff when they fail or panic,
	// while ingestion goes on.
	service
)

func (k kind) String() string {
	switch k {
	case critical:
		return "critical"
	case service:
		return "service"
	default:
		return "setup"
	}
}

// module is one component, declared once: the table of modules drives
// `monstackd components`, init order (dependencies first), the run group's
// order (dependents first, so interrupts stop consumers before what they
// use), reload order and close order (reverse init: the TSDB last).
type module struct {
	name string
	kind kind
	deps []string
	// before lists modules this one must be initialised before, for hooks
	// they take at init (the shipper's block retention hook, installed
	// before the TSDB opens); a dependency declared from the other side.
	before []string
	// last orders the module after every other enabled one: it is
	// initialised last and interrupted first.
	last    bool
	help    string
	enabled func(config.Role, *config.Config) bool // nil: always
	init    func(*components) (parts, error)
}

// parts is what a module's init returns.
type parts struct {
	// run and interrupt are a critical module's actor.
	run       func() error
	interrupt func(error)
	// serve is a service module's actor; it returns when ctx ends.
	serve func(ctx context.Context) error
	// reloaders apply a new prometheus.yml, in this order.
	reloaders []reloader
	// close releases what init acquired, after every actor has stopped
	// (or when a later module's init failed).
	close func() error
}

// reloader is one named step of a configuration reload.
type reloader struct {
	module string // set by the daemon
	name   string
	reload func(*promconfig.Config) error
}

// modules is the component table. Init functions live in init_<name>.go.
func modules() []module {
	return []module{
		{name: HTTPServer, kind: critical, init: (*components).initHTTPServer,
			help: "HTTP listener: health, readiness, reload, metrics at once; APIs once ready"},
		{name: GRPCServer, kind: critical, init: (*components).initGRPCServer,
			help: "gRPC listener, bound before the WAL replay; serves what components register"},
		{name: Runtime, kind: setup, init: (*components).initRuntime,
			help: "prometheus.yml's runtime section (GOGC)"},
		// The ports are bound before the (long) replay: a conflict fails at
		// once and /-/ready reports the replay's progress.
		{name: TSDB, kind: setup, deps: []string{HTTPServer, GRPCServer}, init: (*components).initTSDB,
			help: "local Prometheus TSDB: WAL, head, 2h blocks; closed last"},
		{name: QueryEngine, kind: setup, init: (*components).initQueryEngine,
			help: "Prometheus' PromQL engine for rules and the Prometheus API"},
		{name: ScrapeDiscovery, kind: critical, init: (*components).initScrapeDiscovery,
			help: "service discovery for prometheus.yml's scrape jobs"},
		{name: Scrape, kind: critical, deps: []string{TSDB, ScrapeDiscovery}, init: (*components).initScrape,
			help: "scraping of the discovered targets into the TSDB"},
		{name: NotifyDiscovery, kind: critical, init: (*components).initNotifyDiscovery,
			help: "service discovery for prometheus.yml's Alertmanagers"},
		{name: Notifier, kind: critical, deps: []string{NotifyDiscovery}, init: (*components).initNotifier,
			help: "alert delivery to Alertmanager (replica label dropped by alert relabelling)"},
		{name: Rules, kind: service, deps: []string{TSDB, QueryEngine, Notifier, Querier}, init: (*components).initRules,
			help: "recording and alerting rules; restarted with a fresh manager on failure"},
		{name: Sidecar, kind: setup, deps: []string{TSDB, GRPCServer}, init: (*components).initSidecar,
			help: "local TSDB as Thanos StoreAPI + Info, in-process and on --grpc.address"},
		{name: Bucket, kind: setup, init: (*components).initBucket,
			help: "object storage (bucket.yml, inline, or FILESYSTEM under the data dir), instrumented"},
		{name: Shipper, kind: service, deps: []string{Bucket, TSDB, Sidecar}, init: (*components).initShipper,
			help: "uploads completed 2h blocks with the external labels; retention keeps what is not uploaded"},
		{name: StoreGateway, kind: service, deps: []string{Bucket, TSDB, Shipper}, init: (*components).initStoreGateway,
			help: "serves the bucket's blocks to the querier; synced on upload, retention keeps what it does not serve"},
		{name: Compactor, kind: service, deps: []string{Bucket}, before: []string{Web}, init: (*components).initCompactor,
			enabled: func(_ config.Role, cfg *config.Config) bool { return cfg.Compactor.Enabled },
			help:    "compacts, deduplicates A+B, downsamples and applies retention in the bucket, while holding the bucket's lease"},
		{name: Querier, kind: service, deps: []string{TSDB, Sidecar, StoreGateway}, init: (*components).initQuerier,
			help: "Thanos querier: local TSDB and remote stores, penalty dedup on the replica label"},
		{name: QueryFrontend, kind: setup, deps: []string{Querier}, before: []string{Web}, init: (*components).initQueryFrontend,
			enabled: func(_ config.Role, cfg *config.Config) bool { return cfg.Frontend.Enabled },
			help:    "Thanos query-frontend in-process before the querier: split, step alignment, results cache, retries"},
		{name: Drift, kind: service, deps: []string{GRPCServer, Rules, Querier}, init: (*components).initDrift,
			enabled: func(_ config.Role, cfg *config.Config) bool { return len(cfg.Peers.Endpoints) > 0 },
			help:    "compares the scrape jobs, rule groups and external labels with the peers' (served on gRPC)"},
		{name: PrometheusAPI, kind: setup, deps: []string{TSDB, QueryEngine, Scrape, Notifier, Rules}, init: (*components).initPrometheusAPI,
			help: "Prometheus' own HTTP API over the local TSDB, scrape, rules and notifier"},
		{name: Admission, kind: service, init: (*components).initAdmission,
			help: "memory guard of the query APIs: 503 for new queries, cancels running ones near GOMEMLIMIT"},
		{name: Web, kind: setup, deps: []string{HTTPServer, Querier, StoreGateway, PrometheusAPI, Admission}, init: (*components).initWeb,
			help: "routes: Thanos query API and UI at /, Prometheus API at /prometheus/api/v1, bucket UI at /bucket/"},
		{name: Signals, kind: critical, last: true, init: (*components).initSignals,
			help: "SIGTERM/SIGINT, SIGHUP reload, systemd notifications; starts last, stops first"},
	}
}

// graph is the enabled modules in init order.
type graph []module

// buildGraph selects the modules the role and config enable and orders them
// dependencies first; among modules free to go, the table's order decides.
func buildGraph(mods []module, role config.Role, cfg *config.Config) (graph, error) {
	var enabled []module
	on := map[string]bool{}
	for _, m := range mods {
		if on[m.name] {
			return nil, fmt.Errorf("module %s declared twice", m.name)
		}
		if m.enabled == nil || m.enabled(role, cfg) {
			enabled = append(enabled, m)
			on[m.name] = true
		}
	}
	declared := map[string]bool{}
	for _, m := range mods {
		declared[m.name] = true
	}
	for _, m := range enabled {
		for _, b := range m.before {
			if !declared[b] {
				return nil, fmt.Errorf("module %s is ordered before %s, which is not declared", m.name, b)
			}
		}
		for _, d := range m.deps {
			switch {
			case !declared[d]:
				return nil, fmt.Errorf("module %s depends on %s, which is not declared", m.name, d)
			case !on[d]:
				return nil, fmt.Errorf("module %s depends on %s, which the role and config disable", m.name, d)
			}
		}
	}
	return order(enabled)
}

// order sorts mods topologically, stable in their given order.
func order(mods []module) (graph, error) {
	deps := map[string][]string{}
	for _, m := range mods {
		deps[m.name] = append(deps[m.name], m.deps...)
		for _, b := range m.before {
			deps[b] = append(deps[b], m.name)
		}
		if m.last {
			deps[m.name] = nil
			for _, o := range mods {
				if !o.last {
					deps[m.name] = append(deps[m.name], o.name)
				}
			}
		}
	}
	done := map[string]bool{}
	var out graph
	for len(out) < len(mods) {
		progress := false
		for _, m := range mods {
			if done[m.name] || !allDone(deps[m.name], done) {
				continue
			}
			out = append(out, m)
			done[m.name] = true
			progress = true
			break // restart from the top: earlier declarations go first
		}
		if !progress {
			var left []string
			for _, m := range mods {
				if !done[m.name] {
					left = append(left, m.name)
				}
			}
			return nil, fmt.Errorf("dependency cycle among modules %s", strings.Join(left, ", "))
		}
	}
	return out, nil
}

func allDone(names []string, done map[string]bool) bool {
	for _, n := range names {
		if !done[n] {
			return false
		}
	}
	return true
}

// actorOrder is the run group's order: dependents first, so that interrupts
// stop consumers before what they use.
func (g graph) actorOrder() []module {
	var out []module
	for _, m := range slices.Backward(g) {
		if m.kind != setup {
			out = append(out, m)
		}
	}
	return out
}

// closeOrder is reverse init order: what others use closes after them, the
// TSDB after every reader and writer.
func (g graph) closeOrder() []module {
	out := slices.Clone(g)
	slices.Reverse(out)
	return out
}

// names lists the module names in g's order.
func names(mods []module) []string {
	out := make([]string, len(mods))
	for i, m := range mods {
		out[i] = m.name
	}
	return out
}

// PrintComponents writes the component table in init order, with what the
// role and config enable.
func PrintComponents(w io.Writer, role config.Role, cfg *config.Config) error {
	all, err := order(modules())
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "COMPONENT\tENABLED\tKIND\tDEPENDS ON\tDESCRIPTION\n")
	for _, m := range all {
		on := m.enabled == nil || m.enabled(role, cfg)
		fmt.Fprintf(tw, "%s\t%t\t%s\t%s\t%s\n", m.name, on, m.kind, dependsOn(m), m.help)
	}
	return tw.Flush()
}

func dependsOn(m module) string {
	switch {
	case m.last:
		return "(all)"
	case len(m.deps) == 0:
		return "-"
	}
	return strings.Join(m.deps, ",")
}
