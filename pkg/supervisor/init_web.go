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
// (block metas only, no query). The query-frontend, when on, is in front of
// the guard: answers from its cache need no memory, and each split request
// is admitted on its own.
func (c *components) initWeb() (parts, error) {
	queryAPIRouter, ui, bucket := route.New(), route.New(), route.New()
	c.querier.RegisterAPI(queryAPIRouter)
	c.querier.RegisterUI(ui)
	c.storeGateway.RegisterWeb(bucket, web.BucketPrefix)
	queryAPI := c.admission.Wrap(queryAPIRouter)
	if c.frontend != nil {
		queryAPI = c.frontend.Wrap(queryAPI)
	}
	c.http.SetRoutes(web.Routes{
		QueryAPI:      queryAPI,
		PrometheusAPI: c.admission.Wrap(c.promAPI),
		UI:            ui,
		Bucket:        web.Banner(bucket, c.leaseBanner),
	})
	return parts{}, nil
}
