package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	miniogo "github.com/minio/minio-go/v7"
	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/thanos/pkg/block/metadata"
)

// shipperSetup is a monstackd replica-a shipping to a real MinIO, with
// synthetic completed blocks in its TSDB directory before it starts.
type shipperSetup struct {
	m        *minio
	dir      string
	dataDir  string
	tsdbDir  string
	args     []string
	httpAddr string
	ids      []ulid.ULID
}

func newShipperSetup(t *testing.T, m *minio, blocks int) *shipperSetup {
	t.Helper()
	s := &shipperSetup{m: m, dir: t.TempDir(), httpAddr: freeAddr(t)}
	s.dataDir = filepath.Join(s.dir, "data")
	s.tsdbDir = mkdir(t, s.dataDir, "tsdb")
	bucketFile := m.writeBucketYAML(filepath.Join(s.dir, "bucket.yml"))
	writeFile(t, filepath.Join(s.dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\nbucket:\n  config_file: "+bucketFile+"\n")
	writeFile(t, filepath.Join(s.dir, "prometheus.yml"), fmt.Sprintf(
		"global:\n  scrape_interval: 1s\n  external_labels: {cluster: e2e}\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: [%q]\n", s.httpAddr))
	s.args = []string{"--config.file=" + filepath.Join(s.dir, "monstack.yml"), "--role=replica-a"}
	start := time.Now().Add(-10 * time.Hour).Truncate(2 * time.Hour)
	for i := 0; i < blocks; i++ {
		mint := start.Add(time.Duration(i) * 2 * time.Hour)
		s.ids = append(s.ids, writeTSDBBlock(t, s.tsdbDir, mint, 50, 120))
	}
	return s
}

// writeTSDBBlock writes a 2h block from mint into a TSDB directory as the
// TSDB writes it: no Thanos labels, no source yet.
func writeTSDBBlock(t *testing.T, dir string, mint time.Time, nSeries, nSamples int) ulid.ULID {
	t.Helper()
	id := writeBlock(t, dir, blockSpec{mint: mint, maxt: mint.Add(2 * time.Hour), nSeries: nSeries, nSamples: nSamples})
	bdir := filepath.Join(dir, id.String())
	meta, err := metadata.ReadFromDir(bdir)
	if err != nil {
		t.Fatal(err)
	}
	meta.Thanos = metadata.Thanos{}
	if err := meta.WriteToDir(log.NewNopLogger(), bdir); err != nil {
		t.Fatal(err)
	}
	return id
}

// bucketBlocks lists the block directories in MinIO and, for each, its objects.
func bucketBlocks(t *testing.T, m *minio) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string][]string{}
	for obj := range m.client().ListObjects(ctx, minioBucket, miniogo.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list bucket: %v", obj.Err)
		}
		dir, rest, _ := strings.Cut(obj.Key, "/")
		if _, err := ulid.Parse(dir); err != nil {
			continue
		}
		out[dir] = append(out[dir], rest)
	}
	return out
}

