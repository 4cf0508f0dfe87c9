package querier

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-kit/log"
	"github.com/opentracing/opentracing-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/thanos-io/thanos/pkg/extgrpc"
	"github.com/thanos-io/thanos/pkg/query"
	"github.com/thanos-io/thanos/pkg/store"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/monstackd/monstackd/pkg/config"
)

// peerTLSMinVersion is Thanos' default --grpc-client-tls-min-version.
const peerTLSMinVersion = "1.3"

// Peers are the pair's other replicas: their local TSDB's StoreAPI over gRPC.
type Peers struct {
	Endpoints []string
	// DialOptions come from PeerDialOptions.
	DialOptions []grpc.DialOption
	// ResponseTimeout bounds the wait for a peer that sends nothing.
	ResponseTimeout time.Duration
	// Report receives the peers' health after every update: nil when
	// every peer answers Info, else one error per peer that does not.
	Report func(error)
}

// PeerDialOptions are Thanos' StoreAPI client options (message sizes,
// keepalive, metrics on reg) and the transport credentials of tlsCfg.
func PeerDialOptions(logger log.Logger, reg prometheus.Registerer, tlsCfg config.ClientTLSConfig) ([]grpc.DialOption, error) {
	opts, err := extgrpc.StoreClientGRPCOpts(logger, reg, opentracing.NoopTracer{})
	if err != nil {
		return nil, err
	}
	creds, err := extgrpc.StoreClientTLSCredentials(logger, tlsCfg.On(), tlsCfg.InsecureSkipVerify,
		tlsCfg.CertFile, tlsCfg.KeyFile, tlsCfg.CAFile, tlsCfg.ServerName, peerTLSMinVersion)
	if err != nil {
		return nil, fmt.Errorf("peers: tls_config: %w", err)
	}
	// Reconnect within seconds of a peer's return: gRPC's default backoff
	// grows to two minutes during a long outage.
	reconnect := grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: peerMaxReconnectDelay},
		MinConnectTimeout: peerMaxReconnectDelay,
	})
	return append(opts, creds, reconnect), nil
}

// peerMaxReconnectDelay bounds the wait between connection attempts to a
// peer that is down, and each attempt.
const peerMaxReconnectDelay = 5 * time.Second

// specs are the peers as strict endpoints: always asked, even when their
// last health check failed, so that a dead peer gives a partial-response
// warning naming it rather than silently thinner answers.
func (p Peers) specs() func() []*query.GRPCEndpointSpec {
	specs := make([]*query.GRPCEndpointSpec, 0, len(p.Endpoints))
	for _, e := range p.Endpoints {
		specs = append(specs, query.NewGRPCEndpointSpec(e, true, p.DialOptions...))
	}
	return func() []*query.GRPCEndpointSpec { return specs }
}

// peerHealth turns the endpoint statuses into the monstackd_peer_up gauge
// and the report.
type peerHealth struct {
	peers Peers
	up    *prometheus.GaugeVec
}

func newPeerHealth(reg prometheus.Registerer, peers Peers) *peerHealth {
	h := &peerHealth{peers: peers, up: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "monstackd_peer_up",
		Help: "Whether the peer replica's StoreAPI answered its last Info call (1) or not (0).",
	}, []string{"peer"})}
	for _, e := range peers.Endpoints {
		h.up.WithLabelValues(e).Set(0)
	}
	return h
}

// lastErrors maps each checked endpoint to its last Info error (nil: up).
func lastErrors(statuses []query.EndpointStatus) map[string]error {
	out := make(map[string]error, len(statuses))
	for _, s := range statuses {
		out[s.Name] = nil
		if s.LastError != nil {
			out[s.Name] = errors.New(s.LastError.Error())
		}
	}
	return out
}

// update sets the gauge and reports from the endpoints' last errors.
func (h *peerHealth) update(lastErr map[string]error) {
	var errs []error
	for _, e := range h.peers.Endpoints {
		err, checked := lastErr[e]
		switch {
		case !checked:
			errs = append(errs, fmt.Errorf("peer %s: not checked yet", e))
		case err != nil:
			errs = append(errs, fmt.Errorf("peer %s: unreachable: %w", e, err))
		default:
			h.up.WithLabelValues(e).Set(1)
			continue
		}
		h.up.WithLabelValues(e).Set(0)
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	if h.peers.Report != nil {
		h.peers.Report(errors.Join(errs...))
	}
}

// healthyPeers are the peers' store clients whose last Info call succeeded.
func healthyPeers(clients func() []store.Client, statuses func() []query.EndpointStatus) func() []store.Client {
	return func() []store.Client {
		up := map[string]bool{}
		for _, s := range statuses() {
			up[s.Name] = s.LastError == nil
		}
		var out []store.Client
		for _, c := range clients() {
			if addr, _ := c.Addr(); up[addr] {
				out = append(out, c)
			}
		}
		return out
	}
}

// downPeers returns a warning per peer whose last Info call failed.
func downPeers(statuses func() []query.EndpointStatus) func() annotations.Annotations {
	return func() annotations.Annotations {
		var w annotations.Annotations
		for _, s := range statuses() {
			if s.LastError != nil {
				w.Add(fmt.Errorf("peer %s is unreachable (%v): answered without it", s.Name, s.LastError))
			}
		}
		return w
	}
}

// skipDownPeers answers from all (every peer, strict) without partial
// responses, and otherwise from healthy (the peers that answer) with a
// warning naming each one left out.
func skipDownPeers[R any](
	all, healthy func(bool, []string, [][]*labels.Matcher, int64, bool, bool, *storepb.ShardInfo, R) storage.Queryable,
	down func() annotations.Annotations,
) func(bool, []string, [][]*labels.Matcher, int64, bool, bool, *storepb.ShardInfo, R) storage.Queryable {
	return func(deduplicate bool, replicaLabels []string, storeDebugMatchers [][]*labels.Matcher, maxResolutionMillis int64, partialResponse, skipChunks bool, shardInfo *storepb.ShardInfo, reporter R) storage.Queryable {
		if !partialResponse {
			return all(deduplicate, replicaLabels, storeDebugMatchers, maxResolutionMillis, partialResponse, skipChunks, shardInfo, reporter)
		}
		q := healthy(deduplicate, replicaLabels, storeDebugMatchers, maxResolutionMillis, partialResponse, skipChunks, shardInfo, reporter)
		return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
			qr, err := q.Querier(mint, maxt)
			if err != nil {
				return nil, err
			}
			return &warningQuerier{Querier: qr, warnings: down()}, nil
		})
	}
}

// warningQuerier adds warnings to what it selects.
type warningQuerier struct {
	storage.Querier
	warnings annotations.Annotations
}

func (w *warningQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &warningSet{SeriesSet: w.Querier.Select(ctx, sortSeries, hints, ms...), warnings: w.warnings}
}

type warningSet struct {
	storage.SeriesSet
	warnings annotations.Annotations
}

func (w *warningSet) Warnings() annotations.Annotations {
	var out annotations.Annotations
	out.Merge(w.SeriesSet.Warnings())
	out.Merge(w.warnings)
	return out
}
