package supervisor

import (
	"github.com/thanos-io/thanos/pkg/component"
	"github.com/thanos-io/thanos/pkg/query"
	"github.com/thanos-io/thanos/pkg/store"

	"github.com/monstackd/monstackd/pkg/components/querier"
	"github.com/monstackd/monstackd/pkg/components/tsdb"
)

// initQuerier builds the Thanos querier over the local TSDB, read natively
// with the sidecar's external labels, and the store gateway in-process (no
// gRPC) for the time before the local TSDB's oldest sample. The peer joins
// it through its endpoint list.
func (c *components) initQuerier() (parts, error) {
	local := &querier.Local{DB: c.db.DB(), ExternalLabels: c.sidecar.ExternalLabels}
	if c.db.AttachesLabels() {
		local.Attach = tsdb.AttachLabels
	}
	bucket := querier.NewLocalClient(StoreGateway, component.Store, c.storeGateway.Store())
	q := querier.New(c.logger(Querier), c.registry(), c.cfg.Query, local,
		func() []store.Client { return []store.Client{bucket} },
		func() []*query.GRPCEndpointSpec { return nil })
	c.querier = q
	return parts{serve: q.RunEndpointUpdates}, nil
}
