package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// mountTmpfs mounts a tmpfs of size at a new directory; it skips the test
// only when mounting is refused (CI runs as root).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fill writes a file that leaves about leave bytes free under dir.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for freeBytes(t, dir) > leave+int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
	return path
}

func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// A full disk pauses appends and makes the daemon unready; it keeps serving
// queries and gRPC, loses nothing already written and resumes when space
// returns. A start on a full disk is refused with a clear error and leaves
// the data directory as it was.
func TestDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, "96m")
	dir := filepath.Join(mnt, "conf")
	dataDir := filepath.Join(mnt, "data")
	mkdir(t, dir)
	httpAddr := freeAddr(t)
	writeFile(t, filepath.Join(dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\ntsdb:\n  min_free_space: 24MiB\n")
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(
		"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: [%q]\n", httpAddr))
	args := []string{"--config.file=" + filepath.Join(dir, "monstack.yml")}
	d := startDaemonAt(t, httpAddr, dataDir, nil, args...)

	countAt := func(at time.Time) float64 {
		t.Helper()
		v, err := d.scalarOf(`count_over_time(up{job="self"}[10m])`, at)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	eventually(t, 60*time.Second, "10 self-scrapes", func() error {
		if v, err := d.scalarOf(`count_over_time(up{job="self"}[10m])`, time.Time{}); err != nil || v < 10 {
			return fmt.Errorf("%v %v", v, err)
		}
		return nil
	})
	t0 := time.Now()
	n0 := countAt(t0)

	filler := fill(t, mnt, 16<<20)
	eventually(t, 10*time.Second, "/-/ready to report the paused appends", func() error {
		code, body, err := httpGet(d.url("/-/ready"))
		if err != nil {
			return err
		}
		if code != 503 || !strings.Contains(string(body), "tsdb/disk: not ready: appends paused") {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	if v, err := d.metric("monstackd_tsdb_appends_paused"); err != nil || v != 1 {
		t.Errorf("monstackd_tsdb_appends_paused = %v, %v; want 1", v, err)
	}
	// Several scrape intervals on a full disk: the process stays, queries
	// and gRPC answer, what was written is all there.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if !d.alive() {
			t.Fatal("monstackd exited on a full disk")
		}
		if got := countAt(t0); got != n0 {
			t.Fatalf("samples before the disk filled: %v, were %v", got, n0)
		}
		time.Sleep(500 * time.Millisecond)
	}
	conn, err := grpc.NewClient(d.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	cancel()
	conn.Close()
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC on a full disk: %v %v", resp.GetStatus(), err)
	}

	// Space returns: appends resume, the daemon is ready again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitHTTP200(t, d.url("/-/ready"), 10*time.Second)
	resumed := time.Now()
	eventually(t, 10*time.Second, "scrapes after the disk freed", func() error {
		v, err := d.scalarOf(`count_over_time(up{job="self"}[10m])`, time.Time{})
		if err != nil {
			return err
		}
		if v <= n0 {
			return fmt.Errorf("%v samples, %v before", v, n0)
		}
		return nil
	})
	if got := countAt(t0); got != n0 {
		t.Errorf("samples before the disk filled: %v after resuming, were %v", got, n0)
	}
	t.Logf("resumed %s after the space returned", time.Since(resumed).Round(time.Millisecond))

	// A start on a full disk is refused before the TSDB is touched.
	d.signal(t, syscall.SIGTERM)
	if code := d.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	before := listTree(t, dataDir)
	filler = fill(t, mnt, 16<<20)
	p := startProcess(t, "monstackd", binPath(t, "MONSTACKD_BIN"), nil,
		append([]string{"--http.address=" + freeAddr(t), "--grpc.address=" + freeAddr(t), "--data.dir=" + dataDir}, args...)...)
	if code := p.wait(t, 30*time.Second); code == 0 {
		t.Fatal("started on a full disk")
	}
	if out := p.out.String(); !strings.Contains(out, "not enough free disk space") || !strings.Contains(out, "tsdb.min_free_space") {
		t.Errorf("start on a full disk: no clear error:\n%s", out)
	}
	if after := listTree(t, dataDir); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("data dir changed by the refused start:\nbefore %v\nafter  %v", before, after)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemonAt(t, httpAddr, dataDir, nil, args...)
	if v, err := d2.scalarOf(`count_over_time(up{job="self"}[10m])`, t0); err != nil || v != n0 {
		t.Errorf("after restarts: %v samples before the disk filled, were %v (%v)", v, n0, err)
	}
}
