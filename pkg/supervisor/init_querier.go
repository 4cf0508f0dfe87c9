package supervisor

import (
	"time"

	"github.com/thanos-io/thanos/pkg/component"
	"github.com/thanos-io/thanos/pkg/store"

	"github.com/monstackd/monstackd/pkg/components/querier"
	"github.com/monstackd/monstackd/pkg/components/tsdb"
)

// initQuerier builds the Thanos querier over the local TSDB, read natively
// with the sidecar's external labels, and the store gateway in-process (no
// gRPC) for the time before the local TSDB's oldest sample. The peers join
// it over gRPC; their health is a degraded detail of /-/ready, never a
// start-up error.
func (c *components) initQuerier() (parts, error) {
	local := &querier.Local{DB: c.db.DB(), ExternalLabels: c.sidecar.ExternalLabels}
	if c.db.AttachesLabels() {
		local.Attach = tsdb.AttachLabels
	}
	bucket := querier.NewLocalClient(StoreGateway, component.Store, c.storeGateway.Store())
	logger, reg := c.logger(Querier), c.registry()
	dial, err := querier.PeerDialOptions(logger, reg, c.cfg.PeerTLS())
	if err != nil {
		return parts{}, err
	}
	peers := querier.Peers{
		Endpoints:       c.cfg.Peers.Endpoints,
		DialOptions:     dial,
		ResponseTimeout: time.Duration(c.cfg.Peers.ResponseTimeout),
		Report:          func(err error) { c.d.readiness.SetDegraded(peersDetail, err) },
	}
	qcfg := c.cfg.Query
	// With the frontend, it asks for "auto" where a range query names no
	// resolution; the querier's own default must stay raw, because the
	// frontend passes an explicit raw (0s) on as no parameter at all.
	qcfg.AutoDownsampling = qcfg.AutoDownsampling && !c.cfg.Frontend.Enabled
	q := querier.New(logger, reg, qcfg, local,
		func() []store.Client { return []store.Client{bucket} }, peers)
	c.querier = q
	return parts{serve: q.RunEndpointUpdates}, nil
}

// peersDetail names the peers' health on /-/ready.
const peersDetail = "peers"
