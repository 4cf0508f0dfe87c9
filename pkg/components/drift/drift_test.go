package drift

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	promconfig "github.com/prometheus/prometheus/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const promYAML = `global:
  external_labels: {cluster: c1, replica: %s}
scrape_configs:
  - job_name: node
    static_configs: [{targets: ['a:9100']}]
  - job_name: blackbox
    basic_auth: {username: u, password: %s}
    static_configs: [{targets: ['b:9115']}]
`

func load(t *testing.T, replica, password string) *promconfig.Config {
	t.Helper()
	cfg, err := promconfig.Load(fmt.Sprintf(promYAML, replica, password), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The replica label is not drift; a scrape job's content is, and so is a
// job only one replica has. Secrets are not compared (Prometheus hides
// them when marshalling): nothing secret leaves the host.
func TestComputeAndDiff(t *testing.T) {
	a, err := Compute(load(t, "a", "one"), nil, "replica")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Compute(load(t, "b", "two"), nil, "replica")
	if d := Diff(a, b); len(d) != 0 {
		t.Errorf("replicas differing only in replica label and secret: %v", d)
	}
	c := load(t, "b", "one")
	c.ScrapeConfigs[0].ScrapeInterval *= 2
	c.ScrapeConfigs = c.ScrapeConfigs[:1]
	fc, _ := Compute(c, nil, "replica")
	want := []string{"scrape job blackbox only on this replica", "scrape job node differs"}
	if d := Diff(a, fc); !slices.Equal(d, want) {
		t.Errorf("Diff = %v, want %v", d, want)
	}
	if d := Diff(fc, a); !slices.Equal(d, []string{"scrape job blackbox only on the peer", "scrape job node differs"}) {
		t.Errorf("reverse Diff = %v", d)
	}
}

// A guard fetches the peer's fingerprint over gRPC, sets the drift gauge
// and reports what differs; once the configs agree again the report is nil.
func TestGuardOverGRPC(t *testing.T) {
	peerFP := Fingerprint{"scrape job node": "1", "rule group g": "2"}
	srv := grpc.NewServer()
	Register(srv, func() (Fingerprint, error) { return peerFP, nil })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)

	own := Fingerprint{"scrape job node": "1", "rule group g": "3"}
	var reported error
	reg := prometheus.NewRegistry()
	g, err := New(Options{
		Logger: log.NewNopLogger(), Registerer: reg,
		Own:         func() (Fingerprint, error) { return own, nil },
		Peers:       []string{l.Addr().String()},
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Report:      func(err error) { reported = err },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Check(context.Background())
	if v := testutil.ToFloat64(g.drift.WithLabelValues(l.Addr().String())); v != 1 {
		t.Errorf("monstackd_config_drift = %v, want 1", v)
	}
	if reported == nil || reported.Error() != "config differs from peer "+l.Addr().String()+": rule group g differs" {
		t.Errorf("report %v", reported)
	}
	own["rule group g"] = "2"
	g.Check(context.Background())
	if v := testutil.ToFloat64(g.drift.WithLabelValues(l.Addr().String())); v != 0 || reported != nil {
		t.Errorf("after agreeing: drift %v, report %v", v, reported)
	}
}
