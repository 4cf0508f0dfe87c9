package e2e

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/thanos/pkg/block/metadata"
)

// TestBucketUI: the Thanos bucket UI that monstackd serves at /bucket/
// shows the blocks in the bucket. Blocks shipped to a real MinIO are listed
// by /bucket/api/v1/blocks with their labels and the replica label as the
// UI's row title, and the blocks page, opened in headless Chromium, draws
// one span per block whose details (shown on a click) are the block's ULID
// and labels.
func TestBucketUI(t *testing.T) {
	chromium := binPath(t, "CHROMIUM_BIN")
	artifacts := artifactsDir(t)

	f := newBucketFixture(t)
	t0 := twoHours()
	ext := map[string]string{"cluster": "e2e-bucket-ui", "replica": "a"}
	var ids []ulid.ULID
	for i := range 3 {
		mint := t0.Add(time.Duration(i) * 2 * time.Hour)
		ids = append(ids, f.upload(t, blockSpec{mint: mint, maxt: mint.Add(2 * time.Hour), ext: ext, nSeries: 5, nSamples: 60}))
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "prometheus.yml"), "global:\n  external_labels: {cluster: e2e-bucket-ui}\n")
	writeFile(t, filepath.Join(dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\nbucket:\n  config_file: "+f.yml+"\nstore_gateway:\n  sync_interval: 2s\n")
	d := startDaemon(t, mkdir(t, dir, "data"), nil, "--config.file="+filepath.Join(dir, "monstack.yml"), "--role=replica-a")

	t.Run("blocks API lists the bucket's blocks", func(t *testing.T) {
		eventually(t, 30*time.Second, "the uploaded blocks in /bucket/api/v1/blocks", func() error {
			code, body, err := httpGet(d.url("/bucket/api/v1/blocks"))
			if err != nil {
				return err
			}
			var resp struct {
				Status string `json:"status"`
				Data   struct {
					Label  string          `json:"label"`
					Blocks []metadata.Meta `json:"blocks"`
					Err    any             `json:"err"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				return fmt.Errorf("status %d, body %.300q: %w", code, body, err)
			}
			if resp.Status != "success" || resp.Data.Label != "replica" || resp.Data.Err != nil {
				return fmt.Errorf("status %d: %s", code, body)
			}
			var got []ulid.ULID
			for _, m := range resp.Data.Blocks {
				if m.Thanos.Labels["cluster"] != ext["cluster"] || m.Thanos.Labels["replica"] != ext["replica"] {
					return fmt.Errorf("block %s has labels %v, want %v", m.ULID, m.Thanos.Labels, ext)
				}
				got = append(got, m.ULID)
			}
			slices.SortFunc(got, func(a, b ulid.ULID) int { return a.Compare(b) })
			if !slices.Equal(got, ids) {
				return fmt.Errorf("blocks %v, want %v", got, ids)
			}
			return nil
		})
		// The UI's flags page shows the API's flags: no bucket configuration.
		code, body, err := httpGet(d.url("/bucket/api/v1/status/flags"))
		if err != nil || code != http.StatusOK {
			t.Fatalf("/bucket/api/v1/status/flags: %d %s %v", code, body, err)
		}
		for _, secret := range []string{minioSecretKey, minioAccessKey, "secret_key"} {
			if strings.Contains(string(body), secret) {
				t.Errorf("/bucket/api/v1/status/flags shows %q: %s", secret, body)
			}
		}
	})

	t.Run("blocks page shows the blocks", func(t *testing.T) {
		// A user clicks a block span to see its ULID and labels. Chromium's
		// --dump-dom cannot click, so the page is opened in a frame of a
		// page of the same site that clicks each span in turn and copies
		// the details shown into its own DOM.
		wrapper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, clickThroughPage, d.url("/bucket/blocks"))
		}))
		defer wrapper.Close()
		page := wrapper.URL
		flags := []string{"--disable-web-security", "--window-size=1280,900"}
		dom, err := pollPageWith(t, chromium, flags, page, func(dom string) error {
			if m := regexp.MustCompile(`id="state">([^<]*)<`).FindStringSubmatch(dom); m == nil || m[1] != "done" {
				state := ""
				if m != nil {
					state = html.UnescapeString(m[1])
				}
				return fmt.Errorf("page state %q, want done", state)
			}
			var shown []ulid.ULID
			for _, m := range regexp.MustCompile(`(?s)<li class="block">(.*?)</li>`).FindAllStringSubmatch(dom, -1) {
				parts := strings.SplitN(html.UnescapeString(m[1]), "|", 3)
				if len(parts) != 3 {
					return fmt.Errorf("details %q", m[1])
				}
				id, err := ulid.Parse(strings.TrimSpace(parts[0]))
				if err != nil {
					return finalError{fmt.Errorf("details show %q, not a ULID", parts[0])}
				}
				labels := textOf(parts[1])
				for k, v := range ext {
					if !strings.Contains(labels, k+": "+v) {
						return finalError{fmt.Errorf("details of %s show labels %q, want %s: %s", id, labels, k, v)}
					}
				}
				if title := strings.TrimSpace(parts[2]); title != ext["replica"] {
					return finalError{fmt.Errorf("row title %q, want the replica label's value %q", title, ext["replica"])}
				}
				shown = append(shown, id)
			}
			slices.SortFunc(shown, func(a, b ulid.ULID) int { return a.Compare(b) })
			if !slices.Equal(shown, ids) {
				return fmt.Errorf("blocks shown %v, want %v", shown, ids)
			}
			return nil
		})
		prefix := filepath.Join(artifacts, "TestBucketUI-blocks")
		writeFile(t, prefix+".html", dom)
		shot := prefix + ".png"
		if _, serr := runChromium(t, chromium, append(flags, "--screenshot="+shot, page)...); serr != nil {
			t.Error(serr)
		}
		t.Logf("screenshot: %s (DOM: %s.html)", shot, prefix)
		if err != nil {
			t.Fatalf("%s in Chromium: %v", d.url("/bucket/blocks"), err)
		}
		// The UI's requests add no series that collide with the query UI's.
		if code, body, err := httpGet(d.url("/metrics")); err != nil || code != http.StatusOK {
			t.Errorf("/metrics after the blocks page: %d %v\n%.1000s", code, err, body)
		}
	})
}

// clickThroughPage frames the blocks page (%s) and clicks each block span
// in turn, recording the details the page shows for it (the ULID, the
// labels, the row's title) in #blocks; #state says how far it got. The last
// block's details stay open for the screenshot.
const clickThroughPage = `<!doctype html><html><body style="margin:0">
<iframe id="ui" src="%s" style="border:0;width:100%%;height:860px"></iframe>
<p id="state">loading</p><ul id="blocks"></ul>
<script>
const state = document.getElementById('state');
let next = 0;
const timer = setInterval(() => {
  let doc;
  try {
    doc = document.getElementById('ui').contentDocument;
  } catch (e) {
    state.textContent = 'no access to the frame: ' + e;
    clearInterval(timer);
    return;
  }
  const spans = doc ? doc.querySelectorAll('button[class*="blockSpan"]') : [];
  if (spans.length === 0) {
    state.textContent = 'no block spans';
    return;
  }
  const ulid = doc.querySelector('[data-testid="ulid"]');
  if (next > 0) {
    if (!ulid) {
      state.textContent = 'no details after a click';
      return;
    }
    const title = spans[next - 1].closest('[class*="source"]').querySelector('[class*="title"] span');
    const li = document.createElement('li');
    li.className = 'block';
    li.textContent = ulid.textContent + '|' + doc.querySelector('[data-testid="labels"]').innerHTML + '|' + (title ? title.textContent : '');
    document.getElementById('blocks').appendChild(li);
  }
  if (next === spans.length) {
    state.textContent = 'done';
    clearInterval(timer);
    return;
  }
  spans[next++].click();
}, 200);
</script></body></html>`
