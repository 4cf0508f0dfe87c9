package admission

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newGuard(live *atomic.Uint64) *Guard {
	return New(log.NewNopLogger(), prometheus.NewRegistry(), Options{
		ShedRatio:   0.5,
		CancelRatio: 0.8,
		Limit:       func() int64 { return 1000 },
		Live:        live.Load,
	})
}

func serve(h http.Handler) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/query?query=up", nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestShedsNewQueriesAboveShedRatio(t *testing.T) {
	var live atomic.Uint64
	g := newGuard(&live)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"status":"success"}`) })
	live.Store(400)
	if code, body := serve(g.Wrap(ok)); code != 200 || !strings.Contains(body, "success") {
		t.Fatalf("below the shed ratio: %d %s", code, body)
	}
	live.Store(600)
	code, body := serve(g.Wrap(ok))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"errorType":"unavailable"`) || !strings.Contains(body, "shedding queries") {
		t.Fatalf("above the shed ratio: %d %s, want 503 saying why", code, body)
	}
	if v := testutil.ToFloat64(g.shed); v != 1 {
		t.Errorf("shed counter %v, want 1", v)
	}
}

// A running query is cancelled when the heap reaches the cancel ratio, and
// its answer becomes a 503 naming the memory limit instead of the APIs'
// client-cancellation error.
func TestCancelsRunningQueriesAboveCancelRatio(t *testing.T) {
	var live atomic.Uint64
	g := newGuard(&live)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = g.Run(ctx) }()
	started := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			w.WriteHeader(499) // what the Prometheus API answers on cancellation
			_, _ = io.WriteString(w, `{"status":"error","errorType":"canceled"}`)
		case <-time.After(10 * time.Second):
			t.Error("query was not cancelled")
		}
	})
	res := make(chan [2]any, 1)
	go func() { c, b := serve(g.Wrap(slow)); res <- [2]any{c, b} }()
	<-started
	live.Store(900)
	r := <-res
	if r[0].(int) != http.StatusServiceUnavailable || !strings.Contains(r[1].(string), "query memory limit") {
		t.Fatalf("cancelled query answered %v %v, want 503 naming the memory limit", r[0], r[1])
	}
	if v := testutil.ToFloat64(g.cancelled); v != 1 {
		t.Errorf("cancelled counter %v, want 1", v)
	}
}

// Without a memory limit (GOMEMLIMIT unset) the guard admits everything.
func TestNoLimitNoGuard(t *testing.T) {
	g := New(log.NewNopLogger(), prometheus.NewRegistry(), Options{ShedRatio: 0.1, CancelRatio: 0.2,
		Limit: func() int64 { return 1<<63 - 1 }, Live: func() uint64 { return 1 << 40 }})
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	if code, _ := serve(g.Wrap(ok)); code != 200 {
		t.Fatalf("no limit: %d, want 200", code)
	}
}

// While queries are shed, the guard refreshes the live heap by collecting,
// at most once a second: a freed heap is noticed without waiting for the
// next allocation-driven GC.
func TestShedRefreshesLiveHeap(t *testing.T) {
	var live atomic.Uint64
	live.Store(600)
	var gcs atomic.Int64
	g := New(log.NewNopLogger(), prometheus.NewRegistry(), Options{ShedRatio: 0.5, CancelRatio: 0.8,
		Limit: func() int64 { return 1000 }, Live: live.Load,
		GC: func() { gcs.Add(1); live.Store(100) }})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = g.Run(ctx) }()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := serve(g.Wrap(ok)); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still shedding after the heap was freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := gcs.Load(); n != 1 {
		t.Errorf("%d forced collections, want 1", n)
	}
}
