package frontend

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeQuerier answers range queries with one series per request whose
// labels say what the querier was asked (dedup, lookback_delta, replica
// labels, resolution, partial response) and whose samples are at every
// step, so that an answer given for other parameters is visible.
type fakeQuerier struct {
	mu    sync.Mutex
	calls []url.Values // form of each call, by path
	paths []string
	// warn adds a warning to the answers, as a partial response has.
	warn bool
	// series is how many series a range query answers; 0 is one.
	series int
}

func (q *fakeQuerier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q.mu.Lock()
	q.calls = append(q.calls, r.Form)
	q.paths = append(q.paths, r.URL.Path)
	warn := q.warn
	q.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	resp := map[string]any{"status": "success"}
	if warn {
		// As Thanos' API answers with warnings other than PromQL's.
		resp["warnings"] = []string{"peer b:10901 is unreachable: answered without it"}
		w.Header().Set("Cache-Control", "no-store")
	}
	switch r.URL.Path {
	case "/query_range":
		start, err1 := strconv.ParseFloat(r.Form.Get("start"), 64)
		end, err2 := strconv.ParseFloat(r.Form.Get("end"), 64)
		step, err3 := strconv.ParseFloat(r.Form.Get("step"), 64)
		if err1 != nil || err2 != nil || err3 != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "bad_data", "error": "querier: invalid parameter"})
			return
		}
		var values [][]any
		for t := start; t <= end; t += step {
			values = append(values, []any{t, strconv.FormatFloat(t, 'f', -1, 64)})
		}
		metric := map[string]string{
			"__name__":      "up",
			"dedup":         r.Form.Get("dedup"),
			"lookback":      r.Form.Get("lookback_delta"),
			"replicas":      strings.Join(r.Form["replicaLabels[]"], ","),
			"resolution":    r.Form.Get("max_source_resolution"),
			"partial":       r.Form.Get("partial_response"),
			"query":         r.Form.Get("query"),
			"engine_called": "true",
		}
		result := []any{map[string]any{"metric": metric, "values": values}}
		for i := 1; i < q.series; i++ {
			m := map[string]string{"__name__": "up", "pod": "pod-" + strconv.Itoa(i), "service": "svc-1"}
			result = append(result, map[string]any{"metric": m, "values": values})
		}
		resp["data"] = map[string]any{"resultType": "matrix", "result": result}
	case "/series":
		metric := map[string]string{"__name__": "up", "job": "node"}
		if !slicesContain(r.Form["replicaLabels[]"], "replica") {
			metric["replica"] = "a"
		}
		resp["data"] = []any{metric}
	case "/labels":
		resp["data"] = []string{"__name__", "job"}
	default:
		resp["data"] = map[string]any{"resultType": "vector", "result": []any{}}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func slicesContain(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (q *fakeQuerier) reset() (calls []url.Values, paths []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	calls, paths = q.calls, q.paths
	q.calls, q.paths = nil, nil
	return calls, paths
}

func testOptions() Options {
	cache := []byte("type: IN-MEMORY\nconfig:\n  max_size: 16MB\n")
	op := Op{SplitInterval: 24 * time.Hour, MaxRetries: 5, MaxQueryParallelism: 14, MaxFreshness: time.Minute, Cache: cache}
	return Options{
		AlignRangeWithStep:     true,
		PartialResponse:        true,
		QueryRange:             op,
		Labels:                 op,
		LabelsDefaultTimeRange: 24 * time.Hour,
		MaxBodySize:            1 << 20,
		AnswerCacheSize:        1 << 20,
	}
}

func newTestFrontend(t *testing.T, opts Options) (*fakeQuerier, *httptest.Server) {
	t.Helper()
	q, srv, _ := newTestFrontendReg(t, opts)
	return q, srv
}

func newTestFrontendReg(t *testing.T, opts Options) (*fakeQuerier, *httptest.Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	f, err := New(log.NewNopLogger(), reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	q := &fakeQuerier{}
	srv := httptest.NewServer(http.StripPrefix(APIPrefix, f.Wrap(q)))
	t.Cleanup(srv.Close)
	return q, srv, reg
}

// get requests path?params and returns the body; the status must be 200.
func get(t *testing.T, srv *httptest.Server, path string, params url.Values) string {
	t.Helper()
	resp, err := http.Get(srv.URL + APIPrefix + path + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, body)
	}
	return string(body)
}

// day is a day boundary ten days ago: long cached, and the splits of a
// day-aligned range are whole days.
var day = time.Now().Add(-10 * 24 * time.Hour).Truncate(24 * time.Hour)

func rangeParams(start time.Time, d time.Duration, extra ...string) url.Values {
	v := url.Values{
		"query": {"up"},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(start.Add(d).Unix(), 10)},
		"step":  {"3600"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Add(extra[i], extra[i+1])
	}
	return v
}

func TestThreeDaysSplitIntoDays(t *testing.T) {
	q, srv := newTestFrontend(t, testOptions())
	body := get(t, srv, "/query_range", rangeParams(day, 3*24*time.Hour-time.Hour))

	calls, paths := q.reset()
	if len(calls) != 3 {
		t.Fatalf("downstream calls = %d (%v), want 3, one per day", len(calls), paths)
	}
	for i, c := range calls {
		if paths[i] != "/query_range" {
			t.Errorf("call %d: path %q, want /query_range (relative to %s)", i, paths[i], APIPrefix)
		}
		start, _ := strconv.ParseFloat(c.Get("start"), 64)
		end, _ := strconv.ParseFloat(c.Get("end"), 64)
		if s, e := time.Unix(int64(start), 0), time.Unix(int64(end), 0); s.Truncate(24*time.Hour) != e.Truncate(24*time.Hour) {
			t.Errorf("call %d spans %s to %s: more than one day", i, s.UTC(), e.UTC())
		}
	}
	// The answer is the three days' answers merged: every step once.
	if n := strings.Count(body, `"1`); n < 71 {
		t.Errorf("merged answer has %d points, want 72:\n%.300s", n, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Data.Result) != 1 {
		t.Fatalf("answer %v: %.300s", err, body)
	}
	if n := len(r.Data.Result[0].Values); n != 72 {
		t.Errorf("merged answer has %d points, want 72 (one per hour of 3 days)", n)
	}
}

func TestRepeatedQueryFromCache(t *testing.T) {
	q, srv := newTestFrontend(t, testOptions())
	params := rangeParams(day, 12*time.Hour)
	first := get(t, srv, "/query_range", params)
	if calls, _ := q.reset(); len(calls) != 1 {
		t.Fatalf("first query: %d downstream calls, want 1", len(calls))
	}
	second := get(t, srv, "/query_range", params)
	if calls, _ := q.reset(); len(calls) != 0 {
		t.Errorf("repeated query: %d downstream calls, want 0 (cached)", len(calls))
	}
	if first != second {
		t.Errorf("cached answer differs:\n%s\n%s", first, second)
	}
}

// TestCacheKeepsParametersApart: a parameter that changes the answer is
// part of the key, both ways round.
func TestCacheKeepsParametersApart(t *testing.T) {
	for _, tc := range []struct {
		param string
		a, b  []string // extra params of the two requests
		label string   // the fake's label that shows the parameter
	}{
		{"dedup", []string{"dedup", "true"}, []string{"dedup", "false"}, "dedup"},
		{"lookback_delta", []string{"lookback_delta", "5m"}, []string{"lookback_delta", "1h"}, "lookback"},
		{"replicaLabels[]", []string{"replicaLabels[]", "replica"}, []string{"replicaLabels[]", "rule_replica"}, "replicas"},
		{"max_source_resolution", []string{"max_source_resolution", "0s"}, []string{"max_source_resolution", "1h"}, "resolution"},
		{"partial_response", []string{"partial_response", "true"}, []string{"partial_response", "false"}, "partial"},
	} {
		t.Run(tc.param, func(t *testing.T) {
			for _, order := range [][2][]string{{tc.a, tc.b}, {tc.b, tc.a}} {
				q, srv := newTestFrontend(t, testOptions())
				first := get(t, srv, "/query_range", rangeParams(day, 12*time.Hour, order[0]...))
				second := get(t, srv, "/query_range", rangeParams(day, 12*time.Hour, order[1]...))
				if calls, _ := q.reset(); len(calls) != 2 {
					t.Errorf("%v then %v: %d downstream calls, want 2", order[0], order[1], len(calls))
				}
				if labelOf(t, first, tc.label) == labelOf(t, second, tc.label) {
					t.Errorf("%v then %v: the second got the first's answer: %s", order[0], order[1], second)
				}
				// Each is cached under its own key.
				again := get(t, srv, "/query_range", rangeParams(day, 12*time.Hour, order[0]...))
				if calls, _ := q.reset(); len(calls) > 0 && order[0][1] != "false" {
					t.Errorf("%v asked again: %d downstream calls, want 0", order[0], len(calls))
				}
				if again != first {
					t.Errorf("%v asked again: answer differs", order[0])
				}
			}
		})
	}
}

func labelOf(t *testing.T, body, name string) string {
	t.Helper()
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Data.Result) == 0 {
		t.Fatalf("answer %v: %.300s", err, body)
	}
	return r.Data.Result[0].Metric[name]
}

func TestSeriesCacheKeepsReplicaLabelsApart(t *testing.T) {
	q, srv := newTestFrontend(t, testOptions())
	series := func(replicaLabel string) string {
		return get(t, srv, "/series", url.Values{
			"match[]": {"up"}, "replicaLabels[]": {replicaLabel},
			"start": {strconv.FormatInt(day.Unix(), 10)}, "end": {strconv.FormatInt(day.Add(time.Hour).Unix(), 10)},
		})
	}
	withReplica, without := series("other"), series("replica")
	if calls, _ := q.reset(); len(calls) != 2 {
		t.Errorf("%d downstream calls, want 2", len(calls))
	}
	if !strings.Contains(withReplica, `"replica":"a"`) || strings.Contains(without, `"replica":"a"`) {
		t.Errorf("replicaLabels[] answered from the other request's cache entry:\nreplicaLabels[]=other: %s\nreplicaLabels[]=replica: %s", withReplica, without)
	}
}

func TestPartialResponseNotCached(t *testing.T) {
	q, srv := newTestFrontend(t, testOptions())
	q.warn = true
	params := rangeParams(day, 12*time.Hour)
	partial := get(t, srv, "/query_range", params)
	if !strings.Contains(partial, "unreachable") {
		t.Fatalf("warning lost: %s", partial)
	}
	q.warn = false
	whole := get(t, srv, "/query_range", params)
	if calls, _ := q.reset(); len(calls) != 2 {
		t.Errorf("%d downstream calls, want 2: the partial answer was cached", len(calls))
	}
	if strings.Contains(whole, "unreachable") {
		t.Errorf("the whole answer came with the partial one's warning: %s", whole)
	}
	get(t, srv, "/query_range", params)
	if calls, _ := q.reset(); len(calls) != 0 {
		t.Errorf("whole answer not cached: %d downstream calls", len(calls))
	}
}

func TestRecentSamplesNotCached(t *testing.T) {
	q, srv := newTestFrontend(t, testOptions())
	end := time.Now().Truncate(time.Minute)
	params := url.Values{
		"query": {"up"}, "step": {"15"},
		"start": {strconv.FormatInt(end.Add(-time.Hour).Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)},
	}
	get(t, srv, "/query_range", params)
	q.reset()
	get(t, srv, "/query_range", params)
	calls, _ := q.reset()
	if len(calls) != 1 {
		t.Fatalf("%d downstream calls, want 1 for the recent part", len(calls))
	}
	start, _ := strconv.ParseFloat(calls[0].Get("start"), 64)
	if fresh := time.Since(time.Unix(int64(start), 0)); fresh > time.Minute+30*time.Second {
		t.Errorf("re-asked from %s ago; samples older than the 1m max freshness should come from the cache, newer never", fresh)
	}
}

func TestUnparsableRequestAnsweredByQuerier(t *testing.T) {
	q, srv := newTestFrontend(t, testOptions())
	resp, err := http.Get(srv.URL + APIPrefix + "/query_range?query=up&start=yesterday&end=1&step=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "querier: invalid parameter") {
		t.Errorf("status %d, body %s; want the querier's own 400", resp.StatusCode, body)
	}
	if calls, _ := q.reset(); len(calls) != 1 {
		t.Errorf("%d downstream calls, want 1", len(calls))
	}
}

func TestInstantQueryPassesThrough(t *testing.T) {
	q, srv := newTestFrontend(t, testOptions())
	get(t, srv, "/query", url.Values{"query": {"up"}})
	get(t, srv, "/query", url.Values{"query": {"up"}})
	if _, paths := q.reset(); fmt.Sprint(paths) != "[/query /query]" {
		t.Errorf("downstream paths %v, want both instant queries as they came", paths)
	}
}

func TestAutoDownsampling(t *testing.T) {
	opts := testOptions()
	opts.AutoDownsampling = true
	q, srv := newTestFrontend(t, opts)
	long := rangeParams(day.Add(-20*24*time.Hour), 10*24*time.Hour)
	long.Set("step", "1800") // 30m: auto reads 5m data
	get(t, srv, "/query_range", long)
	short := rangeParams(day, 12*time.Hour)
	short.Set("step", "600") // 10m: auto would read raw data
	get(t, srv, "/query_range", short)
	get(t, srv, "/query_range", rangeParams(day.Add(-24*time.Hour), 12*time.Hour, "max_source_resolution", "5m"))
	calls, _ := q.reset()
	var res []string
	for _, c := range calls {
		res = append(res, c.Get("max_source_resolution"))
	}
	// The 10 days are split into days (and the point at the last
	// midnight), all asked with auto; the 10m step is asked raw (no
	// parameter), 5m as given.
	n := len(res)
	if n < 12 || strings.Count(strings.Join(res[:n-2], ","), "auto") != n-2 || res[n-2] != "" || res[n-1] != "300" {
		t.Errorf("max_source_resolution of the downstream calls: %q; want auto for the 10 days at 30m steps, none at 10m steps, 300 as asked", res)
	}
}

func TestAnswerKeptOnceTheResultsCacheAnswersWhole(t *testing.T) {
	q, srv, reg := newTestFrontendReg(t, testOptions())
	params := rangeParams(day, 12*time.Hour)
	var bodies []string
	for range 3 {
		bodies = append(bodies, get(t, srv, "/query_range", params))
	}
	if calls, _ := q.reset(); len(calls) != 1 {
		t.Errorf("%d downstream calls, want 1", len(calls))
	}
	if bodies[1] != bodies[0] || bodies[2] != bodies[0] {
		t.Errorf("answers differ:\n%s\n%s\n%s", bodies[0], bodies[1], bodies[2])
	}
	// The first was computed, the second read from the results cache
	// whole and kept, the third written as kept.
	if hits := answerRequests(t, reg, "hit"); hits != 1 {
		t.Errorf("%v answers written as kept, want 1", hits)
	}

	// A client that asks for no cache is answered by the querier.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+APIPrefix+"/query_range?"+params.Encode(), nil)
	req.Header.Set("Cache-Control", "no-store")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if calls, _ := q.reset(); len(calls) != 1 {
		t.Errorf("Cache-Control: no-store: %d downstream calls, want 1", len(calls))
	}
}

func TestPartialAnswerNeverKept(t *testing.T) {
	q, srv, reg := newTestFrontendReg(t, testOptions())
	q.warn = true
	params := rangeParams(day, 12*time.Hour)
	for range 3 {
		get(t, srv, "/query_range", params)
	}
	if calls, _ := q.reset(); len(calls) != 3 {
		t.Errorf("%d downstream calls, want 3: a partial answer was kept", len(calls))
	}
	if hits := answerRequests(t, reg, "hit"); hits != 0 {
		t.Errorf("%v partial answers written as kept, want 0", hits)
	}
}

// answerRequests reads monstackd_query_frontend_answer_cache_requests_total{result}.
func answerRequests(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "monstackd_query_frontend_answer_cache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no answer cache requests of result %q", result)
	return 0
}

