package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// querySpec is one entry of bench/queries.yaml.
type querySpec struct {
	Name   string `yaml:"name"`
	Type   string `yaml:"type"` // instant, range, label_values, series
	Query  string `yaml:"query"`
	Label  string `yaml:"label"`
	Match  string `yaml:"match"`
	Range  string `yaml:"range"`
	Step   string `yaml:"step"`
	Window string `yaml:"window"`

	rng, step, window time.Duration
}

func loadQueries(file string) ([]querySpec, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var f struct {
		Queries []querySpec `yaml:"queries"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for i := range f.Queries {
		q := &f.Queries[i]
		for _, d := range []struct {
			s   string
			out *time.Duration
		}{{q.Range, &q.rng}, {q.Step, &q.step}, {q.Window, &q.window}} {
			if d.s == "" {
				continue
			}
			if *d.out, err = time.ParseDuration(d.s); err != nil {
				return nil, fmt.Errorf("%s: query %s: %w", file, q.Name, err)
			}
		}
		switch q.Type {
		case "instant", "label_values", "series":
		case "range":
			if q.rng <= 0 || q.step <= 0 {
				return nil, fmt.Errorf("%s: query %s: range and step are required", file, q.Name)
			}
		default:
			return nil, fmt.Errorf("%s: query %s: unknown type %q", file, q.Name, q.Type)
		}
	}
	return f.Queries, nil
}

// span is how much data before "at" the query reads, for deciding whether
// two setups that started at different times can be compared: its range and
// rate window, plus one scrape interval for the latest sample.
func (q querySpec) span(interval time.Duration) time.Duration {
	switch q.Type {
	case "range":
		return q.rng + q.window + interval
	case "instant":
		return q.window + interval
	default:
		// Label values and series: the series sets match from the first
		// scrape both setups made.
		return interval
	}
}

func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// url builds the request for the setup whose API is at base, evaluated at at.
// Range queries end on a multiple of the step so a frontend's step alignment
// changes nothing.
func (q querySpec) url(base string, at time.Time) string {
	v := url.Values{}
	var path string
	switch q.Type {
	case "instant":
		path = "/api/v1/query"
		v.Set("query", q.Query)
		v.Set("time", promTime(at))
	case "range":
		path = "/api/v1/query_range"
		end := at.Truncate(q.step)
		v.Set("query", q.Query)
		v.Set("start", promTime(end.Add(-q.rng)))
		v.Set("end", promTime(end))
		v.Set("step", strconv.FormatFloat(q.step.Seconds(), 'f', -1, 64))
	case "label_values":
		path = "/api/v1/label/" + q.Label + "/values"
		v.Set("start", promTime(at.Add(-time.Hour)))
		v.Set("end", promTime(at))
	case "series":
		path = "/api/v1/series"
		v.Set("match[]", q.Match)
		v.Set("start", promTime(at.Add(-10*time.Minute)))
		v.Set("end", promTime(at))
	}
	return base + path + "?" + v.Encode()
}

var client = &http.Client{Timeout: 2 * time.Minute}

// run executes the query and returns its latency and the response data.
func (q querySpec) run(base string, at time.Time) (time.Duration, json.RawMessage, error) {
	took, data, _, err := q.get(client, q.url(base, at))
	return took, data, err
}

// runCached is run with the query-frontends' results caches allowed to
// answer.
func (q querySpec) runCached(base string, at time.Time) (time.Duration, json.RawMessage, error) {
	took, data, _, err := q.fetch(client, q.url(base, at), true)
	return took, data, err
}

// get requests u with c and returns the latency, the response data and its
// warnings (a partial response names the stores it missed there). A
// response without status "success" is an error. It asks query-frontends
// not to use their results caches ("Cache-Control: no-store", which stock
// and monstackd's honour): the figures are the query path's.
func (q querySpec) get(c *http.Client, u string) (time.Duration, json.RawMessage, []string, error) {
	return q.fetch(c, u, false)
}

func (q querySpec) fetch(c *http.Client, u string, cache bool) (time.Duration, json.RawMessage, []string, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	if !cache {
		req.Header.Set("Cache-Control", "no-store")
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, nil, nil, err
	}
	var r struct {
		Status   string          `json:"status"`
		Error    string          `json:"error"`
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, nil, nil, fmt.Errorf("%s: status %d: %.200s", q.Name, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return 0, nil, nil, fmt.Errorf("%s: %s", q.Name, r.Error)
	}
	return took, r.Data, r.Warnings, nil
}

// result is a query answer reduced to what must match between setups.
type result struct {
	series map[string][][2]float64 // label set → (t, v) points
	values []string                // label values or series
}

func parseResult(q querySpec, data json.RawMessage) (result, error) {
	r := result{series: map[string][][2]float64{}}
	switch q.Type {
	case "label_values":
		if err := json.Unmarshal(data, &r.values); err != nil {
			return r, err
		}
		sort.Strings(r.values)
		return r, nil
	case "series":
		var ss []map[string]string
		if err := json.Unmarshal(data, &ss); err != nil {
			return r, err
		}
		for _, s := range ss {
			r.values = append(r.values, labelKey(s))
		}
		sort.Strings(r.values)
		return r, nil
	}
	var d struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
			Values [][]any           `json:"values"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return r, err
	}
	for _, s := range d.Result {
		pts := s.Values
		if s.Value != nil {
			pts = [][]any{s.Value}
		}
		var out [][2]float64
		for _, p := range pts {
			ts, _ := p[0].(float64)
			vs, _ := p[1].(string)
			v, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				return r, fmt.Errorf("value %v: %w", p[1], err)
			}
			out = append(out, [2]float64{ts, v})
		}
		r.series[labelKey(s.Metric)] = out
	}
	return r, nil
}

func labelKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// relTolerance allows for the few milliseconds between the two setups'
// scrapes of the same tick, which move rate() extrapolation slightly: up
// to 0.15% seen under load (range10m_rate_counters, two quick runs on
// 2026-11-28), so 0.1% failed runs whose answers agreed.
const relTolerance = 3e-3

// diff describes the first difference between two results, "" if they match.
func diff(a, b result) string {
	if len(a.values) != len(b.values) {
		return fmt.Sprintf("%d values vs %d", len(a.values), len(b.values))
	}
	for i := range a.values {
		if a.values[i] != b.values[i] {
			return fmt.Sprintf("value %q vs %q", a.values[i], b.values[i])
		}
	}
	if len(a.series) != len(b.series) {
		return fmt.Sprintf("%d series vs %d", len(a.series), len(b.series))
	}
	for k, pa := range a.series {
		pb, ok := b.series[k]
		if !ok {
			return fmt.Sprintf("series %s missing from the second", k)
		}
		if len(pa) != len(pb) {
			return fmt.Sprintf("series %s: %d points vs %d", k, len(pa), len(pb))
		}
		for i := range pa {
			if pa[i][0] != pb[i][0] {
				return fmt.Sprintf("series %s: point %d at %v vs %v", k, i, pa[i][0], pb[i][0])
			}
			va, vb := pa[i][1], pb[i][1]
			if va == vb || (math.IsNaN(va) && math.IsNaN(vb)) {
				continue
			}
			if math.Abs(va-vb) > relTolerance*math.Max(math.Abs(va), math.Abs(vb)) {
				return fmt.Sprintf("series %s at %v: %v vs %v", k, pa[i][0], va, vb)
			}
		}
	}
	return ""
}
