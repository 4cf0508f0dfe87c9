package e2e

import (
	"context"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestQueryUI opens the Thanos query UI that monstackd serves in headless
// Chromium, as a user would: the graph page runs a query and shows the
// result table, and the stores page lists the local TSDB. The UI reads its
// defaults from /api/v1/status/flags and the stores from /api/v1/stores
// (DESIGN.md §3.17); an API test cannot see what the page makes of them.
func TestQueryUI(t *testing.T) {
	chromium := binPath(t, "CHROMIUM_BIN")
	artifacts := artifactsDir(t)

	dir := t.TempDir()
	httpAddr := freeAddr(t)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels:
    cluster: e2e-ui
scrape_configs:
  - job_name: self
    static_configs:
      - targets: [%q]
`, httpAddr))
	writeFile(t, filepath.Join(dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\n")
	d := startDaemonAt(t, httpAddr, mkdir(t, dir, "data"), nil, "--config.file="+filepath.Join(dir, "monstack.yml"))

	eventually(t, 30*time.Second, `up{job="self"} == 1 through the API`, func() error {
		v, err := d.scalarOf(`up{job="self"}`, time.Time{})
		if err != nil || v != 1 {
			return fmt.Errorf("value %v, err %v", v, err)
		}
		return nil
	})

	t.Run("graph table shows up", func(t *testing.T) {
		// g0.tab=1 is the table tab (pkg/ui/react-app/src/utils: tab 0 is the graph).
		page := d.url("/graph?g0.expr=up&g0.tab=1")
		upRow := regexp.MustCompile(`^up\{.*job="self".*\} 1$`)
		checkPage(t, chromium, artifacts, "graph", page, func(dom string) error {
			if err := noQueryError(dom); err != nil {
				return finalError{err}
			}
			rows := tableRows(dom)
			for _, r := range rows {
				if upRow.MatchString(r) {
					return nil
				}
			}
			return fmt.Errorf("no result row like %s among %q", upRow, rows)
		})
	})

	t.Run("graph tab draws up through the query-frontend", func(t *testing.T) {
		// Tab 0 runs a range query: through the frontend, the legend
		// names the series drawn.
		before := frontendCalls(t, d, "query_range")
		page := d.url("/graph?g0.expr=up&g0.tab=0&g0.range_input=5m")
		legend := regexp.MustCompile(`(?s)<div[^>]*class="legend-item"[^>]*>(.*?)</div>`)
		checkPage(t, chromium, artifacts, "graph-range", page, func(dom string) error {
			if err := noQueryError(dom); err != nil {
				return finalError{err}
			}
			var items []string
			for _, m := range legend.FindAllStringSubmatch(dom, -1) {
				items = append(items, textOf(m[1]))
				if strings.HasPrefix(textOf(m[1]), "up{") && strings.Contains(textOf(m[1]), `job="self"`) {
					return nil
				}
			}
			return fmt.Errorf("no legend item for up{job=\"self\"} among %q", items)
		})
		if n := frontendCalls(t, d, "query_range") - before; n == 0 {
			t.Error("the graph's range query did not reach the querier through the frontend")
		}
	})

	t.Run("stores page lists the local TSDB", func(t *testing.T) {
		page := d.url("/stores")
		checkPage(t, chromium, artifacts, "stores", page, func(dom string) error {
			if strings.Contains(dom, "No stores registered") {
				return errors.New(`page says "No stores registered"`)
			}
			cells := map[string]string{}
			for _, id := range []string{"endpoint", "health", "storeLabels", "minTime", "maxTime"} {
				cells[id] = cellText(dom, id)
			}
			if cells["endpoint"] != "local" || cells["health"] != "UP" {
				return fmt.Errorf("first store row %v, want endpoint local, UP", cells)
			}
			if !strings.Contains(cells["storeLabels"], `cluster="e2e-ui"`) {
				return fmt.Errorf("store labels %q, want cluster=\"e2e-ui\"", cells["storeLabels"])
			}
			// A valid time renders as a date; an unknown one as an icon.
			date := regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}`)
			if !date.MatchString(cells["minTime"]) || !date.MatchString(cells["maxTime"]) {
				return fmt.Errorf("time range %q to %q, want dates", cells["minTime"], cells["maxTime"])
			}
			return nil
		})
	})
}

