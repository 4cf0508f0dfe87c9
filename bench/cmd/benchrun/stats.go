package main

import (
	"math"
	"sort"
)

// stat is the median, min and max of repeated measurements.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func summarize(xs []float64) stat {
	if len(xs) == 0 {
		return stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// figure is one line of the report: monstackd against a baseline.
type figure struct {
	Name      string  `json:"name"`
	Unit      string  `json:"unit"`
	Baseline  string  `json:"baseline"` // what "stock" is: the per-host stock set, or Prometheus alone
	Stock     stat    `json:"stock"`
	Monstackd stat    `json:"monstackd"`
	Ratio     float64 `json:"ratio"` // monstackd median / stock median
	Target    float64 `json:"target,omitempty"`
	Met       *bool   `json:"met,omitempty"`
}

func newFigure(name, unit, baseline string, stock, mon []float64, target float64) figure {
	f := figure{Name: name, Unit: unit, Baseline: baseline, Stock: summarize(stock), Monstackd: summarize(mon), Target: target}
	f.Ratio = f.Monstackd.Median / f.Stock.Median
	if target > 0 {
		met := f.Ratio <= target
		f.Met = &met
	}
	return f
}

// pair is a figure against the stock set and the same against Prometheus
// alone; a target of 0 means none.
func pair(name, unit string, stock, prom, mon []float64, targetStock, targetProm float64) []figure {
	return []figure{
		newFigure(name, unit, "stock set", stock, mon, targetStock),
		newFigure(name, unit, "Prometheus alone", prom, mon, targetProm),
	}
}
