package querier

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/thanos/pkg/store"

	"github.com/monstackd/monstackd/pkg/config"
)

// newTestAPI serves the querier's API over db, as the supervisor mounts it.
func newTestAPI(t *testing.T, cfg config.QueryConfig, db *tsdb.DB, ext labels.Labels) *httptest.Server {
	t.Helper()
	local := &Local{DB: db, ExternalLabels: func() labels.Labels { return ext }}
	q := New(log.NewNopLogger(), prometheus.NewRegistry(), cfg, local,
		func() []store.Client { return nil },
		Peers{ResponseTimeout: 3 * time.Second})
	r := route.New()
	q.RegisterAPI(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func getData(t *testing.T, u string, data any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("GET %s: %d %s (%v)", u, resp.StatusCode, body, err)
	}
	if err := json.Unmarshal(r.Data, data); err != nil {
		t.Fatalf("GET %s: data %s: %v", u, r.Data, err)
	}
}

func TestStatusFlagsAsStockQuery(t *testing.T) {
	cfg := config.Default().Query
	cfg.Timeout = config.Duration(90 * time.Second)
	cfg.MaxConcurrent = 7
	cfg.PartialResponse = false
	cfg.AutoDownsampling = false
	srv := newTestAPI(t, cfg, openTSDB(t, tsdb.DefaultOptions(), 1, func(int) bool { return false }), labels.EmptyLabels())

	var flags map[string]string
	getData(t, srv.URL+"/status/flags", &flags)
	for name, want := range map[string]string{
		"query.promql-engine":         "prometheus",
		"query.mode":                  "local",
		"query.default-step":          "1s",
		"query.timeout":               "1m30s",
		"query.max-concurrent":        "7",
		"query.max-concurrent-select": "4",
		"query.lookback-delta":        "5m0s",
		"query.replica-label":         "replica",
		"query.partial-response":      "false",
		"query.auto-downsampling":     "false",
		"deduplication.func":          "penalty",
		"store.response-timeout":      "3s",
		// Formatted as kingpin's float list prints them.
		"query.telemetry.request-samples-quantiles": "100,1000,10000,100000,1e+06",
	} {
		if got, ok := flags[name]; !ok || got != want {
			t.Errorf("%s = %q (present: %v), want %q", name, got, ok, want)
		}
	}
}
