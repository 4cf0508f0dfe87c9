package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monstackd/monstackd/pkg/components/web"
	"github.com/monstackd/monstackd/pkg/config"
)

// The running daemon is the graph: its actors are the graph's actor modules
// in interrupt order, its reload steps follow init order, and /metrics
// gathers every registry with the build info and init-time metrics.
func TestDaemonRunsTheGraph(t *testing.T) {
	d := newTestDaemon(t, fmt.Sprintf(selfScrape, "%s"), Options{})
	d.start(t)

	g, err := buildGraph(modules(), config.Role{Name: config.RoleStandalone}, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *d.actors.Load(), names(g.actorOrder()); !reflect.DeepEqual(got, want) {
		t.Errorf("actors %v, want the graph's %v", got, want)
	}
	pos := map[string]int{}
	for i, m := range g {
		pos[m.name] = i
	}
	d.reloadMtx.Lock()
	var steps []string
	last := -1
	for _, r := range d.reloaders {
		steps = append(steps, r.module+"/"+r.name)
		p, ok := pos[r.module]
		if !ok || p < last {
			t.Errorf("reload step %s/%s out of init order", r.module, r.name)
		}
		last = p
	}
	d.reloadMtx.Unlock()
	for _, pair := range [][2]string{{"scrape/scrape", "scrape/scrape_sd"}, {"notifier/notify", "notifier/notify_sd"}, {"notifier/notify_sd", "rules/rules"}} {
		if i, j := indexOf(steps, pair[0]), indexOf(steps, pair[1]); i < 0 || j < 0 || i > j {
			t.Errorf("reload steps %v: want %s before %s", steps, pair[0], pair[1])
		}
	}

	code, body, err := d.get("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v\n%s", code, err, body)
	}
	for _, want := range []string{
		"monstackd_build_info{", `tags="`,
		"prometheus_template_text_expansion_failures_total", // default registry, registered at init
		"go_goroutines", "process_resident_memory_bytes",
		"prometheus_tsdb_head_series", "prometheus_engine_queries", // Prometheus components
		"grpc_server_started_total", "thanos_query_concurrent_", // Thanos modules' own registries
		`monstackd_component_up{name="signals"} 1`, `monstackd_component_up{name="scrape-discovery"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// A reload before the first configuration is applied fails with a reason
// instead of reporting a success that applied nothing, and concurrent
// reloads during start-up are safe (run with -race).
func TestReloadBeforeFirstApply(t *testing.T) {
	d := newTestDaemon(t, fmt.Sprintf(selfScrape, "%s"), Options{})
	if err := d.reload(); !errors.Is(err, web.ErrNotReady) {
		t.Fatalf("reload before Run: %v, want ErrNotReady", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := d.reload(); err != nil && !errors.Is(err, web.ErrNotReady) {
				t.Errorf("reload during start-up: %v", err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	d.start(t)
	close(stop)
	wg.Wait()
	if err := d.reload(); err != nil {
		t.Fatalf("reload once ready: %v", err)
	}
}

// A reload applies the evaluation interval to subqueries without a step and
// GOGC to what the runtime info reports, as Prometheus does.
func TestReloadAppliesEngineAndRuntime(t *testing.T) {
	prom := "global:\n  evaluation_interval: %s\nruntime:\n  gogc: %d\n"
	d := newTestDaemon(t, fmt.Sprintf(prom, "1m", 60), Options{})
	d.start(t)
	check := func(wantCount float64, wantGOGC string) {
		t.Helper()
		_, body, err := d.get("/prometheus/api/v1/query?time=1700000000&query=" + "count_over_time(vector(1)%5B10m:%5D)")
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Data.Result) != 1 {
			t.Fatalf("query: %v %s", err, body)
		}
		if v, _ := strconv.ParseFloat(r.Data.Result[0].Value[1].(string), 64); v != wantCount {
			t.Errorf("count_over_time(vector(1)[10m:]) = %v, want %v", v, wantCount)
		}
		_, body, err = d.get("/prometheus/api/v1/status/runtimeinfo")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, `"GOGC":"`+wantGOGC+`"`) {
			t.Errorf("runtimeinfo %s, want GOGC %s", body, wantGOGC)
		}
	}
	check(10, "60")
	if err := os.WriteFile(filepath.Join(d.dir, "prometheus.yml"), []byte(fmt.Sprintf(prom, "30s", 70)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.reload(); err != nil {
		t.Fatal(err)
	}
	check(20, "70")
}
