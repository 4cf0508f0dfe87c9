package querier

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/thanos/pkg/store"
	"github.com/thanos-io/thanos/pkg/store/storepb"
)

// directStore is a store client that can answer Series in the caller's
// goroutine, writing into the caller's server: an in-process store.
type directStore interface {
	store.Client
	// serveSeries answers req into srv as the store's own Series does.
	serveSeries(req *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error
	// direct reports whether serveSeries reaches the store.
	direct() bool
}

// directProxy is the history querier's StoreServer. Over one in-process
// store (the store gateway, the usual case) it sends Series straight to
// it: the ProxyStore would run the store in a coroutine behind
// storepb.ServerAsClient, buffer every series in a goroutine, sort them
// again and merge them through a loser tree and a deduplicator, all to
// return the order and content the BucketStore already gives (it sorts
// each block without the replica labels and merges its blocks). With
// string labels each of those steps also copied labels. Label names and
// values, and anything but one in-process store, go through the proxy.
type directProxy struct {
	*store.ProxyStore
	stores func() []store.Client
}

func newDirectProxy(p *store.ProxyStore, stores func() []store.Client) *directProxy {
	return &directProxy{ProxyStore: p, stores: stores}
}

func (p *directProxy) Series(req *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error {
	st, ok := p.single(req, srv)
	if !ok {
		return p.ProxyStore.Series(req, srv)
	}
	// As the proxy forwards it: hints are the querier's business.
	r := *req
	r.Hints = nil
	err := st.serveSeries(&r, srv)
	if err == nil {
		return nil
	}
	// As the proxy: a failing store is a warning unless partial
	// responses are off.
	if req.PartialResponseDisabled || req.PartialResponseStrategy == storepb.PartialResponseStrategy_ABORT {
		return err
	}
	return srv.Send(storepb.NewWarnSeriesResponse(fmt.Errorf("fetch series for %s: %w", st, err)))
}

// single returns the one store to ask directly, or false when the request
// needs the proxy: several stores, a remote one, debug matchers selecting
// stores, or no matchers (the proxy's error).
func (p *directProxy) single(req *storepb.SeriesRequest, srv storepb.Store_SeriesServer) (directStore, bool) {
	if len(req.Matchers) == 0 {
		return nil, false
	}
	if m, _ := srv.Context().Value(store.StoreMatcherKey).([][]*labels.Matcher); len(m) > 0 {
		return nil, false
	}
	stores := p.stores()
	if len(stores) != 1 {
		return nil, false
	}
	st, ok := stores[0].(directStore)
	if !ok || !st.direct() {
		return nil, false
	}
	return st, true
}
