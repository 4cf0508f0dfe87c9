// Package querier is the Thanos querier of monstackd: a ProxyStore over the
// in-process stores and the gRPC endpoints (peer), deduplicating on the
// replica label, served through Thanos' query API and UI.
package querier

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/opentracing/opentracing-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/thanos-io/promql-engine/engine"
	queryapi "github.com/thanos-io/thanos/pkg/api/query"
	"github.com/thanos-io/thanos/pkg/component"
	"github.com/thanos-io/thanos/pkg/dedup"
	"github.com/thanos-io/thanos/pkg/exemplars"
	"github.com/thanos-io/thanos/pkg/extprom"
	extpromhttp "github.com/thanos-io/thanos/pkg/extprom/http"
	"github.com/thanos-io/thanos/pkg/gate"
	thanoslogging "github.com/thanos-io/thanos/pkg/logging"
	"github.com/thanos-io/thanos/pkg/metadata"
	"github.com/thanos-io/thanos/pkg/query"
	"github.com/thanos-io/thanos/pkg/rules"
	"github.com/thanos-io/thanos/pkg/status"
	"github.com/thanos-io/thanos/pkg/store"
	"github.com/thanos-io/thanos/pkg/targets"
	"github.com/thanos-io/thanos/pkg/tenancy"
	"github.com/thanos-io/thanos/pkg/ui"

	"github.com/monstackd/monstackd/pkg/config"
	"github.com/monstackd/monstackd/pkg/logging"
)

const (
	endpointUpdateInterval = 5 * time.Second
	seriesBatchSize        = 64
)

// Querier answers PromQL over the deduplicated union of its stores.
type Querier struct {
	logger    log.Logger
	endpoints *query.EndpointSet
	peers     *peerHealth
	notes     *peerNotes
	// updated is closed after the first endpoint update: the peers' labels
	// and ranges are known from then on.
	updated     chan struct{}
	updatedOnce sync.Once
	queryable   query.QueryableCreator
	local       *Local
	replicas    []string
	api         *queryapi.QueryAPI
	ui          *ui.Query
	ins         extpromhttp.InstrumentationMiddleware
}

