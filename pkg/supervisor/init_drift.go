package supervisor

import (
	"strings"
	"sync"
	"time"

	promconfig "github.com/prometheus/prometheus/config"
	"google.golang.org/grpc"

	"github.com/monstackd/monstackd/pkg/components/drift"
	"github.com/monstackd/monstackd/pkg/components/querier"
)

// driftInterval is how often the replicas compare configurations.
const driftInterval = 15 * time.Second

// initDrift serves this replica's config fingerprint to the peers and
// compares theirs with it: scrape jobs, rule groups and external labels
// that differ break deduplication without an error anywhere else.
func (c *components) initDrift() (parts, error) {
	var (
		mtx sync.Mutex
		cur *promconfig.Config
	)
	own := func() (drift.Fingerprint, error) {
		mtx.Lock()
		cfg := cur
		mtx.Unlock()
		return drift.Compute(cfg, c.rules.Manager().RuleGroups(), c.cfg.Query.ReplicaLabel)
	}
	c.grpc.Register(func(srv *grpc.Server) { drift.Register(srv, own) })
	logger := c.logger(Drift)
	// No registerer: the querier's connections already export the gRPC
	// client metrics under the same names.
	dial, err := querier.PeerDialOptions(logger, nil, c.cfg.PeerTLS())
	if err != nil {
		return parts{}, err
	}
	g, err := drift.New(drift.Options{
		Logger:      logger,
		Registerer:  c.registry(),
		Own:         own,
		Peers:       c.cfg.Peers.Endpoints,
		DialOptions: dial,
		Interval:    driftInterval,
		Report:      func(err error) { c.d.readiness.SetDegraded(Drift, err) },
		OnPeer: func(peer string, diff []string) {
			note := ""
			if len(diff) > 0 {
				note = "config drift: " + strings.Join(diff, ", ")
			}
			c.querier.SetPeerNote(peer, note)
		},
	})
	if err != nil {
		return parts{}, err
	}
	return parts{serve: g.Run, close: g.Close, reloaders: []reloader{{name: "drift", reload: func(cfg *promconfig.Config) error {
		mtx.Lock()
		cur = cfg
		mtx.Unlock()
		g.Trigger()
		return nil
	}}}}, nil
}
