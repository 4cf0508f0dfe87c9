package querier

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	queryapi "github.com/thanos-io/thanos/pkg/api/query"
	"github.com/thanos-io/thanos/pkg/dedup"
	"github.com/thanos-io/thanos/pkg/store"
	"github.com/thanos-io/thanos/pkg/tenancy"

	"github.com/monstackd/monstackd/pkg/config"
)

// The querier's fixed settings, named after the stock `thanos query` flags
// they stand for. New builds with them and flagsMap reports them, so that
// /api/v1/status/flags cannot drift from what runs.
const (
	promqlEngine              = queryapi.PromqlEnginePrometheus // query.promql-engine
	promqlQueryMode           = queryapi.PromqlQueryModeLocal   // query.mode
	defaultRangeQueryStep     = time.Second                     // query.default-step
	defaultEvaluationInterval = time.Minute                     // query.default-evaluation-interval
	unhealthyEndpointTimeout  = 5 * time.Minute                 // store.unhealthy-timeout
	endpointInfoTimeout       = 5 * time.Second                 // endpoint.info-timeout
	// rule., target., metric-metadata., exemplar. and status.partial-response.
	nonQueryPartialResponse = true
	// query.enable-x-functions: enabling them rewrites parser.Functions,
	// which the embedded rules engine shares (DESIGN.md §3.12).
	extendedFunctions = false
	// query.disable-fallback: only matters with the Thanos engine.
	disableEngineFallback = false
)

// The buckets of the query telemetry histograms, stock defaults
// (query.telemetry.request-{duration-seconds,samples,series-seconds}-quantiles).
var (
	durationQuantiles = []float64{0.1, 0.25, 0.75, 1.25, 1.75, 2.5, 3, 5, 10}
	samplesQuantiles  = []float64{100, 1000, 10000, 100000, 1000000}
	seriesQuantiles   = []float64{10, 100, 1000, 10000, 100000}
)

// flagsMap is what /api/v1/status/flags serves: the flags a stock
// `thanos query` (v0.42.4) would show for the same settings, formatted as
// its kingpin values print them. The Thanos UI reads its defaults from it:
// without query.promql-engine every query from the graph page fails with
// "'undefined' bad engine" (DESIGN.md §3.17). Flags that have no
// counterpart in monstackd (addresses, logging, endpoint discovery) are
// left out rather than invented.
func flagsMap(cfg config.QueryConfig, storeResponseTimeout time.Duration) map[string]string {
	modelDur := func(d time.Duration) string { return model.Duration(d).String() }
	floats := func(fs []float64) string {
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = strconv.FormatFloat(f, 'g', -1, 64)
		}
		return strings.Join(out, ",")
	}
	return map[string]string{
		"query.promql-engine":                                string(promqlEngine),
		"query.mode":                                         string(promqlQueryMode),
		"query.default-step":                                 modelDur(defaultRangeQueryStep),
		"query.default-evaluation-interval":                  modelDur(defaultEvaluationInterval),
		"query.timeout":                                      modelDur(time.Duration(cfg.Timeout)),
		"query.lookback-delta":                               time.Duration(cfg.LookbackDelta).String(),
		"query.dynamic-lookback-delta":                       "false",
		"query.max-concurrent":                               strconv.Itoa(cfg.MaxConcurrent),
		"query.max-concurrent-select":                        strconv.Itoa(cfg.MaxConcurrentSelects),
		"query.replica-label":                                cfg.ReplicaLabel,
		"deduplication.func":                                 dedup.AlgorithmPenalty,
		"query.partial-response":                             strconv.FormatBool(cfg.PartialResponse),
		"rule.partial-response":                              strconv.FormatBool(nonQueryPartialResponse),
		"target.partial-response":                            strconv.FormatBool(nonQueryPartialResponse),
		"metric-metadata.partial-response":                   strconv.FormatBool(nonQueryPartialResponse),
		"exemplar.partial-response":                          strconv.FormatBool(nonQueryPartialResponse),
		"status.partial-response":                            strconv.FormatBool(nonQueryPartialResponse),
		"query.auto-downsampling":                            strconv.FormatBool(cfg.AutoDownsampling),
		"query.enable-x-functions":                           strconv.FormatBool(extendedFunctions),
		"query.disable-fallback":                             strconv.FormatBool(disableEngineFallback),
		"query.partition-label":                              "",
		"query.telemetry.request-duration-seconds-quantiles": floats(durationQuantiles),
		"query.telemetry.request-samples-quantiles":          floats(samplesQuantiles),
		"query.telemetry.request-series-seconds-quantiles":   floats(seriesQuantiles),
		"query.instant.default.max_source_resolution":        modelDur(0),
		"query.metadata.default-time-range":                  time.Duration(0).String(),
		"query.active-query-path":                            "",
		"query.tenant-header":                                tenancy.DefaultTenantHeader,
		"query.default-tenant-id":                            tenancy.DefaultTenant,
		"query.tenant-label-name":                            tenancy.DefaultTenantLabel,
		"query.tenant-certificate-field":                     "",
		"query.enforce-tenancy":                              "false",
		"store.response-timeout":                             modelDur(storeResponseTimeout),
		"store.unhealthy-timeout":                            modelDur(unhealthyEndpointTimeout),
		"endpoint.info-timeout":                              modelDur(endpointInfoTimeout),
		"grpc.proxy-strategy":                                string(store.EagerRetrieval),
		"web.disable-cors":                                   "false",
	}
}
