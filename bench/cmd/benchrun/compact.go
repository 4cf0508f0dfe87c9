package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// compactSide is one setup's bucket in the compact phase.
type compactSide struct {
	name       string
	dir        string
	minio      *proc
	addr       string
	bucketYAML string
}

// runCompactPhase compacts the same history of two replicas (the bucket
// phase's blocks, shipped as replica a and as replica b) twice, each in a
// MinIO of its own: with a stock `thanos compact` (one pass, no --wait) with the
// replicas deduplicated (--deduplication.replica-label=replica
// --deduplication.func=penalty), and with monstackd's compactor, which does
// that by default. Both with no consistency or delete delay, so that the
// sources are gone at the end. It reports the time and CPU each took and
// the bucket's size before and after.
func runCompactPhase(r *report, sc scale, b bins, work string) error {
	dir := filepath.Join(work, "compact")
	end := time.Now().Truncate(historyBlock)
	start := end.Add(-sc.History)
	blocks := int(sc.History / historyBlock)
	log.Printf("compact phase: %d blocks of %d series per replica, 2 replicas", blocks, sc.HistorySeries)
	// Each replica's blocks have IDs of their own, as two TSDBs' would, and
	// b scrapes a third of an interval after a: their chunks differ, as
	// real replicas' do (Thanos' merge passes byte-identical chunks through
	// without decoding them).
	blocksDir := func(replica string) string { return filepath.Join(dir, "blocks-"+replica) }
	for i, replica := range []string{"a", "b"} {
		if err := writeHistory(b.target, blocksDir(replica), sc, start, end, time.Duration(i)*sc.ScrapeInterval/3); err != nil {
			return err
		}
	}
	var sides []*compactSide
	defer func() {
		for _, s := range sides {
			s.minio.kill(syscall.SIGTERM, 30*time.Second)
		}
	}()
	for _, name := range []string{"stock thanos compact", "monstackd"} {
		s := &compactSide{name: name, dir: filepath.Join(dir, strings.Fields(name)[0])}
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return err
		}
		var err error
		if s.minio, s.addr, err = startMinio(b.minio, s.dir); err != nil {
			return err
		}
		sides = append(sides, s)
		if err := makeBucket(s.addr); err != nil {
			return err
		}
		s.bucketYAML = filepath.Join(s.dir, "bucket.yml")
		if err := writeBucketYAML(s.bucketYAML, s.addr); err != nil {
			return err
		}
		for _, replica := range []string{"a", "b"} {
			if err := uploadReplicaBlocks(b.thanos, blocksDir(replica), s.bucketYAML, replica); err != nil {
				return err
			}
		}
	}
	before, err := bucketBytes(sides[0].addr)
	if err != nil {
		return err
	}

	stockWall, stockCPU, err := stockCompact(b, sides[0])
	if err != nil {
		return err
	}
	monWall, monCPU, err := monstackdCompact(b, sides[1])
	if err != nil {
		return err
	}
	r.Figures = append(r.Figures,
		newFigure("compaction of both replicas' history: wall time", "s", "stock thanos compact", []float64{stockWall}, []float64{monWall}, 0),
		newFigure("compaction of both replicas' history: CPU", "s", "stock thanos compact", []float64{stockCPU}, []float64{monCPU}, 0))
	var after [2]float64
	for i, s := range sides {
		n, err := bucketBytes(s.addr)
		if err != nil {
			return err
		}
		after[i] = n
	}
	r.Figures = append(r.Figures, newFigure("bucket size after compaction", "MiB", "stock thanos compact", []float64{after[0]}, []float64{after[1]}, 0))
	r.Notes = append(r.Notes, fmt.Sprintf("compact phase: the bucket held %.1f MiB before compaction (two replicas' copies); after: stock %.1f MiB, monstackd %.1f MiB (%.2f and %.2f of before)",
		before, after[0], after[1], after[0]/before, after[1]/before))
	return nil
}

// uploadReplicaBlocks ships the blocks as replica's shipper would. The
// stock tool is a shipper: it records what it uploaded in dir, and would
// skip those blocks for the next bucket.
func uploadReplicaBlocks(thanos, dir, bucketYAML, replica string) error {
	if err := os.Remove(filepath.Join(dir, "thanos.shipper.json")); err != nil && !os.IsNotExist(err) {
		return err
	}
	o, err := execOutput(thanos, "tools", "bucket", "upload-blocks", "--path="+dir,
		`--label=cluster="bench"`, `--label=replica="`+replica+`"`, "--objstore.config-file="+bucketYAML)
	if err != nil {
		return fmt.Errorf("upload blocks as replica %s: %w: %s", replica, err, o)
	}
	return nil
}

// stockCompact runs one pass of stock thanos compact and returns its wall
// time and CPU seconds.
func stockCompact(b bins, s *compactSide) (wall, cpu float64, err error) {
	logFile, err := os.Create(filepath.Join(s.dir, "compact.log"))
	if err != nil {
		return 0, 0, err
	}
	defer logFile.Close()
	cmd := exec.Command(b.thanos, "compact", "--objstore.config-file="+s.bucketYAML,
		"--data-dir="+filepath.Join(s.dir, "data"), "--http-address=127.0.0.1:0",
		"--deduplication.replica-label=replica", "--deduplication.func=penalty",
		"--consistency-delay=0s", "--delete-delay=0s")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	begin := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("thanos compact: %w (log %s)", err, logFile.Name())
	}
	wall = time.Since(begin).Seconds()
	cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return wall, cpu, nil
}

// monstackdCompact starts a daemon with nothing to scrape whose compactor
// runs its first pass at once, and returns the time and CPU until that
// pass completed (the daemon's start included: a few milliseconds).
func monstackdCompact(b bins, s *compactSide) (wall, cpu float64, err error) {
	promYAML := filepath.Join(s.dir, "prometheus.yml")
	if err := os.WriteFile(promYAML, []byte("global:\n  external_labels:\n    cluster: bench\nscrape_configs: []\n"), 0o644); err != nil {
		return 0, 0, err
	}
	a, err := addrs(2)
	if err != nil {
		return 0, 0, err
	}
	m, err := newMonstackd(b, filepath.Join(s.dir, "monstackd"), "monstackd", "replica-a",
		"prometheus:\n  config_file: "+promYAML+"\nbucket:\n  config_file: "+s.bucketYAML+
			"\ncompactor:\n  interval: 1h\n  consistency_delay: 0s\n  delete_delay: 0s\n", a[0], a[1])
	if err != nil {
		return 0, 0, err
	}
	begin := time.Now()
	if err := m.start(); err != nil {
		return 0, 0, err
	}
	defer stopSetups(m)
	for {
		v, err := metricSum(m.metrics, "thanos_compact_iterations_total")
		if err == nil && v >= 1 {
			wall = time.Since(begin).Seconds()
			break
		}
		if time.Since(begin) > 30*time.Minute {
			return 0, 0, fmt.Errorf("monstackd's compactor did not finish a pass in 30m (log %s)", m.tsdb.logFile)
		}
		// Not faster: each scrape of the daemon's /metrics costs CPU the
		// figure would count.
		time.Sleep(250 * time.Millisecond)
	}
	cpu, err = cpuSeconds(m.tsdb.pid())
	return wall, cpu, err
}

// bucketBytes is the size of every object in the phase's bucket, in MiB.
func bucketBytes(addr string) (float64, error) {
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(minioUser, minioSecret, "")})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n int64
	for o := range c.ListObjects(ctx, bucketName, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			return 0, o.Err
		}
		n += o.Size
	}
	return float64(n) / (1 << 20), nil
}
