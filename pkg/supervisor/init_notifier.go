package supervisor

import "github.com/monstackd/monstackd/pkg/components/rules"

// initNotifier builds alert delivery. It stops after the rules, so that the
// last alerts are still sent.
func (c *components) initNotifier() (parts, error) {
	n := rules.NewNotifier(c.slogger(Notifier), c.d.promReg, c.cfg.Rules.NotificationQueueSize, c.notifySD)
	c.notifier = n
	return parts{
		run:       n.Run,
		interrupt: func(error) { n.Stop() },
		reloaders: []reloader{
			{name: "notify", reload: n.ApplyConfig},
			{name: "notify_sd", reload: n.ApplyDiscoveryConfig},
		},
	}, nil
}