// artifactsDir is where the screenshots are kept: $E2E_ARTIFACTS, else
// artifacts/ in the package directory (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("E2E_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return mkdir(t, dir)
}

// runChromium runs headless Chromium once, with a profile of its own, and
// returns its standard output. The virtual time budget lets the page's
// fetches and rendering finish before the DOM is dumped or the screenshot
// taken.
func runChromium(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=8000",
	}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("chromium %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 20))
	}
	return stdout.String(), nil
}

// finalError is a page state that dumping the page again cannot change.
type finalError struct{ error }

// pollPage dumps page's DOM until check accepts it or returns a finalError,
// or a minute passes; it returns the last DOM and check's verdict. The
// first dumps can come before the data the page shows exists.
func pollPage(t *testing.T, bin, page string, check func(dom string) error) (string, error) {
	t.Helper()
	return pollPageWith(t, bin, nil, page, check)
}

// pollPageWith is pollPage with more Chromium flags.
func pollPageWith(t *testing.T, bin string, flags []string, page string, check func(dom string) error) (string, error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		dom, err := runChromium(t, bin, append(slices.Clone(flags), "--dump-dom", page)...)
		if err == nil {
			err = check(dom)
		}
		var final finalError
		if err == nil || errors.As(err, &final) || time.Now().After(deadline) {
			return dom, err
		}
		time.Sleep(time.Second)
	}
}

// checkPage polls page until check accepts it, keeps its DOM and a
// screenshot whatever the outcome, and fails the test if check did not.
func checkPage(t *testing.T, bin, artifacts, name, page string, check func(dom string) error) {
	t.Helper()
	dom, err := pollPage(t, bin, page, check)
	saveArtifacts(t, bin, artifacts, name, page, dom)
	if err != nil {
		t.Fatalf("%s in Chromium: %v", page, err)
	}
}

// saveArtifacts keeps the page's DOM and a screenshot of it.
func saveArtifacts(t *testing.T, bin, dir, name, page, dom string) {
	t.Helper()
	prefix := filepath.Join(dir, strings.Split(t.Name(), "/")[0]+"-"+name)
	writeFile(t, prefix+".html", dom)
	shot := prefix + ".png"
	if _, err := runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,900", page); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %s not written: %v", shot, err)
	}
	t.Logf("screenshot: %s (DOM: %s.html)", shot, prefix)
}

func noQueryError(dom string) error {
	for _, bad := range []string{"Error executing query", "bad engine"} {
		if i := strings.Index(dom, bad); i >= 0 {
			excerpt := dom[i:]
			if j := strings.IndexByte(excerpt, '<'); j >= 0 {
				excerpt = excerpt[:j]
			}
			return fmt.Errorf("page shows %q", html.UnescapeString(excerpt))
		}
	}
	return nil
}

var (
	rowRE     = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	cellEndRE = regexp.MustCompile(`</t[dh]>`)
	tagRE     = regexp.MustCompile(`<[^>]*>`)
	spaces    = regexp.MustCompile(`\s+`)
)

// textOf is an HTML fragment's text as it reads on the page: cells
// separated by a space, inline elements joined, whitespace collapsed.
func textOf(fragment string) string {
	s := tagRE.ReplaceAllString(cellEndRE.ReplaceAllString(fragment, " "), "")
	return strings.TrimSpace(spaces.ReplaceAllString(html.UnescapeString(s), " "))
}

// tableRows are the text of the DOM's table rows, the cells separated by a space.
func tableRows(dom string) []string {
	var rows []string
	for _, m := range rowRE.FindAllStringSubmatch(dom, -1) {
		rows = append(rows, textOf(m[1]))
	}
	return rows
}

// cellText is the text of the first table cell with data-testid id.
func cellText(dom, id string) string {
	m := regexp.MustCompile(`(?s)<td[^>]*data-testid="` + regexp.QuoteMeta(id) + `"[^>]*>(.*?)</td>`).FindStringSubmatch(dom)
	if m == nil {
		return ""
	}
	return textOf(m[1])
}
