package querier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/thanos/pkg/component"
	"github.com/thanos-io/thanos/pkg/dedup"
	"github.com/thanos-io/thanos/pkg/query"
	"github.com/thanos-io/thanos/pkg/store"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc"
)

// directCreator is the history querier of New over clients.
func directCreator(clients ...store.Client) creator {
	logger := log.NewNopLogger()
	stores := func() []store.Client { return clients }
	proxy := newDirectProxy(store.NewProxyStore(logger, prometheus.NewRegistry(), stores,
		component.Query, labels.EmptyLabels(), 0, store.EagerRetrieval), stores)
	return query.NewQueryableCreator(logger, prometheus.NewRegistry(), proxy, 4, time.Minute, dedup.AlgorithmPenalty, 64)
}

// Asking one in-process store directly answers as the ProxyStore does,
// clamped or not, with and without deduplication; with two stores the
// proxy answers.
func TestDirectProxyAnswersAsProxy(t *testing.T) {
	ext := labels.FromStrings("cluster", "c1", "replica", "a")
	end := time.Unix(0, 0).Add(39 * step)
	db := openTSDB(t, tsdb.DefaultOptions(), 40, func(int) bool { return false })
	before := func() int64 { return end.Add(-10 * step).UnixMilli() }
	for _, c := range []struct {
		name    string
		clients func() []store.Client
	}{
		{"one store", func() []store.Client { return []store.Client{tsdbClient(db, ext)} }},
		{"one clamped store", func() []store.Client { return []store.Client{clampBefore(tsdbClient(db, ext), before)} }},
		{"two stores", func() []store.Client {
			return []store.Client{tsdbClient(db, ext), tsdbClient(db, labels.FromStrings("cluster", "c1", "replica", "b"))}
		}},
	} {
		for _, dedupOn := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/dedup=%t", c.name, dedupOn), func(t *testing.T) {
				want := evalAll(t, thanosCreator(t, c.clients()...), dedupOn, queries, end)
				got := evalAll(t, directCreator(c.clients()...), dedupOn, queries, end)
				compare(t, want, got)
				if want[`sum(m)`] == "" {
					t.Fatal("empty result")
				}
			})
		}
	}
}

// failingStore fails every Series.
type failingStore struct{ LocalStore }

func (failingStore) Series(*storepb.SeriesRequest, storepb.Store_SeriesServer) error {
	return errors.New("bucket down")
}

type collectServer struct {
	grpc.ServerStream
	warnings []string
}

func (collectServer) Context() context.Context { return context.Background() }

func (s *collectServer) Send(r *storepb.SeriesResponse) error {
	if w := r.GetWarning(); w != "" {
		s.warnings = append(s.warnings, w)
	}
	return nil
}

// A failing store is a warning with partial responses, as through the
// proxy, and an error without.
func TestDirectProxyPartialResponse(t *testing.T) {
	db := openTSDB(t, tsdb.DefaultOptions(), 4, func(int) bool { return false })
	st := failingStore{store.NewTSDBStore(log.NewNopLogger(), db, component.Sidecar, labels.FromStrings("replica", "a"))}
	stores := func() []store.Client { return []store.Client{NewLocalClient("bucket", component.Store, st)} }
	p := newDirectProxy(store.NewProxyStore(log.NewNopLogger(), nil, stores, component.Query, labels.EmptyLabels(), 0, store.EagerRetrieval), stores)
	req := func(s storepb.PartialResponseStrategy) *storepb.SeriesRequest {
		return &storepb.SeriesRequest{MinTime: 0, MaxTime: 1 << 40, PartialResponseStrategy: s,
			Matchers: []storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "__name__", Value: "m"}}}
	}
	srv := &collectServer{}
	if err := p.Series(req(storepb.PartialResponseStrategy_WARN), srv); err != nil {
		t.Fatalf("partial response: %v, want a warning", err)
	}
	// "fetch series for": from the direct path (the proxy's says "receive").
	if len(srv.warnings) != 1 || !strings.HasPrefix(srv.warnings[0], "fetch series for bucket") || !strings.Contains(srv.warnings[0], "bucket down") {
		t.Errorf("warnings %q, want the store's error from the direct path", srv.warnings)
	}
	if err := p.Series(req(storepb.PartialResponseStrategy_ABORT), &collectServer{}); err == nil || !strings.Contains(err.Error(), "bucket down") {
		t.Errorf("abort: error %v, want the store's", err)
	}
}
