// Package e2e runs the built monstackd binary against real peers:
// Debian's node_exporter, blackbox_exporter, Alertmanager and promtool, and MinIO,
// installed by scripts/test-deps.sh (make test-e2e sets the paths).
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func binPath(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run the end-to-end tests through `make test-e2e`", env)
	}
	return p
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	return freeAddrOn(t, "127.0.0.1")
}

// freeAddrOn returns an address of ip with a port that was free a moment ago.
func freeAddrOn(t *testing.T, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects a process' output for failure messages.
type syncBuffer struct {
	mtx sync.Mutex
	b   bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	return s.b.String()
}

// process is a started binary that is killed at the end of the test.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func startProcess(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	return startProcessOwned(t, t, name, bin, env, args...)
}

// startProcessOwned is startProcess for a process that outlives the
// (sub)test t starting it: owner kills it at its end.
func startProcessOwned(t, owner *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	owner.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if owner.Failed() {
			owner.Logf("--- output of %s ---\n%s", name, tail(p.out.String(), 60))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *process) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *process) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatalf("signal %s to %s: %v", s, p.name, err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s", p.name, timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// eventually polls cond until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
}

func httpGet(u string) (int, []byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func waitHTTP200(t *testing.T, u string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, u, func() error {
		code, body, err := httpGet(u)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("status %d: %s", code, body)
		}
		return nil
	})
}

// daemon is a running monstackd.
type daemon struct {
	*process
	http, grpc, dataDir string
}

func startDaemon(t *testing.T, dataDir string, env []string, args ...string) *daemon {
	t.Helper()
	return startDaemonAt(t, freeAddr(t), dataDir, env, args...)
}

// startDaemonAt starts monstackd with its HTTP server on httpAddr, for
// configs that must name it before the start (a self-scrape).
func startDaemonAt(t *testing.T, httpAddr, dataDir string, env []string, args ...string) *daemon {
	t.Helper()
	return startDaemonAddrs(t, httpAddr, freeAddr(t), dataDir, env, args...)
}

// startDaemonAddrs is startDaemonAt with the gRPC address chosen too, for
// configs that name it before the start (a peer's).
func startDaemonAddrs(t *testing.T, httpAddr, grpcAddr, dataDir string, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{http: httpAddr, grpc: grpcAddr, dataDir: dataDir}
	args = append([]string{"--http.address=" + d.http, "--grpc.address=" + d.grpc, "--data.dir=" + dataDir}, args...)
	d.process = startProcess(t, "monstackd", binPath(t, "MONSTACKD_BIN"), env, args...)
	waitHTTP200(t, d.url("/-/ready"), 60*time.Second)
	return d
}

func (d *daemon) url(path string) string { return "http://" + d.http + path }

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
	Values [][]any           `json:"values"`
}

type apiResponse struct {
	Status   string          `json:"status"`
	Data     json.RawMessage `json:"data"`
	Error    string          `json:"error"`
	Warnings []string        `json:"warnings"`
}

func (d *daemon) api(path string, params url.Values) (json.RawMessage, error) {
	code, body, err := httpGet(d.url(path) + "?" + params.Encode())
	if err != nil {
		return nil, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("status %d, body %q: %w", code, body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("status %d: %s", code, r.Error)
	}
	return r.Data, nil
}

// instant runs an instant query and returns the vector.
func (d *daemon) instant(q string, at time.Time) ([]sample, error) {
	params := url.Values{"query": {q}}
	if !at.IsZero() {
		params.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	data, err := d.api("/api/v1/query", params)
	if err != nil {
		return nil, err
	}
	var v struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	if v.ResultType != "vector" {
		return nil, fmt.Errorf("result type %q, want vector", v.ResultType)
	}
	return v.Result, nil
}

// scalarOf runs q, which must return exactly one series, and returns its value.
func (d *daemon) scalarOf(q string, at time.Time) (float64, error) {
	res, err := d.instant(q, at)
	if err != nil {
		return 0, err
	}
	if len(res) != 1 {
		return 0, fmt.Errorf("%s: %d series, want 1: %v", q, len(res), res)
	}
	return strconv.ParseFloat(res[0].Value[1].(string), 64)
}

// metric reads one sample of monstackd's own /metrics.
func (d *daemon) metric(name string) (float64, error) {
	_, body, err := httpGet(d.url("/metrics"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

func mkdir(t *testing.T, parts ...string) string {
	t.Helper()
	p := filepath.Join(parts...)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
