package supervisor

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/monstackd/monstackd/pkg/components/frontend"
	"github.com/monstackd/monstackd/pkg/config"
)

// initQueryFrontend builds the query-frontend; the web module puts it in
// front of the query API.
func (c *components) initQueryFrontend() (parts, error) {
	opts, err := frontendOptions(c.cfg)
	if err != nil {
		return parts{}, err
	}
	f, err := frontend.New(c.logger(QueryFrontend), c.registry(), opts)
	if err != nil {
		return parts{}, fmt.Errorf("query_frontend: %w", err)
	}
	c.frontend = f
	return parts{}, nil
}

// frontendOptions reads monstack.yml's query_frontend section and the
// results cache configs it points to.
func frontendOptions(cfg *config.Config) (frontend.Options, error) {
	fc := cfg.Frontend
	op := func(name string, oc config.FrontendOpConfig, defaultSize string) (frontend.Op, error) {
		out := frontend.Op{
			SplitInterval:       time.Duration(oc.SplitInterval),
			MaxRetries:          oc.MaxRetries,
			MaxQueryParallelism: oc.MaxQueryParallelism,
			MaxFreshness:        time.Duration(oc.ResultsCache.MaxFreshness),
		}
		if !oc.ResultsCache.Enabled {
			return out, nil
		}
		content, where, err := cfg.CacheYAML(name+".results_cache", oc.ResultsCache, defaultSize)
		if err == nil {
			err = frontend.CheckCache(content)
		}
		if err != nil {
			return out, fmt.Errorf("%s%w", where, err)
		}
		out.Cache = content
		return out, nil
	}
	rng, rerr := op("query_frontend.query_range", fc.QueryRange, config.DefaultRangeCacheSize)
	lbl, lerr := op("query_frontend.labels", fc.Labels, config.DefaultLabelsCacheSize)
	maxBody := int64(cfg.Query.MaxRequestBody)
	if maxBody == 0 {
		maxBody = math.MaxInt64
	}
	return frontend.Options{
		AlignRangeWithStep:     fc.AlignRangeWithStep,
		AutoDownsampling:       cfg.Query.AutoDownsampling,
		PartialResponse:        cfg.Query.PartialResponse,
		QueryRange:             rng,
		Labels:                 lbl,
		LabelsDefaultTimeRange: time.Duration(fc.LabelsDefaultTimeRange),
		LogQueriesLongerThan:   time.Duration(fc.LogQueriesLongerThan),
		QueryStats:             fc.QueryStats,
		MaxBodySize:            maxBody,
		AnswerCacheSize:        int64(fc.AnswerCacheSize),
	}, errors.Join(rerr, lerr)
}

// CheckFrontend reports, for `check config`, a results cache config the
// query-frontend cannot read.
func CheckFrontend(cfg *config.Config) []error {
	if !cfg.Frontend.Enabled {
		return nil
	}
	_, err := frontendOptions(cfg)
	return config.Errors(err)
}
