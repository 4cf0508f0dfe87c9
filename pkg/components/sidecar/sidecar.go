// Package sidecar is the Thanos sidecar half of monstackd: the local TSDB as
// a StoreAPI, reached in-process by the querier and over gRPC (StoreAPI +
// Info) by the peer and by stock Thanos components. The shipper joins it with
// the bucket tier.
package sidecar

import (
	"time"

	"github.com/go-kit/log"
	grpc_logging "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/opentracing/opentracing-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/thanos/pkg/component"
	"github.com/thanos-io/thanos/pkg/info"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/prober"
	grpcserver "github.com/thanos-io/thanos/pkg/server/grpc"
	"github.com/thanos-io/thanos/pkg/store"

	// Thanos' non-pooling proto codec, as the thanos binary registers it.
	_ "github.com/thanos-io/thanos/pkg/extgrpc"
)

const grpcGracePeriod = 2 * time.Second

// Sidecar serves the local TSDB as a StoreAPI.
type Sidecar struct {
	store *store.TSDBStore
	probe *prober.GRPCProbe
	srv   *grpcserver.Server
}

// New wraps db. extLset are the external labels (role's replica included).
// reg is the sidecar's own registry.
func New(logger log.Logger, reg prometheus.Registerer, db *tsdb.DB, extLset labels.Labels, grpcAddr string) *Sidecar {
	st := store.NewTSDBStore(logger, db, component.Sidecar, extLset)
	s := &Sidecar{store: st, probe: prober.NewGRPC()}

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
	s.srv = grpcserver.New(logger, reg, opentracing.NoopTracer{}, []grpc_logging.Option{}, nil, component.Sidecar, s.probe,
		grpcserver.WithServer(store.RegisterStoreServer(st, logger)),
		grpcserver.WithServer(info.RegisterInfoServer(infoSrv)),
		grpcserver.WithListen(grpcAddr),
		grpcserver.WithGracePeriod(grpcGracePeriod),
	)
	return s
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

// Serve serves gRPC until Shutdown.
func (s *Sidecar) Serve() error {
	s.probe.Ready()
	s.probe.Healthy()
	// Returns nil once Shutdown stopped the server.
	return s.srv.ListenAndServe()
}

// Shutdown stops serving after a short grace period.
func (s *Sidecar) Shutdown(err error) {
	s.probe.NotReady(err)
	s.srv.Shutdown(err)
}
