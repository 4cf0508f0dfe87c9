package supervisor

import (
	promconfig "github.com/prometheus/prometheus/config"

	"github.com/monstackd/monstackd/pkg/components/sidecar"
)

// initSidecar serves the local TSDB as a StoreAPI + Info on the gRPC server,
// for the peer and stock Thanos components.
func (c *components) initSidecar() (parts, error) {
	sc := sidecar.New(c.logger(Sidecar), c.db.DB(), c.pcfg.GlobalConfig.ExternalLabels)
	c.grpc.Register(sc.Register)
	c.sidecar = sc
	return parts{reloaders: []reloader{{name: "sidecar_external_labels", reload: func(cfg *promconfig.Config) error {
		sc.SetExternalLabels(cfg.GlobalConfig.ExternalLabels)
		return nil
	}}}}, nil
}
