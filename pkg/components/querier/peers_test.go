package querier

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
