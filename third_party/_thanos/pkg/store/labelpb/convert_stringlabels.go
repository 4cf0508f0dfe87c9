// Copyright (c) The Thanos Authors.
// Licensed under the Apache License 2.0.

//go:build !slicelabels

package labelpb

import (
	"sync"

	"github.com/prometheus/prometheus/model/labels"
)

// Added by monstackd: Prometheus' string labels are not laid out as
// []ZLabel, so these conversions copy where the slicelabels ones cast.
// Order is kept as given, as the cast keeps it.

// ZLabelsFromPromLabels converts Prometheus labels to a slice of ZLabel.
// The strings are shared with lset, the slice is new.
func ZLabelsFromPromLabels(lset labels.Labels) []ZLabel {
	if lset.IsEmpty() {
		return nil // as the cast of empty slice labels
	}
	zl := make([]ZLabel, 0, lset.Len())
	lset.Range(func(l labels.Label) {
		zl = append(zl, ZLabel{Name: l.Name, Value: l.Value})
	})
	return zl
}

// ZLabelsToPromLabels converts a slice of ZLabel to Prometheus labels. The
// result is a copy: it does not hold the protobuf buffer lset may point into.
func ZLabelsToPromLabels(lset []ZLabel) labels.Labels {
	b := scratchBuilders.Get().(*labels.ScratchBuilder)
	b.Reset()
	for _, l := range lset {
		b.Add(l.Name, l.Value)
	}
	// Labels copies: nothing of b stays in the result.
	ls := b.Labels()
	scratchBuilders.Put(b)
	return ls
}

// scratchBuilders spare ZLabelsToPromLabels a builder per call: it runs
// once per series on every StoreAPI read.
var scratchBuilders = sync.Pool{New: func() any {
	b := labels.NewScratchBuilder(16)
	return &b
}}
