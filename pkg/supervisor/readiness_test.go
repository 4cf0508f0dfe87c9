package supervisor

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func assertDetail(t *testing.T, r *Readiness, want ...string) {
	t.Helper()
	got := r.Detail()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Detail() = %q, want %q", got, want)
	}
}

func TestReadinessNewIsReady(t *testing.T) {
	r := NewReadiness()
	if !r.IsReady() {
		t.Error("new readiness is not ready")
	}
	assertDetail(t, r)
}

func TestReadinessGates(t *testing.T) {
	r := NewReadiness()
	r.NotReady("tsdb", "replaying WAL")
	r.NotReady("config", "first load pending")
	if r.IsReady() {
		t.Fatal("ready with two gates closed")
	}
	assertDetail(t, r,
		"config: not ready: first load pending",
		"tsdb: not ready: replaying WAL",
	)

	// Closing a closed gate again updates its reason.
	r.NotReady("tsdb", "replaying WAL (42%)")
	assertDetail(t, r,
		"config: not ready: first load pending",
		"tsdb: not ready: replaying WAL (42%)",
	)

	r.Ready("tsdb")
	if r.IsReady() {
		t.Fatal("ready with the config gate still closed")
	}
	assertDetail(t, r, "config: not ready: first load pending")

	// Opening an unknown or already open gate is a no-op.
	r.Ready("nope")
	r.Ready("tsdb")
	if r.IsReady() {
		t.Fatal("ready with the config gate still closed")
	}

	r.Ready("config")
	if !r.IsReady() {
		t.Fatal("not ready with every gate open")
	}
	assertDetail(t, r)

	// A gate can close again after opening.
	r.NotReady("config", "reloading")
	if r.IsReady() {
		t.Fatal("ready after a gate closed again")
	}
}

func TestReadinessDegradedDoesNotMakeUnready(t *testing.T) {
	r := NewReadiness()
	r.SetDegraded("rules", errors.New("failed, restarting in 1s: boom"))
	r.SetDegraded("querier", fmt.Errorf("wrapped: %w", errors.New("inner")))
	if !r.IsReady() {
		t.Fatal("degraded components made the daemon unready")
	}
	assertDetail(t, r,
		"querier: degraded: wrapped: inner",
		"rules: degraded: failed, restarting in 1s: boom",
	)

	// A later failure replaces the earlier one.
	r.SetDegraded("rules", errors.New("failed again"))
	assertDetail(t, r,
		"querier: degraded: wrapped: inner",
		"rules: degraded: failed again",
	)

	r.SetDegraded("rules", nil)
	r.SetDegraded("never-degraded", nil)
	assertDetail(t, r, "querier: degraded: wrapped: inner")
	r.SetDegraded("querier", nil)
	assertDetail(t, r)
}

func TestReadinessDetailShowsFirstLineOnly(t *testing.T) {
	r := NewReadiness()
	r.SetDegraded("rules", errors.New("panic: boom\ngoroutine 1 [running]:\nmain.main()"))
	assertDetail(t, r, "rules: degraded: panic: boom")
}

func TestReadinessDetailSortedAndMixed(t *testing.T) {
	r := NewReadiness()
	r.SetDegraded("b-svc", errors.New("x"))
	r.NotReady("c-gate", "y")
	r.NotReady("a-gate", "z")
	r.SetDegraded("a-gate", errors.New("w")) // same name in both maps
	assertDetail(t, r,
		"a-gate: degraded: w",
		"a-gate: not ready: z",
		"b-svc: degraded: x",
		"c-gate: not ready: y",
	)
}

func serveReady(t *testing.T, r *Readiness) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/-/ready", nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body), res.Header
}

func TestReadinessServeHTTP(t *testing.T) {
	r := NewReadiness()

	code, body, hdr := serveReady(t, r)
	if code != http.StatusOK || body != "monstackd is Ready.\n" {
		t.Errorf("ready: got %d %q, want 200 %q", code, body, "monstackd is Ready.\n")
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}

	r.NotReady("tsdb", "replaying WAL")
	r.NotReady("config", "first load pending")
	r.SetDegraded("rules", errors.New("failed, restarting in 2s: boom\nstack"))
	code, body, _ = serveReady(t, r)
	want := "monstackd is not ready.\n" +
		"config: not ready: first load pending\n" +
		"rules: degraded: failed, restarting in 2s: boom\n" +
		"tsdb: not ready: replaying WAL\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("not ready: got %d %q, want 503 %q", code, body, want)
	}

	// Degraded alone: still 200, and the detail is shown.
	r.Ready("tsdb")
	r.Ready("config")
	code, body, _ = serveReady(t, r)
	want = "monstackd is Ready.\nrules: degraded: failed, restarting in 2s: boom\n"
	if code != http.StatusOK || body != want {
		t.Errorf("degraded: got %d %q, want 200 %q", code, body, want)
	}
}

func TestReadinessServeHTTPOverServer(t *testing.T) {
	r := NewReadiness()
	r.NotReady("tsdb", "replaying WAL")
	srv := httptest.NewServer(r)
	defer srv.Close()

	get := func() (int, string) {
		res, err := http.Get(srv.URL + "/-/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b)
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "tsdb: not ready: replaying WAL") {
		t.Errorf("got %d %q, want 503 naming the tsdb gate", code, body)
	}
	r.Ready("tsdb")
	if code, body := get(); code != http.StatusOK || !strings.Contains(body, "monstackd is Ready.") {
		t.Errorf("got %d %q, want 200 Ready", code, body)
	}
}

// Run with -race: every method may be called from any goroutine.
func TestReadinessConcurrentUse(t *testing.T) {
	r := NewReadiness()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("c%d", i)
			for j := range 200 {
				r.NotReady(name, "busy")
				r.SetDegraded(name, fmt.Errorf("err %d", j))
				_ = r.IsReady()
				_ = r.Detail()
				r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/-/ready", nil))
				r.Ready(name)
				r.SetDegraded(name, nil)
			}
		}()
	}
	wg.Wait()
	if !r.IsReady() {
		t.Error("not ready after every gate opened")
	}
	assertDetail(t, r)
}

// A failing condition makes /-/ready answer 503 with the reason while the
// APIs, gated on start-up only, keep answering.
func TestFailingConditionKeepsAPIs(t *testing.T) {
	r := NewReadiness()
	r.SetFailing("tsdb/disk", "appends paused: 1MiB free")
	if r.IsReady() || !r.Started() {
		t.Fatalf("IsReady %t Started %t, want false and true", r.IsReady(), r.Started())
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/-/ready", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "tsdb/disk: not ready: appends paused: 1MiB free") {
		t.Fatalf("/-/ready %d %q", rec.Code, rec.Body.String())
	}
	r.SetFailing("tsdb/disk", "")
	if !r.IsReady() {
		t.Fatal("still unready after the condition cleared")
	}
}
