package storegateway

import (
	"context"
	"slices"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/thanos/pkg/block/metadata"
)

func TestMergedFilterDropsMergedReplicaBlocks(t *testing.T) {
	id := func(n byte) ulid.ULID { return ulid.ULID{n} }
	meta := func(n byte, replica string, res int64, sources ...ulid.ULID) *metadata.Meta {
		m := &metadata.Meta{}
		m.ULID = id(n)
		m.Compaction.Sources = sources
		m.Thanos.Labels = map[string]string{"cluster": "c"}
		if replica != "" {
			m.Thanos.Labels["replica"] = replica
		}
		m.Thanos.Downsample.Resolution = res
		return m
	}
	metas := map[ulid.ULID]*metadata.Meta{}
	for _, m := range []*metadata.Meta{
		meta(1, "a", 0, id(1)),
		meta(2, "b", 0, id(2)),
		meta(3, "a", 0, id(3)),             // not merged yet
		meta(4, "", 0, id(1), id(2)),       // a+b merged
		meta(5, "b", 300000, id(1), id(5)), // another resolution: kept
		meta(6, "a", 0, id(1), id(6)),      // a source the merged block lacks: kept
	} {
		metas[m.ULID] = m
	}
	synced := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "synced"}, []string{"state"})
	if err := (mergedFilter{replicaLabel: "replica"}).Filter(context.Background(), metas, synced, synced); err != nil {
		t.Fatal(err)
	}
	var kept []ulid.ULID
	for k := range metas {
		kept = append(kept, k)
	}
	slices.SortFunc(kept, func(a, b ulid.ULID) int { return a.Compare(b) })
	if want := []ulid.ULID{id(3), id(4), id(5), id(6)}; !slices.Equal(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
}
