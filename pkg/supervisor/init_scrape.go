package supervisor

import "github.com/monstackd/monstackd/pkg/components/scrape"

// initScrape builds the scrape manager appending into the TSDB. It stops
// before the TSDB closes, so that no sample goes to a closed storage.
func (c *components) initScrape() (parts, error) {
	scr, err := scrape.New(c.slogger("scrape manager"), c.d.promReg, c.db.Appendable(), c.scrapeSD)
	if err != nil {
		return parts{}, err
	}
	c.scrape = scr
	return parts{
		run:       scr.Run,
		interrupt: func(error) { scr.Stop() },
		// The scrape manager takes the new config before discovery sends
		// targets for it.
		reloaders: []reloader{
			{name: "scrape", reload: scr.ApplyConfig},
			{name: "scrape_sd", reload: scr.ApplyDiscoveryConfig},
		},
	}, nil
}
