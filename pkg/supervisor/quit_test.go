package supervisor

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// POST /-/quit with the lifecycle API on ends Run without an error, as
// SIGTERM does; with it off, the daemon keeps running.
func TestQuitEndsDaemon(t *testing.T) {
	for _, enable := range []bool{false, true} {
		t.Run(fmt.Sprintf("lifecycle=%v", enable), func(t *testing.T) {
			d := newTestDaemon(t, fmt.Sprintf(selfScrape, "%s"), Options{EnableLifecycle: enable})
			d.start(t)
			resp, err := http.Post("http://"+d.httpAddr+"/-/quit", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if !enable {
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("POST /-/quit with the lifecycle API off: %d, want 403", resp.StatusCode)
				}
				if code, _, err := d.get("/-/healthy"); err != nil || code != http.StatusOK {
					t.Fatalf("/-/healthy after a refused quit: %d, %v", code, err)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /-/quit: %d", resp.StatusCode)
			}
			select {
			case err := <-d.done:
				if err != nil {
					t.Fatalf("Run after /-/quit: %v", err)
				}
				d.done <- nil // for the test's cleanup
			case <-time.After(10 * time.Second):
				t.Fatal("daemon still running 10s after /-/quit")
			}
		})
	}
}
