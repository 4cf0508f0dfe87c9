package supervisor

import "github.com/monstackd/monstackd/pkg/components/rules"

// initRules builds rule evaluation over the TSDB with Prometheus' engine. It
// is a service: a failure or a panic in an evaluation restarts it with a
// fresh rule manager while scraping goes on.
func (c *components) initRules() (parts, error) {
	st := c.db.DB()
	r := rules.New(rules.Options{
		Logger:      c.slogger("rule manager"),
		Registerer:  c.d.promReg,
		Config:      c.cfg.Rules,
		Storage:     st,
		Appendable:  c.db.Appendable(),
		QueryFunc:   rules.EngineQueryFunc(c.engine, st),
		Notifier:    c.notifier.Manager(),
		ExternalURL: c.externalURL,
	})
	c.rules = r
	return parts{serve: r.Run, reloaders: []reloader{{name: "rules", reload: r.ApplyConfig}}}, nil
}
