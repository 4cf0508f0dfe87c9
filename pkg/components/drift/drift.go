// Package drift guards the pair against configuration drift: replicas that
// scrape different targets or evaluate different rules produce different
// series, which deduplication then mixes silently. Each daemon serves a
// fingerprint of its effective scrape and rule configuration (one hash per
// scrape job, rule group and the external labels, the replica label left
// out) on its gRPC server, and compares it with its peers'.
package drift

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v2"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Fingerprint maps each item of the configuration ("scrape job node",
// "rule group pair", "external labels") to a hash of its content.
type Fingerprint map[string]string

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// Compute fingerprints cfg's scrape jobs and external labels (without
// replicaLabel) and the loaded rule groups.
func Compute(cfg *promconfig.Config, groups []*rules.Group, replicaLabel string) (Fingerprint, error) {
	fp := Fingerprint{}
	if cfg == nil {
		return fp, nil
	}
	ext := labels.NewBuilder(cfg.GlobalConfig.ExternalLabels).Del(replicaLabel).Labels()
	fp["external labels"] = hash(ext.String())
	for _, sc := range cfg.ScrapeConfigs {
		// Prometheus' types marshal secrets as <secret>: a changed
		// password is not drift anyone can see, and is not leaked.
		b, err := yaml.Marshal(sc)
		if err != nil {
			return nil, fmt.Errorf("scrape job %s: %w", sc.JobName, err)
		}
		fp["scrape job "+sc.JobName] = hash(string(b))
	}
	for _, g := range groups {
		var b strings.Builder
		fmt.Fprintf(&b, "interval %s limit %d\n", g.Interval(), g.Limit())
		for _, r := range g.Rules() {
			b.WriteString(r.String())
			b.WriteByte('\n')
		}
		fp["rule group "+g.Name()] = hash(b.String())
	}
	return fp, nil
}

// Diff lists what differs between this replica's fingerprint and a peer's,
// sorted: "scrape job x differs", "rule group y only on this replica", ...
func Diff(own, peer Fingerprint) []string {
	var out []string
	for k, v := range own {
		switch pv, ok := peer[k]; {
		case !ok:
			out = append(out, k+" only on this replica")
		case pv != v:
			out = append(out, k+" differs")
		}
	}
	for k := range peer {
		if _, ok := own[k]; !ok {
			out = append(out, k+" only on the peer")
		}
	}
	sort.Strings(out)
	return out
}

const (
	serviceName = "monstackd.Drift"
	methodName  = "Fingerprint"
	fullMethod  = "/" + serviceName + "/" + methodName
)

// Register serves the fingerprint get returns on srv, as a unary method
// with well-known protobuf types: no generated code, and stock Thanos
// components, which do not know the service, never call it.
func Register(srv *grpc.Server, get func() (Fingerprint, error)) {
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: serviceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: methodName,
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				if err := dec(&emptypb.Empty{}); err != nil {
					return nil, err
				}
				fp, err := get()
				if err != nil {
					return nil, err
				}
				m := make(map[string]any, len(fp))
				for k, v := range fp {
					m[k] = v
				}
				return structpb.NewStruct(m)
			},
		}},
	}, struct{}{})
}

// Fetch asks the daemon at the other end of conn for its fingerprint.
func Fetch(ctx context.Context, conn *grpc.ClientConn) (Fingerprint, error) {
	var out structpb.Struct
	if err := conn.Invoke(ctx, fullMethod, &emptypb.Empty{}, &out); err != nil {
		return nil, err
	}
	fp := Fingerprint{}
	for k, v := range out.GetFields() {
		fp[k] = v.GetStringValue()
	}
	return fp, nil
}

// Guard compares this replica's fingerprint with each peer's.
type Guard struct {
	logger   log.Logger
	own      func() (Fingerprint, error)
	peers    map[string]*grpc.ClientConn
	interval time.Duration
	report   func(error)
	onPeer   func(string, []string)
	drift    *prometheus.GaugeVec

	mtx     sync.Mutex
	last    map[string]string // peer → last logged diff
	trigger chan struct{}
}

// Options configure a Guard.
type Options struct {
	Logger     log.Logger
	Registerer prometheus.Registerer
	// Own returns this replica's current fingerprint.
	Own func() (Fingerprint, error)
	// Peers are the peers' gRPC addresses, dialled with DialOptions.
	Peers       []string
	DialOptions []grpc.DialOption
	Interval    time.Duration
	// Report receives the drift found in a round, nil when there is none.
	Report func(error)
	// OnPeer, if set, receives each peer's differences after each check.
	OnPeer func(peer string, diff []string)
}

// New builds the guard; connections to the peers are made lazily.
func New(o Options) (*Guard, error) {
	g := &Guard{
		logger: o.Logger, own: o.Own, interval: o.Interval, report: o.Report, onPeer: o.OnPeer,
		peers: map[string]*grpc.ClientConn{}, last: map[string]string{}, trigger: make(chan struct{}, 1),
		drift: promauto.With(o.Registerer).NewGaugeVec(prometheus.GaugeOpts{
			Name: "monstackd_config_drift",
			Help: "Number of scrape jobs, rule groups and external label sets that differ from the peer's (0: the replicas deduplicate cleanly).",
		}, []string{"peer"}),
	}
	for _, p := range o.Peers {
		conn, err := grpc.NewClient(p, o.DialOptions...)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", p, err)
		}
		g.peers[p] = conn
	}
	return g, nil
}

// Run compares every interval until ctx ends.
func (g *Guard) Run(ctx context.Context) error {
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		g.Check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-g.trigger:
		}
	}
}

// Trigger asks for a check now (after a reload), without waiting for it.
func (g *Guard) Trigger() {
	select {
	case g.trigger <- struct{}{}:
	default:
	}
}

// Check compares once with every peer; a peer that cannot be asked is
// left to the querier's health report.
func (g *Guard) Check(ctx context.Context) {
	own, err := g.own()
	if err != nil {
		level.Error(g.logger).Log("msg", "fingerprint of this replica's config", "err", err)
		return
	}
	var errs []error
	for _, p := range sortedKeys(g.peers) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fp, err := Fetch(cctx, g.peers[p])
		cancel()
		if err != nil {
			level.Debug(g.logger).Log("msg", "peer's config fingerprint", "peer", p, "err", err)
			continue
		}
		diff := Diff(own, fp)
		g.drift.WithLabelValues(p).Set(float64(len(diff)))
		g.logChange(p, diff)
		if g.onPeer != nil {
			g.onPeer(p, diff)
		}
		if len(diff) > 0 {
			errs = append(errs, fmt.Errorf("config differs from peer %s: %s", p, strings.Join(diff, ", ")))
		}
	}
	if g.report != nil {
		g.report(errors.Join(errs...))
	}
}

// logChange logs a peer's drift when it appears, changes or clears.
func (g *Guard) logChange(peer string, diff []string) {
	d := strings.Join(diff, ", ")
	g.mtx.Lock()
	prev, seen := g.last[peer]
	g.last[peer] = d
	g.mtx.Unlock()
	switch {
	case seen && prev == d:
	case d != "":
		level.Warn(g.logger).Log("msg", "configuration differs from the peer's: deduplication mixes series that are not replicas", "peer", peer, "differs", d)
	case seen:
		level.Info(g.logger).Log("msg", "configuration matches the peer's again", "peer", peer)
	}
}

// Close closes the peer connections.
func (g *Guard) Close() error {
	var errs []error
	for _, c := range g.peers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
