package supervisor

import (
	"time"

	"github.com/monstackd/monstackd/pkg/components/shipper"
)

// shipInterval is how often the shipper looks for new blocks, as the sidecar.
const shipInterval = 30 * time.Second

// initShipper uploads completed blocks with the sidecar's external labels
// and keeps local retention from deleting what is not uploaded yet.
func (c *components) initShipper() (parts, error) {
	reg := c.registry()
	sh, err := shipper.New(shipper.Options{
		Logger:     c.logger(Shipper),
		Registerer: reg,
		Bucket:     c.bucket,
		Dir:        c.db.Dir(),
		Labels:     c.sidecar.ExternalLabels,
		Interval:   shipInterval,
		Report:     func(err error) { c.d.readiness.SetDegraded(Shipper, err) },
	})
	if err != nil {
		return parts{}, err
	}
	c.db.KeepBlocks(sh.Keep)
	c.shipper = sh
	return parts{serve: sh.Run, close: sh.Close}, nil
}
