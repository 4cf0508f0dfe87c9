// Package leasetest holds what the lease's tests share, in the package and
// against a real MinIO (test/e2e).
package leasetest

import (
	"sync"
	"testing"
)

// Race runs write(i) for i in [0, n) at once and returns the indexes and
// versions of the writes that succeeded; a failure that conflict does not
// accept (a lost conditional write) fails the test.
func Race(t testing.TB, n int, conflict func(error) bool, write func(i int) (string, error)) (winners []int, versions []string) {
	t.Helper()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			v, err := write(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners, versions = append(winners, i), append(versions, v)
			case !conflict(err):
				t.Errorf("writer %d: want success or a conflict, got %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return winners, versions
}
