package querier

import (
	"context"
	"io"
	"math"
	"slices"

	"github.com/thanos-io/thanos/pkg/store"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// clampBefore returns c asking only for data before before() (the local
// TSDB's oldest sample, read at each request): a request's end is clamped
// to before()-1 and a request that starts later is not sent. The local TSDB
// answers from there on; since retention deletes only the blocks the store
// gateway serves, the two ranges meet without a gap or an overlap.
//
// The bucket store is clamped so for this replica's blocks only
// (onlyReplica); the other replicas' blocks are clamped before their own
// TSDBs' oldest samples, and read to their end while the peers are down.
func clampBefore(c store.Client, before func() int64) store.Client {
	return &clampedClient{Client: c, before: before}
}

type clampedClient struct {
	store.Client
	before func() int64
}

// maxt is the last millisecond the store is asked for.
func (c *clampedClient) maxt() int64 {
	b := c.before()
	if b == math.MinInt64 {
		return b
	}
	return b - 1
}

// clamp returns the end a request over [start, end] may ask the store for,
// and false when the store holds nothing the request needs.
func (c *clampedClient) clamp(start, end int64) (int64, bool) {
	maxt := c.maxt()
	return min(end, maxt), start <= maxt
}

func (c *clampedClient) Series(ctx context.Context, in *storepb.SeriesRequest, opts ...grpc.CallOption) (storepb.Store_SeriesClient, error) {
	end, ok := c.clamp(in.MinTime, in.MaxTime)
	if !ok {
		return emptySeries{ctx: ctx}, nil
	}
	r := *in
	r.MaxTime = end
	return c.Client.Series(ctx, &r, opts...)
}

// serveSeries is Series, clamped, for directProxy.
func (c *clampedClient) serveSeries(req *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error {
	end, ok := c.clamp(req.MinTime, req.MaxTime)
	if !ok {
		return nil
	}
	r := *req
	r.MaxTime = end
	return c.Client.(directStore).serveSeries(&r, srv)
}

func (c *clampedClient) direct() bool {
	d, ok := c.Client.(directStore)
	return ok && d.direct()
}

func (c *clampedClient) LabelNames(ctx context.Context, in *storepb.LabelNamesRequest, opts ...grpc.CallOption) (*storepb.LabelNamesResponse, error) {
	end, ok := c.clamp(in.Start, in.End)
	if !ok {
		return &storepb.LabelNamesResponse{}, nil
	}
	r := *in
	r.End = end
	return c.Client.LabelNames(ctx, &r, opts...)
}

func (c *clampedClient) LabelValues(ctx context.Context, in *storepb.LabelValuesRequest, opts ...grpc.CallOption) (*storepb.LabelValuesResponse, error) {
	end, ok := c.clamp(in.Start, in.End)
	if !ok {
		return &storepb.LabelValuesResponse{}, nil
	}
	r := *in
	r.End = end
	return c.Client.LabelValues(ctx, &r, opts...)
}

// TimeRange is the store's, clamped: the ProxyStore skips the store for
// requests after it.
func (c *clampedClient) TimeRange() (int64, int64) {
	mint, maxt := c.Client.TimeRange()
	return mint, min(maxt, c.maxt())
}

func (c *clampedClient) String() string { return c.Client.String() + " before the local TSDB" }

// status lists the store with its own range.
func (c *clampedClient) status() (statusProvider, bool) {
	s, ok := c.Client.(inProcess)
	if !ok {
		return nil, false
	}
	return s.status()
}

// emptySeries is a Series stream with nothing in it.
type emptySeries struct{ ctx context.Context }

func (emptySeries) Recv() (*storepb.SeriesResponse, error) { return nil, io.EOF }
func (emptySeries) Header() (metadata.MD, error)           { return nil, nil }
func (emptySeries) Trailer() metadata.MD                   { return nil }
func (emptySeries) CloseSend() error                       { return nil }
func (e emptySeries) Context() context.Context             { return e.ctx }
func (emptySeries) SendMsg(any) error                      { return nil }
func (emptySeries) RecvMsg(any) error                      { return io.EOF }

// onlyReplica returns c asking only for the blocks of this replica (own)
// or only for those of the others (!own), by a matcher on the replica
// external label, whose value replica reads at each request (it follows a
// reload). The store gateway skips the blocks whose labels do not match.
func onlyReplica(c store.Client, name string, replica func() string, own bool) store.Client {
	return &replicaClient{Client: c, name: name, replica: replica, own: own}
}

type replicaClient struct {
	store.Client
	name    string
	replica func() string
	own     bool
}

func (c *replicaClient) matchers(in []storepb.LabelMatcher) []storepb.LabelMatcher {
	m := storepb.LabelMatcher{Type: storepb.LabelMatcher_NEQ, Name: c.name, Value: c.replica()}
	if c.own {
		m.Type = storepb.LabelMatcher_EQ
	}
	return append(slices.Clone(in), m)
}

func (c *replicaClient) Series(ctx context.Context, in *storepb.SeriesRequest, opts ...grpc.CallOption) (storepb.Store_SeriesClient, error) {
	r := *in
	r.Matchers = c.matchers(in.Matchers)
	return c.Client.Series(ctx, &r, opts...)
}

// serveSeries is Series, with the replica matcher, for directProxy.
func (c *replicaClient) serveSeries(req *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error {
	r := *req
	r.Matchers = c.matchers(req.Matchers)
	return c.Client.(directStore).serveSeries(&r, srv)
}

func (c *replicaClient) direct() bool {
	d, ok := c.Client.(directStore)
	return ok && d.direct()
}

func (c *replicaClient) LabelNames(ctx context.Context, in *storepb.LabelNamesRequest, opts ...grpc.CallOption) (*storepb.LabelNamesResponse, error) {
	r := *in
	r.Matchers = c.matchers(in.Matchers)
	return c.Client.LabelNames(ctx, &r, opts...)
}

func (c *replicaClient) LabelValues(ctx context.Context, in *storepb.LabelValuesRequest, opts ...grpc.CallOption) (*storepb.LabelValuesResponse, error) {
	r := *in
	r.Matchers = c.matchers(in.Matchers)
	return c.Client.LabelValues(ctx, &r, opts...)
}

func (c *replicaClient) String() string {
	if c.own {
		return c.Client.String() + " (this replica's blocks)"
	}
	return c.Client.String() + " (the other replicas' blocks)"
}

// status lists the store with its own range.
func (c *replicaClient) status() (statusProvider, bool) {
	s, ok := c.Client.(inProcess)
	if !ok {
		return nil, false
	}
	return s.status()
}
