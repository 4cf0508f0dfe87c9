package sidecar

// The StoreAPI converts series labels with Thanos' labelpb, which monstackd
// builds with copying conversions for Prometheus' string labels
// (third_party/_thanos).

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/thanos/pkg/store/labelpb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
)

func TestZLabelsRoundTrip(t *testing.T) {
	for _, ls := range []labels.Labels{
		labels.EmptyLabels(),
		labels.FromStrings("__name__", "up"),
		labels.FromStrings("__name__", "http_requests_total", "job", "api", "replica", "a", "status", "500"),
	} {
		zl := labelpb.ZLabelsFromPromLabels(ls)
		if len(zl) != ls.Len() {
			t.Fatalf("%s: %d ZLabels, want %d", ls, len(zl), ls.Len())
		}
		i := 0
		ls.Range(func(l labels.Label) {
			if zl[i].Name != l.Name || zl[i].Value != l.Value {
				t.Errorf("%s: ZLabel %d is %s=%q", ls, i, zl[i].Name, zl[i].Value)
			}
			i++
		})
		if back := labelpb.ZLabelsToPromLabels(zl); !labels.Equal(back, ls) {
			t.Errorf("round trip of %s gave %s", ls, back)
		}
	}
}

// ZLabels unmarshalled from a StoreAPI response point into the message's
// buffer; labels made from them must not change when the buffer is reused.
func TestZLabelsFromProtobufOutliveBuffer(t *testing.T) {
	want := labels.FromStrings("__name__", "up", "instance", "host-1:9100", "job", "node")
	buf, err := (&storepb.Series{Labels: labelpb.ZLabelsFromPromLabels(want)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var s storepb.Series
	if err := s.Unmarshal(buf); err != nil {
		t.Fatal(err)
	}
	got := labelpb.ZLabelsToPromLabels(s.Labels)
	if !labels.Equal(got, want) {
		t.Fatalf("unmarshalled %s, want %s", got, want)
	}
	for i := range buf {
		buf[i] = 'x'
	}
	if !labels.Equal(got, want) {
		t.Errorf("after the buffer was overwritten: %s, want %s", got, want)
	}
	if got.Get("job") != "node" {
		t.Errorf("Get(job) = %q", got.Get("job"))
	}
}
