package querier

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/thanos/pkg/store/labelpb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// A peer is up when its last Info call succeeded; the others are reported
// by name, and a report with every peer up is nil.
func TestPeerHealth(t *testing.T) {
	var reported error
	h := newPeerHealth(prometheus.NewRegistry(), Peers{Endpoints: []string{"b:10901", "c:10901"}, Report: func(err error) { reported = err }})
	up := func(peer string) float64 { return testutil.ToFloat64(h.up.WithLabelValues(peer)) }

	h.update(nil)
	if up("b:10901") != 0 || reported == nil || !strings.Contains(reported.Error(), "peer b:10901: not checked yet") {
		t.Fatalf("before the first update: up %v, report %v", up("b:10901"), reported)
	}
	h.update(map[string]error{"b:10901": nil, "c:10901": errors.New("connection refused")})
	if up("b:10901") != 1 || up("c:10901") != 0 {
		t.Errorf("up b=%v c=%v, want 1 and 0", up("b:10901"), up("c:10901"))
	}
	if reported == nil || reported.Error() != "peer c:10901: unreachable: connection refused" {
		t.Errorf("report %v", reported)
	}
	h.update(map[string]error{"b:10901": nil, "c:10901": nil})
	if reported != nil || up("c:10901") != 1 {
		t.Errorf("all up: report %v, up c=%v", reported, up("c:10901"))
	}
}

// What the gRPC codec decodes from a peer stays intact after the receive
// buffer goes back to gRPC's pool and is handed out again: Thanos' chunks
// and labels point into that buffer (third_party/_thanos/README.md).
func TestPeerCodecKeepsDecodedSeries(t *testing.T) {
	codec := encoding.GetCodecV2("proto")
	// Large enough for gRPC to pool its buffer (small ones are not).
	chunk := strings.Repeat("0123456789abcdef", 1024)
	in := storepb.NewSeriesResponse(&storepb.Series{
		Labels: labelpb.ZLabelsFromPromLabels(labels.FromStrings("__name__", "up", "job", "node")),
		Chunks: []storepb.AggrChunk{{MinTime: 1, MaxTime: 2, Raw: &storepb.Chunk{Type: storepb.Chunk_XOR, Data: []byte(chunk)}}},
	})
	data, err := codec.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	size := data.Len()
	var out storepb.SeriesResponse
	if err := codec.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	data.Free()
	// Whatever went back to the pool is handed out and overwritten.
	for i := 0; i < 64; i++ {
		b := mem.DefaultBufferPool().Get(size)
		for j := range *b {
			(*b)[j] = 'x'
		}
	}
	s := out.GetSeries()
	if got := labelpb.ZLabelsToPromLabels(s.Labels); got.String() != `{__name__="up", job="node"}` {
		t.Errorf("labels after the buffer's reuse: %s", got)
	}
	if got := string(s.Chunks[0].Raw.Data); got != chunk {
		t.Errorf("chunk data after the buffer's reuse: %.40q...", got)
	}
}
