package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Root credentials of every test MinIO. The secret is long enough for
// MinIO (8+) and distinctive, so that a test can grep output for it.
const (
	minioAccessKey = "monstackd-e2e"
	minioSecretKey = "e2e-secret-9f3c1a7b"
	minioBucket    = "thanos"
)

// minio is a MinIO server (MINIO_BIN, built by scripts/test-deps.sh) on a
// loopback port with a temporary data dir and one bucket, minioBucket. It is
// killed at the end of the test; stop and restart keep its address and data,
// for tests of a bucket that goes away for a while.
type minio struct {
	t       *testing.T
	bin     string
	dataDir string
	addr    string
	proc    *process
}

// startMinio starts MinIO, waits until it is live and creates minioBucket.
func startMinio(t *testing.T) *minio {
	t.Helper()
	return startMinioAt(t, freeAddr(t))
}

// startMinioAt is startMinio with the S3 API on addr, such as a bridge
// address that daemons in network namespaces reach.
func startMinioAt(t *testing.T, addr string) *minio {
	t.Helper()
	m := &minio{t: t, bin: binPath(t, "MINIO_BIN"), dataDir: t.TempDir(), addr: addr}
	m.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.client().MakeBucket(ctx, minioBucket, miniogo.MakeBucketOptions{}); err != nil {
		t.Fatalf("minio: create bucket %s: %v", minioBucket, err)
	}
	return m
}

func (m *minio) start() {
	m.t.Helper()
	m.proc = startProcess(m.t, "minio", m.bin, []string{
		"MINIO_ROOT_USER=" + minioAccessKey,
		"MINIO_ROOT_PASSWORD=" + minioSecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1", // no colours, no prompts
		// MinIO writes its own config and a tmp dir below HOME otherwise.
		"HOME=" + m.dataDir,
	}, "server", "--quiet", "--address="+m.addr, "--console-address="+freeAddr(m.t), m.dataDir)
	waitHTTP200(m.t, m.endpointURL()+"/minio/health/live", 60*time.Second)
}

// stop ends MinIO (SIGTERM, then waits); the data dir stays for restart.
func (m *minio) stop() {
	m.t.Helper()
	if !m.proc.alive() {
		return
	}
	m.proc.signal(m.t, syscall.SIGTERM)
	m.proc.wait(m.t, 30*time.Second)
}

// restart starts MinIO again on the same address and data dir (stopping it
// first if it runs) and waits until it is live.
func (m *minio) restart() {
	m.t.Helper()
	m.stop()
	m.start()
}

// endpoint is the host:port of the S3 API.
func (m *minio) endpoint() string { return m.addr }

func (m *minio) endpointURL() string { return "http://" + m.addr }

// client is an S3 client of the root user.
func (m *minio) client() *miniogo.Client {
	m.t.Helper()
	c, err := miniogo.New(m.addr, &miniogo.Options{Creds: credentials.NewStaticV4(minioAccessKey, minioSecretKey, "")})
	if err != nil {
		m.t.Fatalf("minio client: %v", err)
	}
	return c
}

// bucketYAML is a Thanos objstore config (bucket.yml) for minioBucket.
func (m *minio) bucketYAML() string {
	return fmt.Sprintf(`type: S3
config:
  bucket: %s
  endpoint: %s
  access_key: %s
  secret_key: %s
  insecure: true
`, minioBucket, m.addr, minioAccessKey, minioSecretKey)
}

// writeBucketYAML writes bucketYAML to path.
func (m *minio) writeBucketYAML(path string) string {
	m.t.Helper()
	if err := os.WriteFile(path, []byte(m.bucketYAML()), 0o600); err != nil {
		m.t.Fatal(err)
	}
	return path
}

// A started MinIO serves the bucket, survives stop and restart with its data,
// and refuses connections while it is stopped.
func TestMinioHarness(t *testing.T) {
	m := startMinio(t)
	ctx := context.Background()
	c := m.client()
	if _, err := c.PutObject(ctx, minioBucket, "probe", strings.NewReader("x"), 1, miniogo.PutObjectOptions{}); err != nil {
		t.Fatalf("put: %v", err)
	}
	m.stop()
	// minio-go retries a refused connection; the deadline ends that.
	down, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.StatObject(down, minioBucket, "probe", miniogo.StatObjectOptions{}); err == nil {
		t.Fatal("stat succeeded while MinIO is stopped")
	}
	m.restart()
	if _, err := c.StatObject(ctx, minioBucket, "probe", miniogo.StatObjectOptions{}); err != nil {
		t.Fatalf("stat after restart: %v", err)
	}
}
