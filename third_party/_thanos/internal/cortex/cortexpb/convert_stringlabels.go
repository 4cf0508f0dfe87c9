// Copyright (c) The Cortex Authors.
// Licensed under the Apache License 2.0.

//go:build !slicelabels

package cortexpb

import "github.com/prometheus/prometheus/model/labels"

// Added by monstackd: copying conversions for Prometheus' string labels,
// which are not laid out as []LabelAdapter. Order is kept as given.

// FromLabelAdaptersToLabels converts []LabelAdapter to labels.Labels.
func FromLabelAdaptersToLabels(ls []LabelAdapter) labels.Labels {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	return b.Labels()
}

// FromLabelsToLabelAdapters converts labels.Labels to []LabelAdapter.
func FromLabelsToLabelAdapters(ls labels.Labels) []LabelAdapter {
	if ls.IsEmpty() {
		return nil // as the cast of empty slice labels
	}
	la := make([]LabelAdapter, 0, ls.Len())
	ls.Range(func(l labels.Label) {
		la = append(la, LabelAdapter{Name: l.Name, Value: l.Value})
	})
	return la
}
