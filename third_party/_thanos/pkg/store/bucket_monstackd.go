// Copyright (c) The Thanos Authors.
// Licensed under the Apache License 2.0.

// Added by monstackd (third_party/_thanos/README.md): the store gateway's
// per-series label work without the copies string labels cost.

package store

import (
	"github.com/prometheus/prometheus/model/labels"

	"github.com/thanos-io/thanos/pkg/store/labelpb"
)

// labelSlice returns lset's labels in order.
func labelSlice(lset labels.Labels) []labels.Label {
	out := make([]labels.Label, 0, lset.Len())
	lset.Range(func(l labels.Label) { out = append(out, l) })
	return out
}

// zLabelsForSeries returns what
//
//	labelpb.ZLabelsFromPromLabels(rmLabels(labelpb.ExtendSortedLabels(lset, ext), remove))
//
// returns, with one allocation: lset merged with the sorted ext (ext wins
// on a name both have), without the names in remove. The strings point
// into lset and ext.
func zLabelsForSeries(lset labels.Labels, ext []labels.Label, remove map[string]struct{}) []labelpb.ZLabel {
	out := make([]labelpb.ZLabel, 0, lset.Len()+len(ext))
	add := func(l labels.Label) {
		if _, ok := remove[l.Name]; ok {
			return
		}
		out = append(out, labelpb.ZLabel{Name: l.Name, Value: l.Value})
	}
	// An external label with an empty value deletes the name, as
	// Builder.Set does in ExtendSortedLabels.
	addExt := func(l labels.Label) {
		if l.Value != "" {
			add(l)
		}
	}
	j := 0
	lset.Range(func(l labels.Label) {
		for j < len(ext) && ext[j].Name < l.Name {
			addExt(ext[j])
			j++
		}
		if j < len(ext) && ext[j].Name == l.Name {
			return // ext wins, added with the next name or at the end
		}
		add(l)
	})
	for ; j < len(ext); j++ {
		addExt(ext[j])
	}
	return out
}
