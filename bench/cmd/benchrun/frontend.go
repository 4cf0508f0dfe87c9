package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"
)

// The frontend figures, at the end of the bucket phase: a dashboard of
// range queries over the bucket's history through stock thanos
// query-frontend (results cache in memory) in front of the stock store
// path, and through monstackd's in-process frontend; and monstackd with its
// frontend against a monstackd without one, on the same bucket.

// frontendSetups are the processes the frontend figures add.
type frontendSetups struct {
	stock *setup // thanos query-frontend in front of the bucket phase's thanos query
	noFE  *setup // monstackd with the bucket and query_frontend.enabled: false
}

// stockFrontendCache is the stock frontend's results cache: in memory, as
// monstackd's default.
const stockFrontendCache = "type: IN-MEMORY\nconfig:\n  max_size: 128MB\n"

func newFrontendSetups(b bins, dir, bucketYAML, promYAML, queryAPI string) (*frontendSetups, error) {
	a, err := addrs(1)
	if err != nil {
		return nil, err
	}
	stockDir := filepath.Join(dir, "stock")
	cache := filepath.Join(stockDir, "frontend-cache.yml")
	if err := os.WriteFile(cache, []byte(stockFrontendCache), 0o644); err != nil {
		return nil, err
	}
	fe := &proc{
		name: "thanos query-frontend", bin: b.thanos, logFile: filepath.Join(stockDir, "frontend.log"),
		readyURL: "http://" + a[0] + "/-/ready",
		args: []string{"query-frontend", "--http-address=" + a[0], "--query-frontend.downstream-url=" + queryAPI,
			"--query-range.response-cache-config-file=" + cache, "--labels.response-cache-config-file=" + cache},
	}
	fs := &frontendSetups{stock: &setup{name: "stock query-frontend", procs: []*proc{fe}, api: "http://" + a[0], tsdb: fe}}
	if fs.noFE, err = bucketMonstackd(b, filepath.Join(dir, "monstackd-nofe"), "monstackd without frontend",
		"prometheus:\n  config_file: "+promYAML+"\nbucket:\n  config_file: "+bucketYAML+"\nquery_frontend:\n  enabled: false\n"); err != nil {
		return nil, err
	}
	return fs, nil
}

// runFrontendFigures starts the stock frontend and a monstackd without
// one beside the bucket phase's setups, and adds the dashboard figures.
func runFrontendFigures(r *report, sc scale, dashboard []querySpec, b bins, dir, bucketYAML, promYAML string, bs *bucketSetups, blocks int, at time.Time) error {
	fs, err := newFrontendSetups(b, dir, bucketYAML, promYAML, bs.stock.api)
	if err != nil {
		return err
	}
	defer stopSetups(fs.noFE, fs.stock)
	for _, s := range []*setup{fs.stock, fs.noFE} {
		if err := s.start(); err != nil {
			return err
		}
	}
	if err := waitLoaded([]*setup{fs.noFE}, blocks, at); err != nil {
		return err
	}
	stockFE, monFE, noFE := fs.stock, bs.mon, fs.noFE

	// The first pass fills both caches; answers must agree, cached or not.
	for _, q := range dashboard {
		for _, s := range []*setup{stockFE, monFE} {
			if _, _, err := q.runCached(s.api, at); err != nil {
				return fmt.Errorf("dashboard %s on %s: %w", q.Name, s.name, err)
			}
		}
	}
	log.Printf("frontend: %d dashboard refreshes of %d range queries, cached and uncached", sc.QueryRepetitions, len(dashboard))
	// A refresh runs the ten queries; a first load asks each at a step
	// no refresh asked before (one second longer per repetition): cache
	// misses, which the frontend answers and keeps.
	refresh := func(s *setup, cached bool, stepDelta time.Duration) (float64, error) {
		var total time.Duration
		for _, q := range dashboard {
			q.step += stepDelta
			run := q.run
			if cached {
				run = q.runCached
			}
			took, _, err := run(s.api, at)
			if err != nil {
				return 0, fmt.Errorf("dashboard %s on %s: %w", q.Name, s.name, err)
			}
			total += took
		}
		return float64(total.Microseconds()) / 1000, nil
	}
	cases := []struct {
		key       string
		s         *setup
		cached    bool
		firstLoad bool
	}{
		{"stock cached", stockFE, true, false}, {"monstackd cached", monFE, true, false},
		{"stock uncached", stockFE, false, false}, {"monstackd uncached", monFE, false, false},
		{"monstackd without frontend", noFE, false, false},
		{"stock first load", stockFE, true, true}, {"monstackd first load", monFE, true, true},
		{"monstackd without frontend first load", noFE, true, true},
	}
	lat := map[string][]float64{}
	for rep := 0; rep < sc.QueryRepetitions; rep++ {
		// Each repetition starts with the next case: none always goes first.
		for i := range cases {
			c := cases[(i+rep)%len(cases)]
			var delta time.Duration
			if c.firstLoad {
				delta = time.Duration(rep+1) * time.Second
			}
			ms, err := refresh(c.s, c.cached, delta)
			if err != nil {
				return err
			}
			lat[c.key] = append(lat[c.key], ms)
		}
	}
	r.Figures = append(r.Figures,
		newFigure("frontend: dashboard refresh (10 range queries), cached", "ms", "stock query-frontend", lat["stock cached"], lat["monstackd cached"], 0.5),
		newFigure("frontend: dashboard refresh (10 range queries), uncached", "ms", "stock query-frontend", lat["stock uncached"], lat["monstackd uncached"], 0),
		newFigure("frontend: dashboard refresh (10 range queries), uncached", "ms", "monstackd without frontend", lat["monstackd without frontend"], lat["monstackd uncached"], 1.05),
		newFigure("frontend: dashboard first load (10 range queries, cache misses)", "ms", "stock query-frontend", lat["stock first load"], lat["monstackd first load"], 0),
		newFigure("frontend: dashboard first load (10 range queries, cache misses)", "ms", "monstackd without frontend", lat["monstackd without frontend first load"], lat["monstackd first load"], 0))

	for _, q := range dashboard {
		for _, c := range [][2]*setup{{stockFE, monFE}, {noFE, monFE}} {
			r.Compared++
			if d := compareBy(querySpec.runCached, q, c[0], c[1], at); d != "" {
				r.Mismatches = append(r.Mismatches, fmt.Sprintf("frontend %s (%s vs %s): %s", q.Name, c[0].name, c[1].name, d))
			}
		}
	}
	return nil
}
