package supervisor

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/monstackd/monstackd/pkg/components/frontend"
	"github.com/monstackd/monstackd/pkg/config"
)

// initQueryFrontend builds the query-frontend; the web module puts it in
// front of the query API. A results cache it cannot reach at start (Redis
// dials when it is built) is no reason to stay down: the frontend then
// caches in memory until a restart, and /-/ready says so.
func (c *components) initQueryFrontend() (parts, error) {
	opts, err := frontendOptions(c.cfg)
	if err != nil {
		return parts{}, err
	}
	logger := c.logger(QueryFrontend)
	// Gathered only once built: a failed build leaves metrics behind.
	reg := prometheus.NewRegistry()
	f, err := frontend.New(logger, reg, opts)
	if err != nil && (!inMemory(opts.QueryRange.Cache) || !inMemory(opts.Labels.Cache)) {
		err = fmt.Errorf("results cache unavailable, caching in memory until a restart: %w", err)
		level.Warn(logger).Log("msg", "results cache unavailable", "err", err)
		c.d.readiness.SetDegraded(QueryFrontend, err)
		for _, o := range []struct {
			op   *frontend.Op
			size string
		}{{&opts.QueryRange, config.DefaultRangeCacheSize}, {&opts.Labels, config.DefaultLabelsCacheSize}} {
			if !inMemory(o.op.Cache) {
				o.op.Cache = inMemoryCache(o.size)
			}
		}
		reg = prometheus.NewRegistry()
		f, err = frontend.New(logger, reg, opts)
	}
	if err != nil {
		return parts{}, fmt.Errorf("query_frontend: %w", err)
	}
	c.d.gather(reg)
	c.frontend = f
	return parts{}, nil
}

// inMemory reports whether a results cache config is none or IN-MEMORY.
func inMemory(cache []byte) bool {
	var c struct {
		Type string `yaml:"type"`
	}
	return cache == nil || (yaml.Unmarshal(cache, &c) == nil && strings.EqualFold(c.Type, "IN-MEMORY"))
}

// inMemoryCache is an IN-MEMORY results cache config of size.
func inMemoryCache(size string) []byte {
	return []byte("type: IN-MEMORY\nconfig:\n  max_size: " + size + "\n")
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
