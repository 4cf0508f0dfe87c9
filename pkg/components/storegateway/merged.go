package storegateway

import (
	"context"
	"maps"
	"slices"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
)

// mergedFilter drops a replica's block once a block without the replica
// label holds all of its sources: the compactor merged the replicas' blocks
// into one copy. Thanos' deduplicate filter compares blocks of one
// compaction group only, and the merged block, having lost the replica
// label, is in another: without this the store would serve both copies and
// the merged one until the sources' deletion (days), for the querier to
// deduplicate three times over.
type mergedFilter struct {
	replicaLabel string
}

func (f mergedFilter) Filter(_ context.Context, metas map[ulid.ULID]*metadata.Meta, synced block.GaugeVec, _ block.GaugeVec) error {
	// Merged blocks' sources, by group key (labels and resolution).
	merged := map[string][]map[ulid.ULID]bool{}
	for _, m := range metas {
		if _, ok := m.Thanos.Labels[f.replicaLabel]; ok {
			continue
		}
		sources := map[ulid.ULID]bool{}
		for _, s := range m.Compaction.Sources {
			sources[s] = true
		}
		merged[m.Thanos.GroupKey()] = append(merged[m.Thanos.GroupKey()], sources)
	}
	if len(merged) == 0 {
		return nil
	}
	for id, m := range metas {
		if _, ok := m.Thanos.Labels[f.replicaLabel]; !ok {
			continue
		}
		t := withoutLabel(m.Thanos, f.replicaLabel)
		key := t.GroupKey()
		if slices.ContainsFunc(merged[key], func(sources map[ulid.ULID]bool) bool {
			return !slices.ContainsFunc(m.Compaction.Sources, func(s ulid.ULID) bool { return !sources[s] })
		}) {
			delete(metas, id)
			synced.WithLabelValues("duplicate").Inc()
		}
	}
	return nil
}

func withoutLabel(t metadata.Thanos, name string) metadata.Thanos {
	t.Labels = maps.Clone(t.Labels)
	delete(t.Labels, name)
	return t
}
