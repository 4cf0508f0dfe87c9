package e2e

import (
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
	"syscall"
	"testing"
	"time"
)

const rulesYAML = `groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels:
          severity: warning
      - record: job:up:sum
        expr: sum by (job) (up)
`

func prometheusYAML(nodeAddr, amAddr string, extraJobs string) string {
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels:
    cluster: e2e
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [%q]
%s`, amAddr, nodeAddr, extraJobs)
}

// notifySocket listens where monstackd sends sd_notify messages.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

func expectNotify(t *testing.T, msgs <-chan string, want string) {
	t.Helper()
	select {
	case m := <-msgs:
		if !strings.Contains(m, want) {
			t.Fatalf("sd_notify message %q, want %q", m, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no sd_notify %s", want)
	}
}

func postReload(t *testing.T, d *daemon) (int, string) {
	t.Helper()
	resp, err := http.Post(d.url("/-/reload"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSingleHost(t *testing.T) {
	dir := t.TempDir()

	nodeAddr := freeAddr(t)
	startProcess(t, "node_exporter", binPath(t, "NODE_EXPORTER_BIN"), nil, "--web.listen-address="+nodeAddr, "--no-collector.systemd")
	waitHTTP200(t, "http://"+nodeAddr+"/metrics", 30*time.Second)

	amAddr := freeAddr(t)
	writeFile(t, filepath.Join(dir, "alertmanager.yml"), "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
	startProcess(t, "alertmanager", binPath(t, "ALERTMANAGER_BIN"), nil,
		"--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+mkdir(t, dir, "am"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=")
	waitHTTP200(t, "http://"+amAddr+"/-/ready", 30*time.Second)

	promFile := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promFile, prometheusYAML(nodeAddr, amAddr, ""))
	writeFile(t, filepath.Join(dir, "rules.yml"), rulesYAML)
	monstackFile := filepath.Join(dir, "monstack.yml")
	// A short resend delay: the first alert is sent before the Alertmanager is discovered.
	writeFile(t, monstackFile, "prometheus:\n  config_file: prometheus.yml\nrules:\n  resend_delay: 1s\n")
	dataDir := filepath.Join(dir, "data")

	sock, notifications := notifySocket(t)
	d := startDaemon(t, dataDir, []string{"NOTIFY_SOCKET=" + sock}, "--config.file="+monstackFile, "--role=replica-a", "--web.enable-lifecycle")
	expectNotify(t, notifications, "READY=1")

	t.Run("GOMEMLIMIT follows the memory available", func(t *testing.T) {
		limit, err := d.metric("go_gc_gomemlimit_bytes")
		if err != nil {
			t.Fatal(err)
		}
		// No cgroup limit here: 90% of the machine's memory, as Prometheus sets it.
		if total := memTotal(t); limit <= 0 || limit > total {
			t.Errorf("GOMEMLIMIT %g, want a limit at most MemTotal %g", limit, total)
		}
	})

	t.Run("up through the query API", func(t *testing.T) {
		eventually(t, 30*time.Second, `up{job="node"} == 1`, func() error {
			res, err := d.instant(`up{job="node"} == 1`, time.Time{})
			if err != nil {
				return err
			}
			if len(res) != 1 {
				return fmt.Errorf("%d series: %v", len(res), res)
			}
			m := res[0].Metric
			if m["instance"] != nodeAddr || m["cluster"] != "e2e" {
				return fmt.Errorf("labels %v: want instance=%s and the external label cluster=e2e", m, nodeAddr)
			}
			if _, ok := m["replica"]; ok {
				return fmt.Errorf("labels %v: the querier must deduplicate the replica label away", m)
			}
			return nil
		})
	})

	t.Run("up through promtool", func(t *testing.T) {
		out, err := exec.Command(binPath(t, "PROMTOOL_BIN"), "query", "instant", d.url(""), `up{job="node"}`).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool query instant: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), `job="node"`) || !strings.Contains(string(out), "=> 1 @") {
			t.Fatalf("promtool output %q: want the node job's up == 1", out)
		}
	})

	t.Run("range query returns the scraped samples", func(t *testing.T) {
		// Wait until 10 scrapes are in, then ask for the last 5s of them at 1s
		// resolution: every step must have a point.
		eventually(t, 30*time.Second, "10 scrapes", func() error {
			n, err := d.scalarOf(`count_over_time(up{job="node"}[1m])`, time.Time{})
			if err != nil || n < 10 {
				return fmt.Errorf("%v samples, err %v", n, err)
			}
			return nil
		})
		end := time.Now()
		data, err := d.api("/api/v1/query_range", url.Values{
			"query": {`up{job="node"}`},
			"start": {strconv.FormatInt(end.Add(-5*time.Second).Unix(), 10)},
			"end":   {strconv.FormatInt(end.Unix(), 10)},
			"step":  {"1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.ResultType != "matrix" || len(m.Result) != 1 {
			t.Fatalf("got %s with %d series, want one matrix series", m.ResultType, len(m.Result))
		}
		if n := len(m.Result[0].Values); n != 6 {
			t.Fatalf("%d points from %s to %s at step 1s, want 6", n, end.Add(-5*time.Second).Format(time.TimeOnly), end.Format(time.TimeOnly))
		}
		for _, v := range m.Result[0].Values {
			if v[1] != "1" {
				t.Fatalf("point %v: want 1", v)
			}
		}
	})

	t.Run("series, labels, label values, metadata", func(t *testing.T) {
		data, err := d.api("/api/v1/label/job/values", nil)
		if err != nil || !strings.Contains(string(data), `"node"`) {
			t.Fatalf("label values of job: %s, %v", data, err)
		}
		data, err = d.api("/api/v1/series", url.Values{"match[]": {`up`}})
		if err != nil || !strings.Contains(string(data), nodeAddr) {
			t.Fatalf("series: %s, %v", data, err)
		}
		data, err = d.api("/api/v1/labels", nil)
		if err != nil || !strings.Contains(string(data), `"instance"`) {
			t.Fatalf("labels: %s, %v", data, err)
		}
		data, err = d.api("/api/v1/metadata", url.Values{"metric": {"node_load1"}})
		if err != nil || !strings.Contains(string(data), "gauge") {
			t.Fatalf("metadata of node_load1: %s, %v", data, err)
		}
	})

	t.Run("alert reaches Alertmanager without the replica label", func(t *testing.T) {
		eventually(t, 30*time.Second, "AlwaysFiring in Alertmanager", func() error {
			_, body, err := httpGet("http://" + amAddr + "/api/v2/alerts")
			if err != nil {
				return err
			}
			var alerts []struct {
				Labels map[string]string `json:"labels"`
			}
			if err := json.Unmarshal(body, &alerts); err != nil {
				return err
			}
			for _, a := range alerts {
				if a.Labels["alertname"] != "AlwaysFiring" {
					continue
				}
				if _, ok := a.Labels["replica"]; ok {
					return fmt.Errorf("alert labels %v still carry replica", a.Labels)
				}
				if a.Labels["cluster"] != "e2e" {
					return fmt.Errorf("alert labels %v: want the external label cluster=e2e", a.Labels)
				}
				return nil
			}
			return fmt.Errorf("no AlwaysFiring among %d alerts", len(alerts))
		})
	})

	t.Run("SIGHUP adds a scrape job without a restart", func(t *testing.T) {
		pid := d.cmd.Process.Pid
		writeFile(t, promFile, prometheusYAML(nodeAddr, amAddr, fmt.Sprintf(`  - job_name: self
    static_configs:
      - targets: [%q]
`, d.http)))
		d.signal(t, syscall.SIGHUP)
		eventually(t, 30*time.Second, `up{job="self"} == 1`, func() error {
			v, err := d.scalarOf(`up{job="self"}`, time.Time{})
			if err != nil || v != 1 {
				return fmt.Errorf("value %v, err %v", v, err)
			}
			return nil
		})
		if !d.alive() || d.cmd.Process.Pid != pid {
			t.Fatal("monstackd restarted")
		}
		if v, err := d.metric("prometheus_config_last_reload_successful"); err != nil || v != 1 {
			t.Fatalf("prometheus_config_last_reload_successful = %v, %v; want 1", v, err)
		}
	})

	t.Run("SIGHUP with a broken file keeps the old config", func(t *testing.T) {
		writeFile(t, promFile, "scrape_configs:\n  - job_name: broken\n    scrape_interval: 1x\n")
		d.signal(t, syscall.SIGHUP)
		eventually(t, 15*time.Second, "failed reload reported", func() error {
			v, err := d.metric("prometheus_config_last_reload_successful")
			if err != nil || v != 0 {
				return fmt.Errorf("prometheus_config_last_reload_successful = %v, %v; want 0", v, err)
			}
			return nil
		})
		// Both jobs are still scraped: the old configuration runs on.
		before, err := d.scalarOf(`count_over_time(up{job="self"}[1h])`, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 15*time.Second, "scraping to go on", func() error {
			after, err := d.scalarOf(`count_over_time(up{job="self"}[1h])`, time.Time{})
			if err != nil || after < before+2 {
				return fmt.Errorf("samples of job self %v -> %v (err %v)", before, after, err)
			}
			return nil
		})
		if _, err := d.scalarOf(`up{job="node"}`, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if !d.alive() {
			t.Fatal("monstackd exited on a broken config")
		}

		// /-/reload reports the same failure to its caller, then succeeds once the file is fixed.
		if code, body := postReload(t, d); code != http.StatusInternalServerError || !strings.Contains(body, promFile) {
			t.Fatalf("POST /-/reload with a broken file: %d %q, want 500 naming %s", code, body, promFile)
		}
		writeFile(t, promFile, prometheusYAML(nodeAddr, amAddr, ""))
		if code, body := postReload(t, d); code != http.StatusOK {
			t.Fatalf("POST /-/reload: %d %q, want 200", code, body)
		}
	})

	t.Run("SIGTERM, restart, WAL replay loses no sample", func(t *testing.T) {
		at := time.Now()
		const q = `count_over_time(up{job="node"}[1h])`
		before, err := d.scalarOf(q, at)
		if err != nil {
			t.Fatal(err)
		}
		if before < 5 {
			t.Fatalf("only %v samples before shutdown", before)
		}
		d.signal(t, syscall.SIGTERM)
		if code := d.wait(t, 10*time.Second); code != 0 {
			t.Fatalf("exit code %d after SIGTERM, want 0", code)
		}
		expectNotify(t, notifications, "STOPPING=1")

		d2 := startDaemon(t, dataDir, nil, "--config.file="+monstackFile, "--role=replica-a", "--web.enable-lifecycle")
		after, err := d2.scalarOf(q, at)
		if err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Fatalf("samples of up{job=\"node\"} up to %s: %v before the restart, %v after", at.Format(time.RFC3339Nano), before, after)
		}
		_, body, err := httpGet(d2.url("/prometheus/api/v1/status/walreplay"))
		if err != nil || !strings.Contains(string(body), `"success"`) {
			t.Fatalf("walreplay status: %s, %v", body, err)
		}
	})
}

// memTotal is the machine's memory, or the cgroup's limit when lower.
func memTotal(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	var kb float64
	if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %f kB", &kb); err != nil {
		t.Fatalf("parse /proc/meminfo: %v", err)
	}
	total := kb * 1024
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && v < total {
			total = v
		}
	}
	return total
}
