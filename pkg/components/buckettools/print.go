package buckettools

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/thanos-io/thanos/pkg/block/metadata"
)

// Format is the output of Ls.
type Format string

const (
	// FormatText is one line per block, fields separated by two spaces.
	FormatText Format = "text"
	// FormatJSON is one meta.json object per line, as the bucket holds it.
	FormatJSON Format = "json"
)

// Ls writes one line per block: ULID, min and max time (RFC3339, UTC),
// resolution, compaction level, source and external labels.
func Ls(w io.Writer, metas []*metadata.Meta, format Format) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		for _, m := range metas {
			if err := enc.Encode(m); err != nil {
				return err
			}
		}
		return nil
	case FormatText, "":
		for _, m := range metas {
			if _, err := fmt.Fprintf(w, "%s  %s  %s  resolution=%s  level=%d  source=%s  %s\n",
				m.ULID, rfc3339(m.MinTime), rfc3339(m.MaxTime), resolution(m), m.Compaction.Level,
				m.Thanos.Source, formatLabels(m.Thanos.Labels)); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("unknown output format %q; one of %s, %s", format, FormatText, FormatJSON)
	}
}

// InspectColumns are the columns of Inspect, those of `thanos tools bucket
// inspect` but UNTIL-DOWN (the compactor's downsampling schedule).
var InspectColumns = []string{"ULID", "FROM", "UNTIL", "RANGE", "#SERIES", "#SAMPLES", "#CHUNKS",
	"COMP-LEVEL", "COMP-FAILED", "LABELS", "RESOLUTION", "SOURCE"}

// Inspect writes a table of the blocks whose external labels include every
// pair of selector (all blocks for an empty one), in the order of metas.
func Inspect(w io.Writer, metas []*metadata.Meta, selector map[string]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	row := func(cells ...string) { fmt.Fprintf(tw, " %s\t\n", strings.Join(cells, " \t ")) }
	row(InspectColumns...)
	rule := make([]string, len(InspectColumns))
	for i, c := range InspectColumns {
		rule[i] = strings.Repeat("-", len(c))
	}
	row(rule...)
	for _, m := range metas {
		if !matches(m, selector) {
			continue
		}
		labels := make([]string, 0, len(m.Thanos.Labels))
		for _, k := range sortedKeys(m.Thanos.Labels) {
			labels = append(labels, k+"="+m.Thanos.Labels[k])
		}
		row(m.ULID.String(), rfc3339(m.MinTime), rfc3339(m.MaxTime),
			(time.Duration(m.MaxTime-m.MinTime) * time.Millisecond).String(),
			thousands(m.Stats.NumSeries), thousands(m.Stats.NumSamples), thousands(m.Stats.NumChunks),
			strconv.Itoa(m.Compaction.Level), strconv.FormatBool(m.Compaction.Failed),
			strings.Join(labels, ","), resolution(m), string(m.Thanos.Source))
	}
	return tw.Flush()
}

// ParseSelector parses name=value or name="value" pairs, as
// `thanos tools bucket inspect --selector` takes them.
func ParseSelector(pairs []string) (map[string]string, error) {
	sel := map[string]string{}
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("selector %q: want name=value", p)
		}
		if strings.HasPrefix(value, `"`) {
			v, err := strconv.Unquote(value)
			if err != nil {
				return nil, fmt.Errorf("selector %q: %w", p, err)
			}
			value = v
		}
		sel[name] = value
	}
	return sel, nil
}

func matches(m *metadata.Meta, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := m.Thanos.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func rfc3339(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func resolution(m *metadata.Meta) string {
	return (time.Duration(m.Thanos.Downsample.Resolution) * time.Millisecond).String()
}

// thousands formats n with comma separators, as Thanos' inspect does.
func thousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