// New builds the querier over the local TSDB (read natively), the
// in-process stores of history (the bucket store: asked only for the time
// before the local TSDB's oldest sample, and chained with it) and the
// peers' StoreAPIs over gRPC (replicas, deduplicated). reg must be the
// querier's own registry: its engines register prometheus_engine_* metrics
// that collide with the rules engine's.
func New(logger log.Logger, reg *prometheus.Registry, cfg config.QueryConfig, local *Local, stores func() []store.Client, peers Peers) *Querier {
	timeout := time.Duration(cfg.Timeout)
	replicaLabels := []string{cfg.ReplicaLabel}

	notes := &peerNotes{notes: map[string]string{}}
	endpoints := query.NewEndpointSet(time.Now, logger, reg, peers.specs(), unhealthyEndpointTimeout, endpointInfoTimeout, timeout)
	// A partitioned peer sends nothing: the response timeout ends the wait
	// for it, and the answer comes without it, with a warning.
	proxy := store.NewProxyStore(logger, reg, endpoints.GetStoreClients, component.Query, labels.EmptyLabels(), peers.ResponseTimeout, store.EagerRetrieval)
	remote := query.NewQueryableCreator(logger, extprom.WrapRegistererWithPrefix("thanos_query_", reg),
		proxy, cfg.MaxConcurrentSelects, timeout, dedup.AlgorithmPenalty, seriesBatchSize)
	// With partial responses, a peer whose last health check failed is not
	// asked: every query would wait the response timeout for it until gRPC
	// gives the connection up. The answer says it is missing instead.
	healthy := healthyPeers(endpoints.GetStoreClients, endpoints.GetEndpointStatus)
	healthyProxy := store.NewProxyStore(logger, nil, healthy, component.Query, labels.EmptyLabels(), peers.ResponseTimeout, store.EagerRetrieval)
	remote = skipDownPeers(remote, query.NewQueryableCreator(logger, nil, healthyProxy, cfg.MaxConcurrentSelects, timeout, dedup.AlgorithmPenalty, seriesBatchSize),
		downPeers(endpoints.GetEndpointStatus))

	// The bucket holds every replica's blocks. This replica's are its
	// TSDB's past: asked for the time before the TSDB's oldest sample and
	// chained with it. The others' are the peers' past: asked for the time
	// before their TSDBs' oldest samples (all of it while they are down)
	// and deduplicated with this replica like the peers.
	replica := func() string {
		if local.ExternalLabels == nil {
			return ""
		}
		return local.ExternalLabels().Get(cfg.ReplicaLabel)
	}
	historyStores := func() []store.Client {
		var out []store.Client
		for _, s := range stores() {
			if replica() != "" {
				s = onlyReplica(s, cfg.ReplicaLabel, replica, true)
			}
			out = append(out, clampBefore(s, local.minTime))
		}
		return out
	}
	peerHistoryStores := func() []store.Client {
		if replica() == "" {
			return nil
		}
		var out []store.Client
		for _, s := range stores() {
			out = append(out, clampBefore(onlyReplica(s, cfg.ReplicaLabel, replica, false), healthyMinTime(endpoints.GetEndpointStatus)))
		}
		return out
	}
	// No registry: the peers' proxy and creator registered the same
	// metric names already. No response timeout: the stores are in
	// this process, and one of them is asked directly (directProxy).
	newHistory := func(stores func() []store.Client) query.QueryableCreator {
		p := newDirectProxy(store.NewProxyStore(logger, nil, stores, component.Query, labels.EmptyLabels(), 0, store.EagerRetrieval), stores)
		return query.NewQueryableCreator(logger, nil, p, cfg.MaxConcurrentSelects, timeout, dedup.AlgorithmPenalty, seriesBatchSize)
	}
	hasRemote, remotes := unionCreators(
		part(overlapping(endpoints.GetStoreClients), remote),
		part(overlapping(peerHistoryStores), newHistory(peerHistoryStores)))

	queryable := query.QueryableCreator(withLocal(local, hasRemote, remotes, overlapping(historyStores), newHistory(historyStores)))
	remoteEndpoints := query.NewRemoteEndpointsCreator(logger, endpoints.GetQueryAPIClients, nil, timeout, false, false)
	// No active query tracker: Prometheus' engine owns the one in the data dir.
	engines := queryapi.NewQueryFactoryWithOpts(reg, engineOpts(logger, cfg), promqlQueryMode, disableEngineFallback)
	lookback := func(int64) time.Duration { return time.Duration(cfg.LookbackDelta) }

	qapi := queryapi.NewQueryAPI(
		logger,
		// The Stores page lists the in-process stores beside the gRPC endpoints.
		endpointStatus(notes.apply(endpoints.GetEndpointStatus), func() []statusProvider {
			out := []statusProvider{local.status}
			for _, s := range stores() {
				if p, ok := s.(inProcess); ok {
					if sp, ok := p.status(); ok {
						out = append(out, sp)
					}
				}
			}
			return out
		}),
		engines,
		promqlEngine,
		lookback,
		queryable,
		remoteEndpoints,
		rules.NewGRPCClientWithDedup(rules.NewProxy(logger, endpoints.GetRulesClients), replicaLabels),
		targets.NewGRPCClientWithDedup(targets.NewProxy(logger, endpoints.GetTargetsClients), replicaLabels),
		metadata.NewGRPCClient(metadata.NewProxy(logger, endpoints.GetMetricMetadataClients)),
		exemplars.NewGRPCClientWithDedup(exemplars.NewProxy(logger, endpoints.GetExemplarsStores, labels.EmptyLabels()), replicaLabels),
		status.NewGRPCClient(status.NewProxy(logger, endpoints.GetStatusClients)),
		cfg.AutoDownsampling,
		cfg.PartialResponse,
		nonQueryPartialResponse, // rules
		nonQueryPartialResponse, // targets
		nonQueryPartialResponse, // metric metadata
		nonQueryPartialResponse, // exemplars
		nonQueryPartialResponse, // status
		replicaLabels,
		flagsMap(cfg, peers.ResponseTimeout),
		defaultRangeQueryStep,
		0,     // query.instant.default.max_source_resolution
		0,     // query.metadata.default-time-range
		false, // web.disable-cors
		gate.New(extprom.WrapRegistererWithPrefix("thanos_query_concurrent_", reg), cfg.MaxConcurrent, gate.Queries),
		store.NewSeriesStatsAggregatorFactory(reg, durationQuantiles, samplesQuantiles, seriesQuantiles),
		reg,
		tenancy.DefaultTenantHeader,
		tenancy.DefaultTenant,
		"",
		false,
		tenancy.DefaultTenantLabel,
		nil,
	)
	return &Querier{
		logger:    logger,
		endpoints: endpoints,
		peers:     newPeerHealth(reg, peers),
		notes:     notes,
		updated:   make(chan struct{}),
		queryable: queryable,
		local:     local,
		replicas:  replicaLabels,
		api:       qapi,
		ui:        ui.NewQueryUI(logger, endpoints, "", "", "", tenancy.DefaultTenantHeader, tenancy.DefaultTenant, false),
		ins:       extpromhttp.NewTenantInstrumentationMiddleware(tenancy.DefaultTenantHeader, tenancy.DefaultTenant, reg, nil),
	}
}

