// Package frontend is monstackd's query-frontend: Thanos' queryfrontend
// tripperware (split by interval, step alignment, downsampled retries,
// results cache, retries) in front of the query API, with the querier's
// handler as its downstream, called in-process: no socket, no HTTP hop.
package frontend

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	queryv1 "github.com/thanos-io/thanos/pkg/api/query"
	"github.com/thanos-io/thanos/pkg/queryfrontend"
	"github.com/thanos-io/thanos/pkg/tenancy"
	"github.com/weaveworks/common/user"
)

// APIPrefix is where the query API is mounted: the tripperware tells
// requests apart by their full path, and the querier's router sees paths
// without it.
const APIPrefix = "/api/v1"

// Options configure the frontend. Caches are Thanos response cache configs
// (IN-MEMORY, MEMCACHED, REDIS), nil for none.
type Options struct {
	AlignRangeWithStep bool
	// AutoDownsampling asks range queries that name no
	// max_source_resolution, at steps of autoMinStep and more, for "auto":
	// step/5, and downsampled data for what raw blocks no longer hold.
	AutoDownsampling bool
	// PartialResponse is the default of requests that name none.
	PartialResponse        bool
	QueryRange             Op
	Labels                 Op
	LabelsDefaultTimeRange time.Duration
	LogQueriesLongerThan   time.Duration
	QueryStats             bool
	MaxBodySize            int64
	// AnswerCacheSize bounds the encoded answers kept of requests the
	// results cache answered whole; 0 keeps none.
	AnswerCacheSize int64
}

// Op configures one tripperware.
type Op struct {
	SplitInterval       time.Duration
	MaxRetries          int
	MaxQueryParallelism int
	MaxFreshness        time.Duration
	Cache               []byte
}

// Frontend builds the query API's handler with the tripperware in front.
type Frontend struct {
	logger log.Logger
	reg    prometheus.Registerer
	cfg    queryfrontend.Config
	// tripperware registers its metrics when applied: Wrap applies it once.
	tripperware      func(http.RoundTripper) http.RoundTripper
	autoDownsampling bool
	align            bool
	split            time.Duration
	labelsSplit      time.Duration
	answerCacheSize  int64
	// decode parses a request as the tripperware will, by operation.
	decode map[string]decoder
}

// decoder parses a request as the tripperware will.
type decoder func(*http.Request) (request, error)

// request is what is read of a parsed request: its range, in ms.
type request interface {
	GetStart() int64
	GetEnd() int64
	GetStep() int64
}

// autoMinStep is the shortest step at which "auto" (step/5) reaches the
// first downsampled resolution, 5m: below it, auto reads raw data.
const autoMinStep = 25 * time.Minute

// alloc returns a new T for a field whose type lives in a Thanos internal
// package and cannot be named here (DESIGN.md §3.8).
func alloc[T any](_ *T) *T { return new(T) }

