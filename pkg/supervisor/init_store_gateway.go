package supervisor

import (
	"path/filepath"
	"time"

	"github.com/monstackd/monstackd/pkg/components/storegateway"
)

// initStoreGateway serves the bucket's blocks to the querier. Its
// index-headers live beside the TSDB, not in it (DESIGN.md §3.16). The
// shipper's uploads trigger a sync, and retention keeps every local block
// until the store serves it: no query falls between the two.
func (c *components) initStoreGateway() (parts, error) {
	sg, err := storegateway.New(storegateway.Options{
		Logger:         c.logger(StoreGateway),
		Registerer:     c.registry(),
		Bucket:         c.bucket,
		Dir:            filepath.Join(c.rt.DataDir, "store-gateway"),
		IndexCacheSize: int64(c.cfg.StoreGateway.IndexCacheSize),
		ChunkCacheSize: int64(c.cfg.StoreGateway.ChunkCacheSize),
		Interval:       time.Duration(c.cfg.StoreGateway.SyncInterval),
		Report:         func(err error) { c.d.readiness.SetDegraded(StoreGateway, err) },
		ReplicaLabel:   c.cfg.Query.ReplicaLabel,
	})
	if err != nil {
		return parts{}, err
	}
	c.db.KeepBlocks(sg.Keep)
	c.shipper.OnUploaded(sg.Trigger)
	c.storeGateway = sg
	return parts{serve: sg.Run, close: sg.Close}, nil
}
