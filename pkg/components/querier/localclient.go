package querier

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/thanos/pkg/component"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/query"
	"github.com/thanos-io/thanos/pkg/store"
	"github.com/thanos-io/thanos/pkg/store/labelpb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"go.uber.org/atomic"
	"google.golang.org/grpc"
)

// LocalStore is a StoreAPI server living in this process: the TSDBStore over
// the local head, the bucket store.
type LocalStore interface {
	storepb.StoreServer
	LabelSet() []labelpb.ZLabelSet
	ExtLabelSets() []labels.Labels
	TimeRange() (mint, maxt int64)
	TSDBInfos() []infopb.TSDBInfo
	Matches(ms []*labels.Matcher) bool
}

// localClient reaches a LocalStore without gRPC or remote-read: Series
// streams through storepb's in-process adapter, the rest are direct calls.
// Thanos' equivalent (receive's localClient) is unexported.
type localClient struct {
	name   string
	typ    component.Component
	store  LocalStore
	client storepb.StoreClient
}

// NewLocalClient wraps an in-process store as a ProxyStore client; the
// Stores page lists it by name under typ.
func NewLocalClient(name string, typ component.Component, s LocalStore) store.Client {
	return &localClient{name: name, typ: typ, store: s, client: storepb.ServerAsClient(s, atomic.Bool{})}
}

// inProcess is a store client the Stores page lists beside the gRPC endpoints.
type inProcess interface {
	status() (statusProvider, bool)
}

func (c *localClient) status() (statusProvider, bool) {
	return func(now time.Time) query.EndpointStatus {
		mint, maxt := c.store.TimeRange()
		return query.EndpointStatus{
			Name:          c.name,
			LastCheck:     now,
			LabelSets:     c.store.ExtLabelSets(),
			ComponentType: c.typ,
			MinTime:       mint,
			MaxTime:       maxt,
		}
	}, true
}

func (c *localClient) Series(ctx context.Context, in *storepb.SeriesRequest, opts ...grpc.CallOption) (storepb.Store_SeriesClient, error) {
	return c.client.Series(ctx, in, opts...)
}

// serveSeries calls the store's Series in this goroutine (directProxy).
func (c *localClient) serveSeries(req *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error {
	return c.store.Series(req, srv)
}

func (c *localClient) direct() bool { return true }

func (c *localClient) LabelNames(ctx context.Context, in *storepb.LabelNamesRequest, _ ...grpc.CallOption) (*storepb.LabelNamesResponse, error) {
	return c.store.LabelNames(ctx, in)
}

func (c *localClient) LabelValues(ctx context.Context, in *storepb.LabelValuesRequest, _ ...grpc.CallOption) (*storepb.LabelValuesResponse, error) {
	return c.store.LabelValues(ctx, in)
}

func (c *localClient) LabelSets() []labels.Labels         { return c.store.ExtLabelSets() }
func (c *localClient) TimeRange() (int64, int64)          { return c.store.TimeRange() }
func (c *localClient) TSDBInfos() []infopb.TSDBInfo       { return c.store.TSDBInfos() }
func (c *localClient) Matches(ms []*labels.Matcher) bool  { return c.store.Matches(ms) }
func (c *localClient) SupportsSharding() bool             { return true }
func (c *localClient) SupportsWithoutReplicaLabels() bool { return true }
func (c *localClient) Addr() (string, bool)               { return "", true }

func (c *localClient) String() string {
	mint, maxt := c.store.TimeRange()
	return fmt.Sprintf("%s (in-process) MinTime: %d MaxTime: %d", c.name, mint, maxt)
}
