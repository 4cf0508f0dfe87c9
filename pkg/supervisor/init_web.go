package supervisor

import (
	"github.com/prometheus/common/route"

	"github.com/monstackd/monstackd/pkg/components/web"
)

// initWeb installs the query API and UI and Prometheus' API on the HTTP
// server, both behind the memory guard.
func (c *components) initWeb() (parts, error) {
	queryAPI, ui := route.New(), route.New()
	c.querier.RegisterAPI(queryAPI)
	c.querier.RegisterUI(ui)
	c.http.SetRoutes(web.Routes{
		QueryAPI:      c.admission.Wrap(queryAPI),
		PrometheusAPI: c.admission.Wrap(c.promAPI),
		UI:            ui,
	})
	return parts{}, nil
}
