// Package sidecar is the Thanos sidecar half of monstackd: the local TSDB as
// a StoreAPI, reached in-process by the querier and over gRPC (StoreAPI +
// Info) by the peer and by stock Thanos components. The shipper joins it with
// the bucket tier.
package sidecar

import (
	"github.com/go-kit/log"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/thanos/pkg/component"
	"github.com/thanos-io/thanos/pkg/info"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/store"
	"google.golang.org/grpc"
)

// Sidecar serves the local TSDB as a StoreAPI.
type Sidecar struct {
	logger log.Logger
	store  *store.TSDBStore
	info   *info.InfoServer
}

// New wraps db. extLset are the external labels (role's replica included).
func New(logger log.Logger, db *tsdb.DB, extLset labels.Labels) *Sidecar {
	st := store.NewTSDBStore(logger, db, component.Sidecar, extLset)
	infoSrv := info.NewInfoServer(
		component.Sidecar.String(),
		info.WithLabelSetFunc(st.LabelSet),
		info.WithStoreInfoFunc(func() (*infopb.StoreInfo, error) {
			mint, maxt := st.TimeRange()
			return &infopb.StoreInfo{
				MinTime:                      mint,
				MaxTime:                      maxt,
				SupportsSharding:             true,
				SupportsWithoutReplicaLabels: true,
				TsdbInfos:                    st.TSDBInfos(),
			}, nil
		}),
	)
	return &Sidecar{logger: logger, store: st, info: infoSrv}
}

// Register adds the StoreAPI and the Info API, which the querier's
// EndpointSet reads labels and time ranges from, to srv.
func (s *Sidecar) Register(srv *grpc.Server) {
	store.RegisterStoreServer(s.store, s.logger)(srv)
	info.RegisterInfoServer(s.info)(srv)
}

// Store is the in-process StoreAPI over the local TSDB.
func (s *Sidecar) Store() *store.TSDBStore { return s.store }

// ExternalLabels returns the labels the store advertises.
func (s *Sidecar) ExternalLabels() labels.Labels {
	ls := s.store.ExtLabelSets()
	if len(ls) == 0 {
		return labels.EmptyLabels()
	}
	return ls[0]
}

// SetExternalLabels updates the labels the store advertises (config reload).
func (s *Sidecar) SetExternalLabels(lset labels.Labels) { s.store.SetExtLset(lset) }
