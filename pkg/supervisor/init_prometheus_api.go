package supervisor

import (
	"time"

	"github.com/monstackd/monstackd/pkg/components/web"
)

// initPrometheusAPI builds Prometheus' own API over the TSDB, the scrape
// manager, the rules and the notifier.
func (c *components) initPrometheusAPI() (parts, error) {
	d := c.d
	api := web.NewPrometheusAPI(web.PrometheusAPIOptions{
		Logger:        c.slogger("api"),
		Engine:        c.engine,
		DB:            c.db.DB(),
		Admin:         c.db.AdminStats(),
		DBDir:         c.db.Dir(),
		Scrape:        c.scrape.Manager(),
		Rules:         c.rules.Manager,
		Notifier:      c.notifier.Manager(),
		Flags:         d.opts.Flags,
		ExternalURL:   c.externalURL,
		ListenAddress: c.rt.HTTPAddress,
		LookbackDelta: time.Duration(c.cfg.Query.LookbackDelta),
		Retention:     c.cfg.LocalRetention().String(),
		Gatherer:      d.Gatherer(),
		Registerer:    d.promReg,
		IsReady:       d.readiness.Started,
		EnableAdmin:   d.opts.EnableAdminAPI,
	})
	c.promAPI = api
	return parts{reloaders: []reloader{{name: "prometheus_api", reload: api.ApplyConfig}}}, nil
}
