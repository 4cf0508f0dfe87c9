package supervisor

import (
	"github.com/thanos-io/thanos/pkg/query"
	"github.com/thanos-io/thanos/pkg/store"

	"github.com/monstackd/monstackd/pkg/components/querier"
	"github.com/monstackd/monstackd/pkg/components/tsdb"
)

// initQuerier builds the Thanos querier over the local TSDB, read natively
// with the sidecar's external labels. The bucket store and the peer join it
// through its store and endpoint lists.
func (c *components) initQuerier() (parts, error) {
	local := &querier.Local{DB: c.db.DB(), ExternalLabels: c.sidecar.ExternalLabels}
	if c.db.AttachesLabels() {
		local.Attach = tsdb.AttachLabels
	}
	q := querier.New(c.logger(Querier), c.registry(), c.cfg.Query, local,
		func() []store.Client { return nil },
		func() []*query.GRPCEndpointSpec { return nil })
	c.querier = q
	return parts{serve: q.RunEndpointUpdates}, nil
}