// engineOpts are the Thanos engines' options: the same sample limit and
// timeout as Prometheus' engine, so that no query on /api/v1 can take the
// memory the process shares with ingestion. Stock Thanos' factory has no
// sample limit (math.MaxInt32).
func engineOpts(logger log.Logger, cfg config.QueryConfig) engine.Opts {
	return engine.Opts{
		EngineOpts: promql.EngineOpts{
			Logger:                   logging.Slog(logger),
			MaxSamples:               cfg.MaxSamples,
			Timeout:                  time.Duration(cfg.Timeout),
			LookbackDelta:            time.Duration(cfg.LookbackDelta),
			EnableNegativeOffset:     true,
			EnableAtModifier:         true,
			NoStepSubqueryIntervalFn: func(int64) int64 { return defaultEvaluationInterval.Milliseconds() },
		},
		EnableXFunctions: extendedFunctions,
		EnableAnalysis:   true,
	}
}

// RegisterAPI registers the Prometheus-compatible query API (query,
// query_range, series, labels, label values, ...) on r, at its root.
func (q *Querier) RegisterAPI(r *route.Router) {
	q.api.Register(r, opentracing.NoopTracer{}, q.logger, q.ins, thanoslogging.NewHTTPServerMiddleware(q.logger))
}

// RegisterUI registers the Thanos query UI on r.
func (q *Querier) RegisterUI(r *route.Router) { q.ui.Register(r, q.ins) }

// RunEndpointUpdates refreshes the gRPC endpoints (health, labels, time
// ranges from the Info API) until ctx ends.
func (q *Querier) RunEndpointUpdates(ctx context.Context) error {
	t := time.NewTicker(endpointUpdateInterval)
	defer t.Stop()
	defer q.endpoints.Close()
	for {
		q.endpoints.Update(ctx)
		q.peers.update(lastErrors(q.endpoints.GetEndpointStatus()))
		q.updatedOnce.Do(func() { close(q.updated) })
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// SetPeerNote shows note beside the peer's name on the Stores page, ""
// removes it: the drift guard says there what differs.
func (q *Querier) SetPeerNote(peer, note string) { q.notes.set(peer, note) }

// healthyMinTime is the oldest sample of the peers that answer, read at
// each request: what the bucket must serve of the other replicas is what
// their TSDBs no longer hold. With no peer up it is math.MaxInt64: the
// bucket serves all of their blocks.
func healthyMinTime(statuses func() []query.EndpointStatus) func() int64 {
	return func() int64 {
		out := int64(math.MaxInt64)
		for _, s := range statuses() {
			if s.LastError == nil {
				out = min(out, s.MinTime)
			}
		}
		return out
	}
}
