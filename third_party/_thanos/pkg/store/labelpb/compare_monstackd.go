// Copyright (c) The Thanos Authors.
// Licensed under the Apache License 2.0.

// Added by monstackd (third_party/_thanos/README.md): with string labels
// ZLabelsToPromLabels copies, and the series merges compared two copies per
// comparison. This compares the protobuf labels in place.

package labelpb

// CompareZLabels orders two sorted label sets as labels.Compare orders the
// same sets converted to labels.Labels: by the first differing name, then
// value, then the shorter set first.
func CompareZLabels(a, b []ZLabel) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i].Name != b[i].Name {
			if a[i].Name < b[i].Name {
				return -1
			}
			return 1
		}
		if a[i].Value != b[i].Value {
			if a[i].Value < b[i].Value {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}
