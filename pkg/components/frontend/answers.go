package frontend

import (
	"bytes"
	"container/list"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// answers keeps the encoded answers of requests the results cache answered
// whole (no downstream call): asked again, they are written as they were,
// without reading the cache's extents, merging and encoding them anew,
// which is most of what a cached dashboard refresh costs. An answer the
// results cache gave whole holds nothing it would not give again: its
// rules (max freshness, no-store answers, @ and offset) decided what it
// holds.
type answers struct {
	mu      sync.Mutex
	max     int64
	size    int64
	order   *list.List // of *answer, most recently used first
	entries map[string]*list.Element

	requests *prometheus.CounterVec
	bytes    prometheus.Gauge
}

type answer struct {
	key         string
	contentType string
	body        []byte
}

func newAnswers(reg prometheus.Registerer, maxBytes int64) *answers {
	a := &answers{
		max:     maxBytes,
		order:   list.New(),
		entries: map[string]*list.Element{},
		requests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "monstackd_query_frontend_answer_cache_requests_total",
			Help: "Requests the query-frontend's answer cache saw: hit (written as kept), miss, or not eligible (no-store, stats, analyze, disabled).",
		}, []string{"result"}),
		bytes: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "monstackd_query_frontend_answer_cache_bytes",
			Help: "Bytes of encoded answers the query-frontend keeps.",
		}),
	}
	for _, r := range []string{"hit", "miss", "not_eligible"} {
		a.requests.WithLabelValues(r)
	}
	return a
}

// key is the request's identity: operation, path, tenant and every
// parameter, or "" when its answer must not be kept: the client asked for
// no cache, or for statistics and analyses of the query's own execution.
func (a *answers) key(r *http.Request, tenant string) string {
	if a.max <= 0 || noStore(r) || r.Form.Get("stats") != "" || (r.Form.Get("analyze") != "" && r.Form.Get("analyze") != "false") {
		return ""
	}
	// Encode sorts the parameters by name.
	return tenant + "\x00" + r.URL.Path + "\x00" + r.Form.Encode()
}

// noStore reports whether the client asked for no cache.
func noStore(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Cache-Control"), "no-store")
}

// get writes the kept answer for key to w, if there is one.
func (a *answers) get(w http.ResponseWriter, key string) bool {
	if key == "" {
		a.requests.WithLabelValues("not_eligible").Inc()
		return false
	}
	a.mu.Lock()
	e, ok := a.entries[key]
	if ok {
		a.order.MoveToFront(e)
	}
	a.mu.Unlock()
	if !ok {
		a.requests.WithLabelValues("miss").Inc()
		return false
	}
	a.requests.WithLabelValues("hit").Inc()
	ans := e.Value.(*answer)
	w.Header().Set("Content-Type", ans.contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ans.body)
	return true
}

// put keeps an answer, dropping the least recently used ones beyond the
// size limit.
func (a *answers) put(key, contentType string, body []byte) {
	n := int64(len(key) + len(body))
	if key == "" || n > a.max/4 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.entries[key]; ok {
		return
	}
	a.entries[key] = a.order.PushFront(&answer{key: key, contentType: contentType, body: body})
	a.size += n
	for a.size > a.max {
		last := a.order.Back()
		old := a.order.Remove(last).(*answer)
		delete(a.entries, old.key)
		a.size -= int64(len(old.key) + len(old.body))
	}
	a.bytes.Set(float64(a.size))
}

// teeWriter writes an answer through and keeps a copy.
type teeWriter struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (t *teeWriter) WriteHeader(code int) {
	if t.code == 0 {
		t.code = code
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *teeWriter) Write(b []byte) (int, error) {
	if t.code == 0 {
		t.code = http.StatusOK
	}
	t.body.Write(b)
	return t.ResponseWriter.Write(b)
}