// TestNoStoreWithinADayGoesStraightToTheQuerier: nothing to cache or split,
// so the querier's answer is not decoded and encoded again; the range is
// aligned all the same. Across days it is still split.
func TestNoStoreWithinADayGoesStraightToTheQuerier(t *testing.T) {
	q, srv := newTestFrontend(t, testOptions())
	ask := func(params url.Values) { askPath(t, srv, "/query_range", params) }
	within := rangeParams(day.Add(time.Hour+17*time.Second), 6*time.Hour)
	ask(within)
	calls, _ := q.reset()
	if len(calls) != 1 {
		t.Fatalf("%d downstream calls, want 1", len(calls))
	}
	if got, want := calls[0].Get("start"), strconv.FormatInt(day.Add(time.Hour).Unix(), 10); got != want {
		t.Errorf("start %s, want %s: aligned to the 1h step", got, want)
	}
	ask(rangeParams(day, 3*24*time.Hour-time.Hour))
	if calls, _ := q.reset(); len(calls) != 3 {
		t.Errorf("3 days: %d downstream calls, want 3", len(calls))
	}
	// Series within a day go straight; without a range they get the
	// frontend's default one, split.
	askPath(t, srv, "/series", url.Values{"match[]": {"up"}, "start": {strconv.FormatInt(day.Unix(), 10)}, "end": {strconv.FormatInt(day.Add(time.Hour).Unix(), 10)}})
	if calls, _ := q.reset(); len(calls) != 1 || calls[0].Get("start") != strconv.FormatInt(day.Unix(), 10) {
		t.Errorf("series within a day: downstream calls %v, want the request as it came", calls)
	}
	askPath(t, srv, "/series", url.Values{"match[]": {"up"}})
	if calls, _ := q.reset(); len(calls) == 0 || calls[0].Get("start") == "" {
		t.Errorf("series without a range: downstream calls %v, want the frontend's default range", calls)
	}
}