// New checks the options and builds the tripperware. reg must be the
// frontend's own registry.
func New(logger log.Logger, reg prometheus.Registerer, opts Options) (*Frontend, error) {
	cfg := queryfrontend.Config{
		// Validate wants one; nothing dials it.
		DownstreamURL:  "in-process",
		TenantHeader:   tenancy.DefaultTenantHeader,
		DefaultTenant:  tenancy.DefaultTenant,
		ForwardHeaders: []string{tenancy.DefaultTenantHeader},
	}
	cfg.CortexHandlerConfig = alloc(cfg.CortexHandlerConfig)
	cfg.CortexHandlerConfig.LogQueriesLongerThan = opts.LogQueriesLongerThan
	cfg.CortexHandlerConfig.MaxBodySize = opts.MaxBodySize
	cfg.CortexHandlerConfig.QueryStatsEnabled = opts.QueryStats

	cfg.QueryRangeConfig = queryfrontend.QueryRangeConfig{
		PartialResponseStrategy: opts.PartialResponse,
		AlignRangeWithStep:      opts.AlignRangeWithStep,
		RequestDownsampled:      true,
		SplitQueriesByInterval:  opts.QueryRange.SplitInterval,
		MaxRetries:              opts.QueryRange.MaxRetries,
	}
	cfg.QueryRangeConfig.Limits = alloc(cfg.QueryRangeConfig.Limits)
	cfg.QueryRangeConfig.Limits.MaxQueryParallelism = opts.QueryRange.MaxQueryParallelism
	cfg.QueryRangeConfig.Limits.MaxCacheFreshness = model.Duration(opts.QueryRange.MaxFreshness)
	cfg.LabelsConfig = queryfrontend.LabelsConfig{
		PartialResponseStrategy: opts.PartialResponse,
		DefaultTimeRange:        opts.LabelsDefaultTimeRange,
		SplitQueriesByInterval:  opts.Labels.SplitInterval,
		MaxRetries:              opts.Labels.MaxRetries,
	}
	cfg.LabelsConfig.Limits = alloc(cfg.LabelsConfig.Limits)
	cfg.LabelsConfig.Limits.MaxQueryParallelism = opts.Labels.MaxQueryParallelism
	cfg.LabelsConfig.Limits.MaxCacheFreshness = model.Duration(opts.Labels.MaxFreshness)
	if opts.QueryRange.Cache != nil {
		cc, err := queryfrontend.NewCacheConfig(logger, opts.QueryRange.Cache)
		if err != nil {
			return nil, fmt.Errorf("query range results cache: %w", err)
		}
		cfg.QueryRangeConfig.ResultsCacheConfig = alloc(cfg.QueryRangeConfig.ResultsCacheConfig)
		cfg.QueryRangeConfig.ResultsCacheConfig.CacheConfig = *cc
		cfg.QueryRangeConfig.ResultsCacheConfig.CacheQueryableSamplesStats = opts.QueryStats
	}
	if opts.Labels.Cache != nil {
		cc, err := queryfrontend.NewCacheConfig(logger, opts.Labels.Cache)
		if err != nil {
			return nil, fmt.Errorf("labels results cache: %w", err)
		}
		cfg.LabelsConfig.ResultsCacheConfig = alloc(cfg.LabelsConfig.ResultsCacheConfig)
		cfg.LabelsConfig.ResultsCacheConfig.CacheConfig = *cc
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tripperware, err := queryfrontend.NewTripperware(cfg, reg, logger)
	if err != nil {
		return nil, err
	}

	rangeCodec := queryfrontend.NewThanosQueryRangeCodec(opts.PartialResponse)
	labelsCodec := queryfrontend.NewThanosLabelsCodec(opts.PartialResponse, opts.LabelsDefaultTimeRange)
	decodeLabels := func(r *http.Request) (request, error) {
		return labelsCodec.DecodeRequest(r.Context(), r, nil)
	}
	return &Frontend{
		logger:           logger,
		reg:              reg,
		cfg:              cfg,
		tripperware:      tripperware,
		autoDownsampling: opts.AutoDownsampling,
		align:            opts.AlignRangeWithStep,
		split:            opts.QueryRange.SplitInterval,
		labelsSplit:      opts.Labels.SplitInterval,
		answerCacheSize:  opts.AnswerCacheSize,
		decode: map[string]decoder{
			opRange: func(r *http.Request) (request, error) {
				return rangeCodec.DecodeRequest(r.Context(), r, nil)
			},
			opLabels:      decodeLabels,
			opLabelValues: decodeLabels,
			opSeries:      decodeLabels,
		},
	}, nil
}

// Wrap returns the query API served through the frontend; downstream is
// the querier's handler, paths relative to APIPrefix. Call it once: the
// tripperware and handler register their metrics.
func (f *Frontend) Wrap(downstream http.Handler) http.Handler {
	h := &handler{
		Frontend:   f,
		downstream: downstream,
		answers:    newAnswers(f.reg, f.answerCacheSize),
		calls: promauto.With(f.reg).NewCounterVec(prometheus.CounterOpts{
			Name: "monstackd_query_frontend_downstream_requests_total",
			Help: "Requests the query-frontend passed to the in-process querier, by operation.",
		}, []string{"op"}),
	}
	for _, op := range []string{opRange, opLabels, opLabelValues, opSeries, opOther} {
		h.calls.WithLabelValues(op)
	}
	h.frontend = queryfrontend.NewHandler(f.cfg, f.tripperware(roundTripperFunc(h.roundTrip)), f.logger, f.reg)
	return h
}

// handler serves the query API through the frontend, with its settings.
type handler struct {
	*Frontend
	downstream http.Handler
	frontend   http.Handler
	answers    *answers
	calls      *prometheus.CounterVec
}

// downstreamCalls counts a request's calls to the querier, in its context.
type downstreamCalls struct{}

// Operations, as the tripperware tells them apart.
const (
	opRange       = "query_range"
	opLabels      = "label_names"
	opLabelValues = "label_values"
	opSeries      = "series"
	opOther       = "other"
)

// operation is the tripperware's operation for path (relative to
// APIPrefix), or opOther for what it passes through.
func operation(method, path string) string {
	if method != http.MethodGet && method != http.MethodPost {
		return opOther
	}
	switch {
	case path == "/query_range":
		return opRange
	case path == "/labels":
		return opLabels
	case path == "/series":
		return opSeries
	case strings.HasPrefix(path, "/label/") && strings.HasSuffix(path, "/values"):
		return opLabelValues
	}
	return opOther
}

// ServeHTTP serves a query API request, its path relative to APIPrefix.
// Range queries, labels, label values and series go through the
// tripperware; the rest (instant queries: nothing to split or cache) and
// requests the tripperware cannot parse go to the querier, which answers
// the latter with its own error, as without the frontend.
func (f *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := operation(r.Method, r.URL.Path)
	if op == opOther {
		f.downstream.ServeHTTP(w, r)
		return
	}
	// The form is parsed once, here; the querier's handler and the
	// frontend's query log read it as parsed.
	if err := r.ParseForm(); err != nil {
		f.downstream.ServeHTTP(w, r)
		return
	}
	// The codecs tell labels from series by the full path.
	full := *r.URL
	full.Path = APIPrefix + r.URL.Path
	dr := *r
	dr.URL = &full
	req, err := f.decode[op](&dr)
	if err != nil || req == nil {
		f.downstream.ServeHTTP(w, r)
		return
	}
	// Long ranges read downsampled data, and the frontend asks again at 5m
	// and 1h for what raw blocks no longer hold. Shorter steps are asked as
	// given: auto would read raw data there anyway.
	if op == opRange && f.autoDownsampling && !r.Form.Has(queryv1.MaxSourceResolutionParam) && req.GetStep() >= autoMinStep.Milliseconds() {
		r.Form.Set(queryv1.MaxSourceResolutionParam, "auto")
	}
	if f.direct(op, r, req) {
		f.calls.WithLabelValues(op).Inc()
		f.downstream.ServeHTTP(w, r)
		return
	}
	tnt := tenant(r)
	key := f.answers.key(r, tnt)
	if f.answers.get(w, key) {
		return
	}
	calls := new(atomic.Int64)
	r2 := r.Clone(context.WithValue(user.InjectOrgID(r.Context(), tnt), downstreamCalls{}, calls))
	r2.URL.Path = APIPrefix + r.URL.Path
	r2.URL.RawPath = ""
	if key == "" {
		f.frontend.ServeHTTP(w, r2)
		return
	}
	tw := &teeWriter{ResponseWriter: w}
	f.frontend.ServeHTTP(tw, r2)
	if tw.code == http.StatusOK && calls.Load() == 0 {
		f.answers.put(key, tw.Header().Get("Content-Type"), tw.body.Bytes())
	}
}

// direct reports whether a request goes to the querier as it is: one that
// must not be cached and would not be split, where the tripperware would
// only decode the querier's answer and encode it again. A range query is
// aligned to its step first; a range query with "auto" is not direct, since
// its middleware may ask again at 5m and 1h, nor are labels and series
// requests that name no range, which the frontend gives its default one.
func (f *handler) direct(op string, r *http.Request, req request) bool {
	if !noStore(r) {
		return false
	}
	start, end, split := req.GetStart(), req.GetEnd(), f.split
	if op != opRange {
		split = f.labelsSplit
		if r.Form.Get("start") == "" || r.Form.Get("end") == "" {
			return false
		}
	} else if r.Form.Get(queryv1.MaxSourceResolutionParam) == "auto" {
		return false
	}
	if op == opRange && f.align {
		step := req.GetStep()
		start, end = start/step*step, end/step*step
	}
	if s := split.Milliseconds(); s > 0 && start/s != end/s {
		return false
	}
	if op == opRange {
		seconds := func(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64) }
		r.Form.Set("start", seconds(start))
		r.Form.Set("end", seconds(end))
	}
	return true
}

// tenant is the request's tenant, as stock query-frontend reads it.
func tenant(r *http.Request) string {
	if t := r.Header.Get(tenancy.DefaultTenantHeader); t != "" {
		return t
	}
	return tenancy.DefaultTenant
}

// roundTrip is the tripperware's downstream: the querier's handler, called
// in-process. The querier marks an answer with warnings (a store or peer
// missing: partial) "Cache-Control: no-store", which the results cache
// honours: it never keeps an answer that a returning peer would complete.
func (f *handler) roundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, APIPrefix)
	r2.URL.RawPath = ""
	f.calls.WithLabelValues(operation(r2.Method, r2.URL.Path)).Inc()
	if c, ok := r.Context().Value(downstreamCalls{}).(*atomic.Int64); ok {
		c.Add(1)
	}
	rec := newRecorder()
	f.downstream.ServeHTTP(rec, r2)
	return rec.response(r), nil
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// CheckCache parses a Thanos response cache config as New does.
func CheckCache(content []byte) error {
	_, err := queryfrontend.NewCacheConfig(log.NewNopLogger(), content)
	return err
}
