package querier

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/monstackd/monstackd/pkg/config"
)

func TestStoresListsLocalTSDB(t *testing.T) {
	db := openTSDB(t, tsdb.DefaultOptions(), 10, func(int) bool { return false })
	ext := labels.FromStrings("cluster", "eu1", "replica", "a")
	srv := newTestAPI(t, config.Default().Query, db, ext)

	var stores map[string][]struct {
		Name      string              `json:"name"`
		LastCheck time.Time           `json:"lastCheck"`
		LastError *string             `json:"lastError"`
		LabelSets []map[string]string `json:"labelSets"`
		MinTime   int64               `json:"minTime"`
		MaxTime   int64               `json:"maxTime"`
	}
	getData(t, srv.URL+"/stores", &stores)

	sidecars := stores["sidecar"]
	if len(stores) != 1 || len(sidecars) != 1 {
		t.Fatalf("stores %+v, want one sidecar", stores)
	}
	s := sidecars[0]
	if s.Name != localStoreName || s.LastError != nil || time.Since(s.LastCheck) > time.Minute {
		t.Errorf("local store %+v, want %q up and just checked", s, localStoreName)
	}
	if len(s.LabelSets) != 1 || s.LabelSets[0]["cluster"] != "eu1" || s.LabelSets[0]["replica"] != "a" {
		t.Errorf("label sets %v, want the external labels %v", s.LabelSets, ext)
	}
	// openTSDB writes scrapes 0..9, one step apart, into the head.
	if want := (9 * step).Milliseconds(); s.MinTime != 0 || s.MaxTime != want {
		t.Errorf("time range [%d, %d], want [0, %d]", s.MinTime, s.MaxTime, want)
	}
}

func TestLocalTimeRange(t *testing.T) {
	empty := &Local{DB: openTSDB(t, tsdb.DefaultOptions(), 0, nil)}
	if mint, maxt := empty.timeRange(); mint != math.MaxInt64 || maxt != math.MinInt64 {
		t.Errorf("empty TSDB: [%d, %d], want the empty range", mint, maxt)
	}

	// Samples in a block and in the head: the range spans both.
	db := openTSDBStep(t, tsdb.DefaultOptions(), 3, time.Hour, func(int) bool { return false })
	if err := db.CompactHead(tsdb.NewRangeHead(db.Head(), 0, time.Hour.Milliseconds()-1)); err != nil {
		t.Fatal(err)
	}
	if len(db.Blocks()) != 1 {
		t.Fatalf("%d blocks, want 1", len(db.Blocks()))
	}
	l := &Local{DB: db}
	if mint, maxt := l.timeRange(); mint != 0 || maxt != 2*time.Hour.Milliseconds() {
		t.Errorf("block and head: [%d, %d], want [0, %d]", mint, maxt, 2*time.Hour.Milliseconds())
	}
}
