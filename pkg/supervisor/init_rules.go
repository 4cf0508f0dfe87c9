package supervisor

import (
	"context"
	"time"

	"github.com/monstackd/monstackd/pkg/components/rules"
)

// peersFirstUpdateWait bounds the rules' wait for the peers at start: the
// Info call's own timeout and a little.
const peersFirstUpdateWait = 6 * time.Second

// initRules builds rule evaluation over the TSDB with Prometheus' engine. It
// is a service: a failure or a panic in an evaluation restarts it with a
// fresh rule manager while scraping goes on. In a pair, alerts' pending
// state is restored from both replicas' record.
func (c *components) initRules() (parts, error) {
	st := c.db.DB()
	o := rules.Options{
		Logger:         c.slogger("rule manager"),
		Registerer:     c.d.promReg,
		Config:         c.cfg.Rules,
		ForGracePeriod: time.Duration(c.cfg.ForGrace()),
		Storage:        st,
		Appendable:     c.db.Appendable(),
		QueryFunc:      rules.EngineQueryFunc(c.engine, st),
		Notifier:       c.notifier.Manager(),
		ExternalURL:    c.externalURL,
	}
	if len(c.cfg.Peers.Endpoints) > 0 {
		// Pending alerts are restored from the pair's record, which the
		// peer kept while this replica was down.
		o.Storage = c.querier.RestoreQueryable()
		o.BeforeRun = func(ctx context.Context) { c.querier.WaitPeers(ctx, peersFirstUpdateWait) }
	}
	r := rules.New(o)
	c.rules = r
	return parts{serve: r.Run, reloaders: []reloader{{name: "rules", reload: r.ApplyConfig}}}, nil
}
