// Package scrape runs Prometheus' service discovery and scrape manager,
// appending into the local TSDB.
package scrape

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/logging"
)

// Scrape discovers targets and scrapes them.
type Scrape struct {
	logger    *slog.Logger
	discovery *discovery.Manager
	cancelSD  context.CancelFunc
	manager   *scrape.Manager
}

// New builds discovery and scrape managers; app receives the samples.
func New(logger *slog.Logger, reg prometheus.Registerer, sdMetrics map[string]discovery.DiscovererMetrics, app storage.Appendable) (*Scrape, error) {
	ctx, cancel := context.WithCancel(context.Background())
	d := discovery.NewManager(ctx, logger.With("component", "discovery manager scrape"), reg, sdMetrics, discovery.Name("scrape"))
	if d == nil {
		cancel()
		return nil, fmt.Errorf("create scrape discovery manager")
	}
	m, err := scrape.NewManager(&scrape.Options{}, logger.With("component", "scrape manager"), logging.NewJSONFileLogger, app, reg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("create scrape manager: %w", err)
	}
	return &Scrape{logger: logger, discovery: d, cancelSD: cancel, manager: m}, nil
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
	c := make(map[string]discovery.Configs, len(scfgs))
	for _, v := range scfgs {
		c[v.JobName] = v.ServiceDiscoveryConfigs
	}
	return s.discovery.ApplyConfig(c)
}

// RunDiscovery runs service discovery until StopDiscovery.
func (s *Scrape) RunDiscovery() error { return s.discovery.Run() }

// StopDiscovery stops service discovery.
func (s *Scrape) StopDiscovery() { s.cancelSD() }

// Run scrapes the discovered targets until Stop.
func (s *Scrape) Run() error { return s.manager.Run(s.discovery.SyncCh()) }

// Stop stops scraping. It must happen before the TSDB closes so that no
// sample is appended to a closed storage.
func (s *Scrape) Stop() { s.manager.Stop() }
