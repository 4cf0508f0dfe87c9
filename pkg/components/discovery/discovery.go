// Package discovery runs one of Prometheus' service discovery managers: the
// scrape manager and the notifier each consume one, as in Prometheus.
package discovery

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/targetgroup"
)

// Discovery is a named discovery manager with its own lifetime.
type Discovery struct {
	manager *discovery.Manager
	cancel  context.CancelFunc
}

// New builds the discovery manager name ("scrape" or "notify"). sdMetrics
// are shared by every manager of the process: they register only once.
func New(logger *slog.Logger, reg prometheus.Registerer, sdMetrics map[string]discovery.DiscovererMetrics, name string) (*Discovery, error) {
	ctx, cancel := context.WithCancel(context.Background())
	m := discovery.NewManager(ctx, logger, reg, sdMetrics, discovery.Name(name))
	if m == nil {
		cancel()
		return nil, fmt.Errorf("create %s discovery manager", name)
	}
	return &Discovery{manager: m, cancel: cancel}, nil
}

// ApplyConfig replaces the discovery configs, keyed by job or Alertmanager set.
func (d *Discovery) ApplyConfig(cfg map[string]discovery.Configs) error {
	return d.manager.ApplyConfig(cfg)
}

// SyncCh delivers the discovered target groups to the consumer.
func (d *Discovery) SyncCh() <-chan map[string][]*targetgroup.Group { return d.manager.SyncCh() }

// Run discovers until Stop.
func (d *Discovery) Run() error { return d.manager.Run() }

// Stop ends Run.
func (d *Discovery) Stop() { d.cancel() }
