package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logfmt/logfmt"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestLogs runs monstackd at debug in both formats, makes the TSDB, the
// scrape manager, the Thanos querier and the gRPC server log, and reads
// every line back: one ts, one caller at the real call site, one level, a
// component, no key twice.
func TestLogs(t *testing.T) {
	for _, format := range []string{"logfmt", "json"} {
		t.Run(format, func(t *testing.T) { testLogs(t, format) })
	}
}

func testLogs(t *testing.T, format string) {
	dir := t.TempDir()
	d := &daemon{http: freeAddr(t), grpc: freeAddr(t), dataDir: filepath.Join(dir, "data")}
	writeFile(t, filepath.Join(dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\n")
	// The scrape manager logs little while all is well: a target that
	// refuses connections makes it log "Scrape failed" at debug.
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: [%q]
  - job_name: down
    static_configs:
      - targets: [%q]
`, d.http, freeAddr(t)))
	d.process = startProcess(t, "monstackd", binPath(t, "MONSTACKD_BIN"), nil,
		"--http.address="+d.http, "--grpc.address="+d.grpc, "--data.dir="+d.dataDir,
		"--config.file="+filepath.Join(dir, "monstack.yml"),
		"--log.level=debug", "--log.format="+format)
	waitHTTP200(t, d.url("/-/ready"), 60*time.Second)

	// A scrape of each target, read back through the Thanos querier.
	eventually(t, 30*time.Second, `up{job="self"} == 1 and up{job="down"} == 0`, func() error {
		res, err := d.instant("up", time.Time{})
		if err != nil {
			return err
		}
		up := map[string]string{}
		for _, s := range res {
			up[s.Metric["job"]] = fmt.Sprint(s.Value[1])
		}
		if up["self"] != "1" || up["down"] != "0" {
			return fmt.Errorf("up by job: %v", up)
		}
		return nil
	})

	// A call on the gRPC server.
	conn, err := grpc.NewClient(d.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := infopb.NewInfoClient(conn).Info(ctx, &infopb.InfoRequest{}); err != nil {
		t.Fatalf("gRPC Info: %v", err)
	}
	conn.Close()

	d.signal(t, syscall.SIGTERM)
	if code := d.wait(t, 60*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}

	// Which components must have logged, by the keys their lines carry.
	required := map[string]func(map[string]string) bool{
		"the TSDB":           func(m map[string]string) bool { return m["component"] == "tsdb" },
		"the scrape manager": func(m map[string]string) bool { return m["component"] == "scrape manager" },
		"the Thanos querier": func(m map[string]string) bool { return m["component"] == "querier" },
		"the gRPC server":    func(m map[string]string) bool { return m["component"] == "grpc-server" },
	}
	seen := map[string]bool{}
	callerRE := regexp.MustCompile(`^[A-Za-z0-9_.-]+\.go:[0-9]+$`)
	n := 0
	sc := bufio.NewScanner(strings.NewReader(d.out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		n++
		fields, err := parseLogLine(format, line)
		if err != nil {
			t.Errorf("line does not parse as %s (%v): %s", format, err, line)
			continue
		}
		m := map[string]string{}
		for _, f := range fields {
			if _, ok := m[f[0]]; ok {
				t.Errorf("key %q twice: %s", f[0], line)
			}
			m[f[0]] = f[1]
		}
		if _, err := time.Parse(time.RFC3339, m["ts"]); err != nil {
			t.Errorf("ts %q: %v: %s", m["ts"], err, line)
		}
		if _, ok := m["time"]; ok {
			t.Errorf("a second timestamp, slog's time: %s", line)
		}
		switch c := m["caller"]; {
		case !callerRE.MatchString(c):
			t.Errorf("caller %q is not file.go:line: %s", c, line)
		case strings.HasPrefix(c, "handler.go:") || strings.HasPrefix(c, "slog.go:") || strings.HasPrefix(c, "logging.go:"):
			t.Errorf("caller %q is a log adapter, not the call site: %s", c, line)
		}
		switch m["level"] {
		case "debug", "info", "warn", "error":
		default:
			t.Errorf("level %q: %s", m["level"], line)
		}
		if m["component"] == "" {
			t.Errorf("no component: %s", line)
		}
		for name, match := range required {
			if match(m) {
				seen[name] = true
			}
		}
	}
	for name := range required {
		if !seen[name] {
			t.Errorf("no line from %s in %d lines", name, n)
		}
	}
}

// parseLogLine returns the keys and values of a line in order, repeated
// keys included.
func parseLogLine(format, line string) ([][2]string, error) {
	var fields [][2]string
	if format == "logfmt" {
		d := logfmt.NewDecoder(strings.NewReader(line))
		for d.ScanRecord() {
			for d.ScanKeyval() {
				fields = append(fields, [2]string{string(d.Key()), string(d.Value())})
			}
		}
		if len(fields) == 0 && d.Err() == nil {
			return nil, fmt.Errorf("no key")
		}
		return fields, d.Err()
	}
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return nil, err
		}
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		fields = append(fields, [2]string{k.(string), s})
	}
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("more than one value")
	}
	return fields, nil
}
