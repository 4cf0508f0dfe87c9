package tsdb

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/util/teststorage"
)

func TestDiskGuardPausesAndResumes(t *testing.T) {
	st := teststorage.New(t)
	t.Cleanup(func() { st.Close() })
	var free atomic.Uint64
	free.Store(1000)
	var events []string
	g := NewDiskGuard(t.TempDir(), 100, prometheus.NewRegistry(), func(paused bool, reason string) {
		if paused {
			events = append(events, "paused: "+reason)
		} else {
			events = append(events, "resumed")
		}
	})
	g.free = func(string) (uint64, error) { return free.Load(), nil }
	app := g.Appendable(st)
	appendOne := func(ts int64) error {
		a := app.Appender(context.Background())
		if _, err := a.Append(0, labels.FromStrings("__name__", "m"), ts, 1); err != nil {
			_ = a.Rollback()
			return err
		}
		return a.Commit()
	}
	if err := appendOne(1); err != nil {
		t.Fatalf("with space: %v", err)
	}
	free.Store(50)
	g.checked.Store(0) // do not wait for the recheck interval
	if err := appendOne(2); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("below the reserve: %v, want ErrDiskFull", err)
	}
	if len(events) != 1 || events[0] == "resumed" {
		t.Fatalf("events %v, want one pause", events)
	}
	// Just above the reserve is not enough to resume: no flapping.
	free.Store(110)
	g.checked.Store(0)
	if err := appendOne(3); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("at 110%% of the reserve: %v, want still paused", err)
	}
	free.Store(200)
	time.Sleep(recheckInterval)
	if err := appendOne(4); err != nil {
		t.Fatalf("space back: %v", err)
	}
	if len(events) != 2 || events[1] != "resumed" {
		t.Fatalf("events %v, want pause then resume", events)
	}
	if err := g.CheckStart(); err != nil {
		t.Fatalf("CheckStart with space: %v", err)
	}
	free.Store(10)
	if err := g.CheckStart(); err == nil {
		t.Fatal("CheckStart below the reserve: no error")
	}
}
