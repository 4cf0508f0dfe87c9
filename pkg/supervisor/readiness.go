package supervisor

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Readiness aggregates the state of the in-process components. Gates must all
// be open for the daemon to be ready and for its APIs to answer (TSDB
// replayed, first config loaded). Failing conditions (appends paused on a
// full disk) make it unready while the APIs keep answering: a load balancer
// should prefer the other replica, a person can still query this one.
// Degraded components (a non-critical one restarting) are reported in the
// detail without making the daemon unready, because it still ingests and answers.
type Readiness struct {
	mtx      sync.RWMutex
	gates    map[string]string
	failing  map[string]string
	degraded map[string]error
	info     map[string]func() string
}

// NewReadiness returns a readiness with no gate closed.
func NewReadiness() *Readiness {
	return &Readiness{gates: map[string]string{}, failing: map[string]string{}, degraded: map[string]error{}, info: map[string]func() string{}}
}

// SetFailing records (reason != "") or clears a condition that makes the
// daemon unready without closing its APIs.
func (r *Readiness) SetFailing(name, reason string) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if reason == "" {
		delete(r.failing, name)
		return
	}
	r.failing[name] = reason
}

// Started reports whether every gate is open: the APIs may answer.
func (r *Readiness) Started() bool {
	r.mtx.RLock()
	defer r.mtx.RUnlock()
	return len(r.gates) == 0
}

// NotReady closes the gate name with the reason shown on /-/ready.
func (r *Readiness) NotReady(name, reason string) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	r.gates[name] = reason
}

// Ready opens the gate name.
func (r *Readiness) Ready(name string) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	delete(r.gates, name)
}

// SetDegraded records (err != nil) or clears the failure of a non-critical component.
func (r *Readiness) SetDegraded(name string, err error) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if err == nil {
		delete(r.degraded, name)
		return
	}
	r.degraded[name] = err
}

// SetInfo shows name's state, as info() says it at each request, in the
// detail; it does not make the daemon unready.
func (r *Readiness) SetInfo(name string, info func() string) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	r.info[name] = info
}

// IsReady reports whether every gate is open and no condition fails.
func (r *Readiness) IsReady() bool {
	r.mtx.RLock()
	defer r.mtx.RUnlock()
	return len(r.gates) == 0 && len(r.failing) == 0
}

// Detail lists closed gates and degraded components, one per line, sorted.
func (r *Readiness) Detail() []string {
	r.mtx.RLock()
	defer r.mtx.RUnlock()
	var lines []string
	for name, reason := range r.gates {
		lines = append(lines, fmt.Sprintf("%s: not ready: %s", name, reason))
	}
	for name, reason := range r.failing {
		lines = append(lines, fmt.Sprintf("%s: not ready: %s", name, reason))
	}
	for name, err := range r.degraded {
		lines = append(lines, fmt.Sprintf("%s: degraded: %s", name, firstLine(err.Error())))
	}
	for name, info := range r.info {
		lines = append(lines, fmt.Sprintf("%s: %s", name, info()))
	}
	sort.Strings(lines)
	return lines
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ServeHTTP serves /-/ready: 200 when ready, 503 otherwise, with the detail.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.IsReady() {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "monstackd is Ready.")
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "monstackd is not ready.")
	}
	for _, l := range r.Detail() {
		fmt.Fprintln(w, l)
	}
}
