package querier

import (
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/thanos/pkg/component"
	"github.com/thanos-io/thanos/pkg/query"
)

// localStoreName is how the Stores page names this host's TSDB.
const localStoreName = "local"

// statusProvider reports one in-process store as the Stores page
// (/api/v1/stores) lists a gRPC endpoint. Thanos' EndpointSet knows only
// the gRPC endpoints; the local TSDB, and later the bucket store, are
// listed through these.
type statusProvider func(now time.Time) query.EndpointStatus

// endpointStatus returns the statuses of the gRPC endpoints and the
// in-process stores, by name as the EndpointSet sorts them.
func endpointStatus(grpc func() []query.EndpointStatus, inProcess func() []statusProvider) func() []query.EndpointStatus {
	return func() []query.EndpointStatus {
		out := grpc()
		now := time.Now()
		for _, p := range inProcess() {
			out = append(out, p(now))
		}
		slices.SortStableFunc(out, func(a, b query.EndpointStatus) int { return strings.Compare(a.Name, b.Name) })
		return out
	}
}

// status lists the local TSDB as a stock querier lists a sidecar: its
// external labels and the time range it holds. It is in this process, so it
// is up whenever the querier answers.
func (l *Local) status(now time.Time) query.EndpointStatus {
	lsets := []labels.Labels{}
	if l.ExternalLabels != nil {
		if ext := l.ExternalLabels(); !ext.IsEmpty() {
			lsets = append(lsets, ext)
		}
	}
	mint, maxt := l.timeRange()
	return query.EndpointStatus{
		Name:          localStoreName,
		LastCheck:     now,
		LabelSets:     lsets,
		ComponentType: component.Sidecar,
		MinTime:       mint,
		MaxTime:       maxt,
	}
}

// tsdbRanges is what timeRange needs of a *tsdb.DB.
type tsdbRanges interface {
	Blocks() []*tsdb.Block
	Head() *tsdb.Head
}

// minTime is the local TSDB's oldest sample (the oldest block's start, or
// the head's), read now; math.MaxInt64 when it holds nothing.
func (l *Local) minTime() int64 {
	mint, _ := l.timeRange()
	return mint
}

// timeRange is the span of the samples in the blocks and the head, both ends
// inclusive. With no samples (or a DB that is not a TSDB) it is empty:
// mint is math.MaxInt64 and maxt math.MinInt64, as an empty head reports.
func (l *Local) timeRange() (mint, maxt int64) {
	mint, maxt = math.MaxInt64, math.MinInt64
	db, ok := l.DB.(tsdbRanges)
	if !ok {
		return mint, maxt
	}
	for _, b := range db.Blocks() {
		m := b.Meta()
		mint, maxt = min(mint, m.MinTime), max(maxt, m.MaxTime-1) // a block's MaxTime is exclusive
	}
	if h := db.Head(); h.MinTime() <= h.MaxTime() {
		mint, maxt = min(mint, h.MinTime()), max(maxt, h.MaxTime())
	}
	return mint, maxt
}

// peerNotes are notes shown with the peers' names on the Stores page, the
// only place the Thanos UI lists them (its status type has no other free
// text but the last error, which marks the store down).
type peerNotes struct {
	mtx   sync.Mutex
	notes map[string]string
}

func (n *peerNotes) set(peer, note string) {
	n.mtx.Lock()
	defer n.mtx.Unlock()
	if note == "" {
		delete(n.notes, peer)
		return
	}
	n.notes[peer] = note
}

// apply returns statuses with the notes added to the names.
func (n *peerNotes) apply(statuses func() []query.EndpointStatus) func() []query.EndpointStatus {
	return func() []query.EndpointStatus {
		out := statuses()
		n.mtx.Lock()
		defer n.mtx.Unlock()
		for i := range out {
			if note, ok := n.notes[out[i].Name]; ok {
				out[i].Name += " (" + note + ")"
			}
		}
		return out
	}
}
