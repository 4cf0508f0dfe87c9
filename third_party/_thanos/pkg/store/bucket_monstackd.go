// Copyright (c) The Thanos Authors.
// Licensed under the Apache License 2.0.

// Added by monstackd (third_party/_thanos/README.md): the store gateway's
// per-series label work without the copies string labels cost.

package store

import (
	"context"
	"unsafe"

	"github.com/pkg/errors"
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

// lookupZLabels returns what LookupLabelsSymbols into a Builder, its Labels
// and zLabelsForSeries return, in one buffer for the series' strings and
// one slice: the series' labels looked up, merged with the sorted ext (ext
// wins on a name both have), without the names in remove. ok is false,
// with nothing returned, when the series' labels are not sorted by name
// (an index never has them so; the Builder sorts them): the caller takes
// the Builder's way then. syms is scratch kept across calls.
func (r *bucketIndexReader) lookupZLabels(ctx context.Context, symbolized []symbolizedLabel, ext []labels.Label, remove map[string]struct{}, syms *[]string) (out []labelpb.ZLabel, ok bool, err error) {
	names := (*syms)[:0]
	size := 0
	for _, s := range symbolized {
		ln, err := r.dec.LookupSymbol(ctx, s.name)
		if err != nil {
			return nil, false, errors.Wrap(err, "lookup label name")
		}
		lv, err := r.dec.LookupSymbol(ctx, s.value)
		if err != nil {
			return nil, false, errors.Wrap(err, "lookup label value")
		}
		if n := len(names); n > 0 && names[n-2] >= ln {
			*syms = names
			return nil, false, nil
		}
		names = append(names, ln, lv)
		size += len(ln) + len(lv)
	}
	*syms = names
	// One copy of the series' strings: the symbols may point into the
	// index-header, which goes when the block is unloaded.
	buf := make([]byte, 0, size)
	own := func(s string) string {
		if s == "" {
			return ""
		}
		n := len(buf)
		buf = append(buf, s...)
		return unsafe.String(&buf[n], len(s))
	}
	out = make([]labelpb.ZLabel, 0, len(names)/2+len(ext))
	add := func(name, value string, series bool) {
		if _, drop := remove[name]; drop {
			return
		}
		if series {
			name, value = own(name), own(value)
		}
		out = append(out, labelpb.ZLabel{Name: name, Value: value})
	}
	j := 0
	for i := 0; i < len(names); i += 2 {
		ln, lv := names[i], names[i+1]
		for j < len(ext) && ext[j].Name < ln {
			if ext[j].Value != "" {
				add(ext[j].Name, ext[j].Value, false)
			}
			j++
		}
		if j < len(ext) && ext[j].Name == ln {
			continue // ext wins, added with the next name or at the end
		}
		if lv == "" { // as Builder.Set, which deletes the name
			continue
		}
		add(ln, lv, true)
	}
	for ; j < len(ext); j++ {
		if ext[j].Value != "" {
			add(ext[j].Name, ext[j].Value, false)
		}
	}
	return out, true, nil
}
