package frontend

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkCachedRangeQuery is a dashboard panel's refresh answered from
// the results cache: 720 steps of one series.
func BenchmarkCachedRangeQuery(b *testing.B) {
	f, err := New(log.NewNopLogger(), prometheus.NewRegistry(), testOptions())
	if err != nil {
		b.Fatal(err)
	}
	h := http.StripPrefix(APIPrefix, f.Wrap(&fakeQuerier{}))
	start := day.Add(-6 * time.Hour)
	u := APIPrefix + "/query_range?query=up&step=30&start=" + strconv.FormatInt(start.Unix(), 10) + "&end=" + strconv.FormatInt(start.Add(6*time.Hour).Unix(), 10)
	serve := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return rec
	}
	serve()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serve()
	}
}

// BenchmarkUncachedRangeQuery is a high-cardinality range query asked
// with "Cache-Control: no-store" (straight to the querier) and as a cache
// miss: what the frontend adds to the querier's own work (decoding its
// answer for the cache, encoding it again).
func BenchmarkUncachedRangeQuery(b *testing.B) {
	f, err := New(log.NewNopLogger(), prometheus.NewRegistry(), testOptions())
	if err != nil {
		b.Fatal(err)
	}
	q := &fakeQuerier{series: 1000}
	h := http.StripPrefix(APIPrefix, f.Wrap(q))
	start := day.Add(-6 * time.Hour)
	u := APIPrefix + "/query_range?query=up&step=60&start=" + strconv.FormatInt(start.Unix(), 10) + "&end=" + strconv.FormatInt(start.Add(10*time.Minute).Unix(), 10)
	for _, c := range []struct {
		name  string
		h     http.Handler
		store bool
	}{{"frontend-no-store", h, false}, {"frontend-miss", h, true}, {"querier", http.StripPrefix(APIPrefix, q), false}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				rec := httptest.NewRecorder()
				// A query never asked before: a miss, answered and cached.
				i++
				req := httptest.NewRequest(http.MethodGet, strings.Replace(u, "query=up", "query=up%7Bi%3D%22"+strconv.Itoa(i)+"%22%7D", 1), nil)
				if !c.store {
					req.Header.Set("Cache-Control", "no-store")
				}
				c.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
