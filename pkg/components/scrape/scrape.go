// Package scrape runs Prometheus' scrape manager, appending into the local
// TSDB the targets its discovery manager finds.
package scrape

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	promdiscovery "github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/logging"

	"github.com/monstackd/monstackd/pkg/components/discovery"
)

// Scrape scrapes the targets of prometheus.yml's jobs.
type Scrape struct {
	discovery *discovery.Discovery
	manager   *scrape.Manager
}

// New builds the scrape manager; app receives the samples, disc finds the targets.
func New(logger *slog.Logger, reg prometheus.Registerer, app storage.Appendable, disc *discovery.Discovery) (*Scrape, error) {
	m, err := scrape.NewManager(&scrape.Options{}, logger, logging.NewJSONFileLogger, app, reg)
	if err != nil {
		return nil, fmt.Errorf("create scrape manager: %w", err)
	}
	return &Scrape{discovery: disc, manager: m}, nil
}

// Manager exposes the scrape manager to the HTTP API (targets, metadata).
func (s *Scrape) Manager() *scrape.Manager { return s.manager }

// ApplyConfig reloads the scrape manager.
func (s *Scrape) ApplyConfig(cfg *promconfig.Config) error { return s.manager.ApplyConfig(cfg) }

// ApplyDiscoveryConfig reloads service discovery. It must run after
// ApplyConfig: new targets are scraped with the job config they arrive with.
func (s *Scrape) ApplyDiscoveryConfig(cfg *promconfig.Config) error {
	scfgs, err := cfg.GetScrapeConfigs()
	if err != nil {
		return err
	}
	c := make(map[string]promdiscovery.Configs, len(scfgs))
	for _, v := range scfgs {
		c[v.JobName] = v.ServiceDiscoveryConfigs
	}
	return s.discovery.ApplyConfig(c)
}

// Run scrapes the discovered targets until Stop.
func (s *Scrape) Run() error { return s.manager.Run(s.discovery.SyncCh()) }

// Stop stops scraping. It must happen before the TSDB closes so that no
// sample is appended to a closed storage.
func (s *Scrape) Stop() { s.manager.Stop() }