// uploadedOnce checks that every block is in the bucket, complete, once,
// with the replica's external labels and source sidecar.
func (s *shipperSetup) uploadedOnce(t *testing.T) error {
	t.Helper()
	got := bucketBlocks(t, s.m)
	for _, id := range s.ids {
		objs := got[id.String()]
		sort.Strings(objs)
		if !contains(objs, "meta.json") || !contains(objs, "index") {
			return fmt.Errorf("block %s incomplete in the bucket: %v", id, objs)
		}
		r, err := s.m.client().GetObject(context.Background(), minioBucket, id.String()+"/meta.json", miniogo.GetObjectOptions{})
		if err != nil {
			return err
		}
		meta, err := metadata.Read(r)
		if err != nil {
			return err
		}
		if meta.Thanos.Labels["replica"] != "a" || meta.Thanos.Labels["cluster"] != "e2e" || meta.Thanos.Source != metadata.SidecarSource {
			return fmt.Errorf("block %s meta: labels %v source %q", id, meta.Thanos.Labels, meta.Thanos.Source)
		}
	}
	if len(got) != len(s.ids) {
		return fmt.Errorf("%d blocks in the bucket, want %d", len(got), len(s.ids))
	}
	return nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// MinIO down at start and for a while: the daemon starts, ingests and
// answers local queries, reports the pending blocks; once MinIO is back
// every block is uploaded, once, none missing.
func TestShipperMinioOutage(t *testing.T) {
	m := startMinio(t)
	s := newShipperSetup(t, m, 3)
	m.stop()
	d := startDaemonAt(t, s.httpAddr, s.dataDir, nil, s.args...)
	eventually(t, 60*time.Second, "pending uploads reported", func() error {
		_, body, err := httpGet(d.url("/-/ready"))
		if err != nil {
			return err
		}
		if !strings.Contains(string(body), "shipper: degraded: 3 blocks pending upload") {
			return fmt.Errorf("%s", body)
		}
		if v, err := d.metric("monstackd_shipper_pending_blocks"); err != nil || v != 3 {
			return fmt.Errorf("pending metric %v %v", v, err)
		}
		return nil
	})
	var before float64
	eventually(t, 30*time.Second, "local queries while the bucket is down", func() error {
		v, err := d.scalarOf(`count_over_time(up{job="self"}[10m])`, time.Time{})
		before = v
		return err
	})
	m.restart()
	// The shipper retries with backoff (5s, 10s, ...).
	eventually(t, 90*time.Second, "every block uploaded once", func() error { return s.uploadedOnce(t) })
	eventually(t, 30*time.Second, "pending cleared", func() error {
		if v, err := d.metric("monstackd_shipper_pending_blocks"); err != nil || v != 0 {
			return fmt.Errorf("pending metric %v %v", v, err)
		}
		return nil
	})
	if v, err := d.metric("thanos_shipper_uploads_total"); err != nil || v != 3 {
		t.Errorf("thanos_shipper_uploads_total = %v (%v), want 3", v, err)
	}
	after, err := d.scalarOf(`count_over_time(up{job="self"}[10m])`, time.Time{})
	if err != nil || after <= before {
		t.Errorf("ingestion during the outage: %v samples after, %v before (%v)", after, before, err)
	}
	// A restart uploads nothing again (thanos.shipper.json).
	d.signal(t, 15)
	if code := d.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	d = startDaemonAt(t, s.httpAddr, s.dataDir, nil, s.args...)
	eventually(t, 30*time.Second, "a sync after the restart", func() error {
		if v, err := d.metric("thanos_shipper_dir_syncs_total"); err != nil || v < 1 {
			return fmt.Errorf("%v %v", v, err)
		}
		return nil
	})
	if v, err := d.metric("thanos_shipper_uploads_total"); err != nil || v != 0 {
		t.Errorf("uploads after a restart: %v (%v), want 0", v, err)
	}
	if err := s.uploadedOnce(t); err != nil {
		t.Error(err)
	}
	// The blocks are stock Thanos blocks: stock thanos verifies and lists
	// them, and so does monstackd's own tool.
	bucketFile := filepath.Join(s.dir, "bucket.yml")
	thanos := binPath(t, "THANOS_BIN")
	if code, out, errOut := runBin(t, thanos, "tools", "bucket", "verify", "--objstore.config-file="+bucketFile); code != 0 || strings.Contains(errOut, "level=warn") {
		t.Errorf("thanos tools bucket verify: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runBin(t, thanos, "tools", "bucket", "ls", "--objstore.config-file="+bucketFile)
	for _, id := range s.ids {
		if code != 0 || !strings.Contains(out+errOut, id.String()) {
			t.Errorf("thanos tools bucket ls lacks %s: exit %d\n%s%s", id, code, out, errOut)
		}
	}
	if code, out, errOut := runBin(t, binPath(t, "MONSTACKD_BIN"), "tools", "bucket", "verify", "--objstore.config-file="+bucketFile); code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Errorf("monstackd tools bucket verify: exit %d\n%s%s", code, out, errOut)
	}
}

// A SIGKILL in the middle of an upload: a proxy in front of MinIO holds the
// PUT of the block's meta.json, after its chunks and index went through, and
// the daemon is killed while it waits. The bucket then holds a partial block
// that no query may see; the restarted daemon uploads the block again,
// completely and once, and queries count its samples once.
func TestShipperSIGKILLMidUpload(t *testing.T) {
	m := startMinio(t)
	s := newShipperSetup(t, m, 1)
	id := s.ids[0].String()
	p := newStallProxy(t, m, id+"/meta.json")
	writeFile(t, filepath.Join(s.dir, "bucket.yml"), strings.Replace(m.bucketYAML(), m.endpoint(), p.addr, 1))

	d := startDaemonAt(t, s.httpAddr, s.dataDir, nil, s.args...)
	select {
	case <-p.stalled:
	case <-time.After(60 * time.Second):
		t.Fatal("the upload never reached meta.json")
	}
	partial := bucketBlocks(t, m)[id]
	sort.Strings(partial)
	if !contains(partial, "index") || !contains(partial, "chunks/000001") || contains(partial, "meta.json") {
		t.Fatalf("bucket before the kill: %v, want chunks and index without meta.json", partial)
	}
	d.signal(t, syscall.SIGKILL)
	d.wait(t, 10*time.Second)

	// Restarted with meta.json still held: the partial block stays out of
	// the store gateway, and the local copy answers alone.
	d = startDaemonAt(t, s.httpAddr, s.dataDir, nil, s.args...)
	at := time.UnixMilli(mustMeta(t, s.tsdbDir, id).MaxTime)
	q := `sum(count_over_time(e2e_bucket_metric[2h]))`
	var local float64
	eventually(t, 30*time.Second, "the block answered locally", func() error {
		v, err := d.scalarOf(q, at)
		local = v
		return err
	})
	if local <= 0 {
		t.Fatalf("%s = %v before the upload", q, local)
	}
	eventually(t, 60*time.Second, "a store gateway sync that skips the partial block", func() error {
		if v, err := d.metric("thanos_blocks_meta_syncs_total"); err != nil || v < 1 {
			return fmt.Errorf("syncs %v %v", v, err)
		}
		return nil
	})
	if v, err := d.metric("thanos_bucket_store_blocks_loaded"); err != nil || v != 0 {
		t.Errorf("store gateway loaded %v blocks (%v) from a bucket with only a partial one", v, err)
	}

	p.release()
	eventually(t, 90*time.Second, "the block uploaded once after the restart", func() error { return s.uploadedOnce(t) })
	if v, err := d.metric("thanos_shipper_uploads_total"); err != nil || v != 1 {
		t.Errorf("thanos_shipper_uploads_total = %v (%v), want 1", v, err)
	}
	eventually(t, 30*time.Second, "the uploaded block loaded by the store gateway", func() error {
		if v, err := d.metric("thanos_bucket_store_blocks_loaded"); err != nil || v != 1 {
			return fmt.Errorf("blocks loaded %v %v", v, err)
		}
		return nil
	})
	if v, err := d.scalarOf(q, at); err != nil || v != local {
		t.Errorf("%s = %v (%v) with the block local and in the bucket, want %v as before", q, v, err, local)
	}
}

// stallProxy forwards to MinIO but holds PUTs of one object until released
// or until the client goes away.
type stallProxy struct {
	addr    string
	stalled chan struct{} // closed when the held PUT arrives
	release func()
}

func newStallProxy(t *testing.T, m *minio, object string) *stallProxy {
	t.Helper()
	target, err := url.Parse(m.endpointURL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &stallProxy{stalled: make(chan struct{})}
	var once, stallOnce sync.Once
	released := make(chan struct{})
	p.release = func() { once.Do(func() { close(released) }) }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/"+object) {
			stallOnce.Do(func() { close(p.stalled) })
			select {
			case <-released:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { p.release(); srv.Close() })
	return p
}

func mustMeta(t *testing.T, tsdbDir, id string) *metadata.Meta {
	t.Helper()
	meta, err := metadata.ReadFromDir(filepath.Join(tsdbDir, id))
	if err != nil {
		t.Fatal(err)
	}
	return meta
}