// askPath requests path with "Cache-Control: no-store"; it must succeed.
func askPath(t *testing.T, srv *httptest.Server, path string, params url.Values) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+APIPrefix+path+"?"+params.Encode(), nil)
	req.Header.Set("Cache-Control", "no-store")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"success"`) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}

// TestAnswerPassesThroughUnchanged: the frontend decodes the querier's
// matrix for its cache and encodes it again; every timestamp, value and
// label comes out as the querier wrote it.
func TestAnswerPassesThroughUnchanged(t *testing.T) {
	// Steps of 0.5s from start, as Prometheus' API writes them (three
	// digits of milliseconds): special and extreme values.
	s := day.Add(-12 * time.Hour).Unix()
	ts := func(ms int64) string {
		if ms%1000 == 0 {
			return strconv.FormatInt(s+ms/1000, 10)
		}
		return fmt.Sprintf("%d.%03d", s+ms/1000, ms%1000)
	}
	values := `[[` + ts(0) + `,"NaN"],[` + ts(500) + `,"+Inf"],[` + ts(1000) + `,"-Inf"],[` + ts(1500) + `,"1e-300"],[` +
		ts(2000) + `,"0.1"],[` + ts(2500) + `,"-1.2345678901234568e+21"],[` + ts(3000) + `,"3.141592653589793"]]`
	body := `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\"b\\c","z":"ü"},"values":` + values + `}]}}`
	querier := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	})
	f, err := New(log.NewNopLogger(), prometheus.NewRegistry(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix(APIPrefix, f.Wrap(querier)))
	defer srv.Close()
	got := get(t, srv, "/query_range", url.Values{
		"query": {"up"}, "step": {"0.5"}, "start": {ts(0)}, "end": {ts(3000)},
	})
	var want, have struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values json.RawMessage   `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(got), &have); err != nil || len(have.Data.Result) != 1 {
		t.Fatalf("answer %v: %s", err, got)
	}
	if !reflect.DeepEqual(have.Data.Result[0].Metric, want.Data.Result[0].Metric) {
		t.Errorf("labels %v, want %v", have.Data.Result[0].Metric, want.Data.Result[0].Metric)
	}
	if string(have.Data.Result[0].Values) != values {
		t.Errorf("values\n%s\nwant\n%s", have.Data.Result[0].Values, values)
	}
}
