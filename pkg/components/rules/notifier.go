package rules

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	promdiscovery "github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/notifier"

	"github.com/monstackd/monstackd/pkg/components/discovery"
)

// Notifier sends alerts to the Alertmanagers its discovery manager finds.
type Notifier struct {
	manager   *notifier.Manager
	discovery *discovery.Discovery
}

// NewNotifier builds the notifier with a queue of queueCapacity alerts.
func NewNotifier(logger *slog.Logger, reg prometheus.Registerer, queueCapacity int, disc *discovery.Discovery) *Notifier {
	n := notifier.NewManager(&notifier.Options{
		QueueCapacity: queueCapacity,
		Registerer:    reg,
	}, promconfig.DefaultGlobalConfig.MetricNameValidationScheme, logger)
	return &Notifier{manager: n, discovery: disc}
}

// Manager exposes the notifier to the rules and the HTTP API (alertmanagers).
func (n *Notifier) Manager() *notifier.Manager { return n.manager }

// ApplyConfig reloads the notifier (external labels, alert relabelling).
func (n *Notifier) ApplyConfig(cfg *promconfig.Config) error { return n.manager.ApplyConfig(cfg) }

// ApplyDiscoveryConfig reloads Alertmanager discovery; after ApplyConfig.
func (n *Notifier) ApplyDiscoveryConfig(cfg *promconfig.Config) error {
	c := make(map[string]promdiscovery.Configs)
	for k, v := range cfg.AlertingConfig.AlertmanagerConfigs.ToMap() {
		c[k] = v.ServiceDiscoveryConfigs
	}
	return n.discovery.ApplyConfig(c)
}

// Run delivers alerts until Stop.
func (n *Notifier) Run() error {
	n.manager.Run(n.discovery.SyncCh())
	return nil
}

// Stop drains and stops delivery. The rule manager stops first, so that no
// alert is sent to a stopped notifier.
func (n *Notifier) Stop() { n.manager.Stop() }
