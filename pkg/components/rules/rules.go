// Package rules evaluates recording and alerting rules on the local TSDB and
// sends alerts to Alertmanager through Prometheus' notifier.
package rules

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/monstackd/monstackd/pkg/config"
)

// Rules owns the rule manager, the notifier and the Alertmanager discovery.
type Rules struct {
	manager     *rules.Manager
	notifier    *notifier.Manager
	discovery   *discovery.Manager
	cancelSD    context.CancelFunc
	externalURL *url.URL
}

// New builds the rule manager evaluating with engine over st.
func New(logger *slog.Logger, reg prometheus.Registerer, sdMetrics map[string]discovery.DiscovererMetrics, cfg config.RulesConfig, engine *promql.Engine, st storage.Storage, externalURL *url.URL) (*Rules, error) {
	ctx, cancel := context.WithCancel(context.Background())
	d := discovery.NewManager(ctx, logger.With("component", "discovery manager notify"), reg, sdMetrics, discovery.Name("notify"))
	if d == nil {
		cancel()
		return nil, fmt.Errorf("create notify discovery manager")
	}
	n := notifier.NewManager(&notifier.Options{
		QueueCapacity: cfg.NotificationQueueSize,
		Registerer:    reg,
	}, promconfig.DefaultGlobalConfig.MetricNameValidationScheme, logger.With("component", "notifier"))
	m := rules.NewManager(&rules.ManagerOptions{
		Appendable:      st,
		Queryable:       st,
		QueryFunc:       rules.EngineQueryFunc(engine, st),
		NotifyFunc:      rules.SendAlerts(n, externalURL.String()),
		Context:         context.Background(),
		ExternalURL:     externalURL,
		Registerer:      reg,
		Logger:          logger.With("component", "rule manager"),
		OutageTolerance: time.Duration(cfg.OutageTolerance),
		ForGracePeriod:  time.Duration(cfg.ForGracePeriod),
		ResendDelay:     time.Duration(cfg.ResendDelay),
	})
	return &Rules{manager: m, notifier: n, discovery: d, cancelSD: cancel, externalURL: externalURL}, nil
}

// Manager exposes the rule manager to the HTTP API.
func (r *Rules) Manager() *rules.Manager { return r.manager }

// Notifier exposes the notifier to the HTTP API (alertmanagers).
func (r *Rules) Notifier() *notifier.Manager { return r.notifier }

// ApplyNotifierConfig reloads the notifier (external labels, alert relabelling).
func (r *Rules) ApplyNotifierConfig(cfg *promconfig.Config) error { return r.notifier.ApplyConfig(cfg) }

// ApplyDiscoveryConfig reloads Alertmanager discovery; after ApplyNotifierConfig.
func (r *Rules) ApplyDiscoveryConfig(cfg *promconfig.Config) error {
	c := make(map[string]discovery.Configs)
	for k, v := range cfg.AlertingConfig.AlertmanagerConfigs.ToMap() {
		c[k] = v.ServiceDiscoveryConfigs
	}
	return r.discovery.ApplyConfig(c)
}

// ApplyRulesConfig loads the rule files of cfg.
func (r *Rules) ApplyRulesConfig(cfg *promconfig.Config) error {
	files, err := config.RuleFiles(cfg)
	if err != nil {
		return err
	}
	return r.manager.Update(time.Duration(cfg.GlobalConfig.EvaluationInterval), files,
		cfg.GlobalConfig.ExternalLabels, r.externalURL.String(), nil)
}

// Run evaluates rules and delivers alerts until ctx ends.
func (r *Rules) Run(ctx context.Context) error {
	go func() { _ = r.discovery.Run() }()
	go r.notifier.Run(r.discovery.SyncCh())
	go r.manager.Run()
	<-ctx.Done()
	r.manager.Stop()
	r.notifier.Stop()
	r.cancelSD()
	return nil
}
