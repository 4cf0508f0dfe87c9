package storegateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/testutil/e2eutil"
)

// The bucket UI's blocks API lists what the last sync fetched, with the
// label flag; it shows no other flag and marks nothing in the bucket.
func TestBlocksWeb(t *testing.T) {
	dir := t.TempDir()
	bdir := filepath.Join(dir, "bucket")
	fs, err := filesystem.NewBucket(bdir)
	if err != nil {
		t.Fatal(err)
	}
	mint := time.Now().Add(-4 * time.Hour).Truncate(2 * time.Hour)
	id, err := e2eutil.CreateBlock(context.Background(), bdir, []labels.Labels{labels.FromStrings("__name__", "m")}, 10,
		mint.UnixMilli(), mint.Add(2*time.Hour).UnixMilli(), labels.FromStrings("replica", "a"), 0, metadata.NoneFunc, nil)
	if err != nil {
		t.Fatal(err)
	}
	reports := make(chan error, 10)
	g, err := New(Options{Logger: log.NewNopLogger(), Registerer: prometheus.NewRegistry(), Bucket: objstore.WrapWithMetrics(fs, nil, "test"),
		Dir: filepath.Join(dir, "sg"), Interval: time.Hour, ReplicaLabel: "replica", Report: func(err error) { reports <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r := route.New()
	g.RegisterWeb(r, "/bucket")
	srv := httptest.NewServer(r)
	defer srv.Close()

	type blocksResp struct {
		Status string `json:"status"`
		Data   struct {
			Label  string          `json:"label"`
			Blocks []metadata.Meta `json:"blocks"`
		} `json:"data"`
	}
	blocks := func(query string) blocksResp {
		t.Helper()
		resp, err := http.Get(srv.URL + "/api/v1/blocks" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var br blocksResp
		if err := json.NewDecoder(resp.Body).Decode(&br); err != nil || br.Status != "success" {
			t.Fatalf("/api/v1/blocks%s: %d %+v %v", query, resp.StatusCode, br, err)
		}
		return br
	}
	if got := blocks(""); len(got.Data.Blocks) != 0 || got.Data.Label != "replica" {
		t.Fatalf("before the first sync: %+v", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := <-reports; err != nil {
		t.Fatalf("first sync: %v", err)
	}
	for _, q := range []string{"", "?view=loaded"} {
		got := blocks(q)
		if len(got.Data.Blocks) != 1 || got.Data.Blocks[0].ULID != id || got.Data.Blocks[0].Thanos.Labels["replica"] != "a" {
			t.Errorf("blocks%s after sync: %+v, want %s with replica=a", q, got.Data.Blocks, id)
		}
	}

	resp, err := http.Get(srv.URL + "/api/v1/status/flags")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var flags struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(b, &flags); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"bucket-web-label": "replica", "disable-admin-operations": "true"}; len(flags.Data) != len(want) ||
		flags.Data["bucket-web-label"] != "replica" || flags.Data["disable-admin-operations"] != "true" {
		t.Errorf("/status/flags: %s, want only %v", b, want)
	}

	resp, err = http.PostForm(srv.URL+"/api/v1/blocks/mark", url.Values{"id": {id.String()}, "action": {"DELETION"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || !strings.Contains(string(b), "disabled") {
		t.Errorf("mark for deletion: %d %s, want refused", resp.StatusCode, b)
	}
	if _, err := os.Stat(filepath.Join(bdir, id.String(), metadata.DeletionMarkFilename)); !os.IsNotExist(err) {
		t.Errorf("deletion mark written: %v", err)
	}

	resp, err = http.Get(srv.URL + "/blocks")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `GLOBAL_PATH_PREFIX="\/bucket"`) || !strings.Contains(string(b), `THANOS_COMPONENT="bucket"`) {
		t.Errorf("/blocks page: %d, want the React app with prefix /bucket and component bucket:\n%.2000s", resp.StatusCode, b)
	}
}
