package querier

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/thanos/pkg/store/labelpb"
)

// The merges compare protobuf labels in place (third_party/_thanos): the
// order must be labels.Compare's.
func TestCompareZLabelsAsLabelsCompare(t *testing.T) {
	sets := []labels.Labels{
		labels.EmptyLabels(),
		labels.FromStrings("a", "1"),
		labels.FromStrings("a", "1", "b", "x"),
		labels.FromStrings("a", "1", "replica", "a"),
		labels.FromStrings("a", "1", "b", "x", "replica", "a"),
		labels.FromStrings("a", "10"),
		labels.FromStrings("a", "2"),
		labels.FromStrings("aa", "1"),
		labels.FromStrings("b", ""),
		labels.FromStrings("__name__", "m", "a", "1"),
	}
	sign := func(i int) int { return min(max(i, -1), 1) }
	for _, x := range sets {
		for _, y := range sets {
			want := sign(labels.Compare(x, y))
			if got := sign(labelpb.CompareZLabels(labelpb.ZLabelsFromPromLabels(x), labelpb.ZLabelsFromPromLabels(y))); got != want {
				t.Errorf("CompareZLabels(%s, %s) = %d, want %d", x, y, got, want)
			}
		}
	}
}
