package supervisor

import "github.com/monstackd/monstackd/pkg/components/discovery"

// initNotifyDiscovery builds service discovery for the Alertmanagers. Its
// configuration is applied by the notifier module, after the notifier's.
func (c *components) initNotifyDiscovery() (parts, error) {
	disc, err := discovery.New(c.slogger("discovery manager notify"), c.d.promReg, c.sdMetrics, "notify")
	if err != nil {
		return parts{}, err
	}
	c.notifySD = disc
	return parts{run: disc.Run, interrupt: func(error) { disc.Stop() }}, nil
}
