// Copyright (c) The Thanos Authors.
// Licensed under the Apache License 2.0.

// Added by monstackd (third_party/_thanos/README.md): NewQueryFactory
// hard-codes MaxSamples to math.MaxInt32, so in one process with Prometheus
// a single query on the Thanos query API could take all memory.

package v1

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"

	"github.com/thanos-io/promql-engine/engine"
	"github.com/thanos-io/thanos/pkg/extprom"
)

// NewQueryFactoryWithOpts is NewQueryFactory with the engines' options given
// by the caller: sample limit, timeout, lookback, active query tracker.
func NewQueryFactoryWithOpts(reg *prometheus.Registry, opts engine.Opts, mode PromqlQueryMode, disableFallback bool) *QueryFactory {
	withReg := func(registry prometheus.Registerer) engine.Opts {
		o := opts
		o.EngineOpts.Reg = registry
		return o
	}
	promEngine := promql.NewEngine(withReg(extprom.WrapRegistererWith(
		map[string]string{
			"mode":   string(PromqlQueryModeLocal),
			"engine": string(PromqlEnginePrometheus)}, reg)).EngineOpts)
	thanosLocal := engine.New(withReg(extprom.WrapRegistererWith(
		map[string]string{
			"mode":   string(PromqlQueryModeLocal),
			"engine": string(PromqlEngineThanos)}, reg)))
	thanosDistributed := engine.NewDistributedEngine(withReg(extprom.WrapRegistererWith(
		map[string]string{
			"mode":   string(PromqlQueryModeDistributed),
			"engine": string(PromqlEngineThanos)}, reg)))
	return &QueryFactory{
		mode:              mode,
		prometheus:        promEngine,
		thanosLocal:       thanosLocal,
		thanosDistributed: thanosDistributed,
		disableFallback:   disableFallback,
	}
}
