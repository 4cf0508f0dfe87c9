package supervisor

import "github.com/monstackd/monstackd/pkg/components/discovery"

// initScrapeDiscovery builds service discovery for the scrape jobs. Its
// configuration is applied by the scrape module, after the scrape manager's.
func (c *components) initScrapeDiscovery() (parts, error) {
	disc, err := discovery.New(c.slogger("discovery manager scrape"), c.d.promReg, c.sdMetrics, "scrape")
	if err != nil {
		return parts{}, err
	}
	c.scrapeSD = disc
	return parts{run: disc.Run, interrupt: func(error) { disc.Stop() }}, nil
}
