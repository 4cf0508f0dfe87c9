package supervisor

import (
	"github.com/prometheus/common/route"

	"github.com/monstackd/monstackd/pkg/components/web"
)

// leaseBanner is the compactor lease's state on the bucket UI's pages.
func (c *components) leaseBanner() string {
	if c.lease == nil {
		return ""
	}
	return "Compactor lease: " + c.lease.State().String()
}

// initWeb installs the query API and UI and Prometheus' API on the HTTP
// server, both behind the memory guard, and the store gateway's bucket UI
// (block metas only, no query).
func (c *components) initWeb() (parts, error) {
	queryAPI, ui, bucket := route.New(), route.New(), route.New()
	c.querier.RegisterAPI(queryAPI)
	c.querier.RegisterUI(ui)
	c.storeGateway.RegisterWeb(bucket, web.BucketPrefix)
	c.http.SetRoutes(web.Routes{
		QueryAPI:      c.admission.Wrap(queryAPI),
		PrometheusAPI: c.admission.Wrap(c.promAPI),
		UI:            ui,
		Bucket:        web.Banner(bucket, c.leaseBanner),
	})
	return parts{}, nil
}
