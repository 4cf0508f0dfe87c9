package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-kit/log/level"

	"github.com/monstackd/monstackd/pkg/components/tsdb"
)

// diskCondition makes the daemon unready (its APIs still answer) while
// appends are paused for disk space.
const diskCondition = TSDB + "/disk"

// initTSDB replays the WAL and opens the TSDB, keeping the readiness reason
// current meanwhile. The TSDB closes after every actor has stopped:
// scraping, rules and queries must not touch a closed storage.
func (c *components) initTSDB() (parts, error) {
	logger := c.logger(TSDB)
	dir := filepath.Join(c.rt.DataDir, "tsdb")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return parts{}, fmt.Errorf("create TSDB directory: %w", err)
	}
	guard := tsdb.NewDiskGuard(dir, uint64(c.cfg.TSDB.MinFreeSpace), c.d.promReg, func(paused bool, reason string) {
		if paused {
			level.Error(logger).Log("msg", "disk almost full; appends paused until space returns", "reason", reason)
			c.d.readiness.SetFailing(diskCondition, reason)
			return
		}
		level.Info(logger).Log("msg", "disk space available again; appends resumed")
		c.d.readiness.SetFailing(diskCondition, "")
	})
	if err := guard.CheckStart(); err != nil {
		return parts{}, err
	}
	tcfg := c.cfg.TSDB
	tcfg.Retention = c.cfg.LocalRetention()
	db := tsdb.New(dir, tcfg, c.slogger(TSDB), c.d.promReg, guard)
	c.d.readiness.NotReady(TSDB, "WAL replay in progress")
	replayDone, reporterDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(reporterDone); c.d.reportReplay(db, replayDone) }()
	level.Info(logger).Log("msg", "opening TSDB", "dir", db.Dir())
	err := db.Open()
	close(replayDone)
	<-reporterDone // so that no late progress report closes the gate again
	if err != nil {
		return parts{}, err
	}
	c.d.readiness.Ready(TSDB)
	level.Info(logger).Log("msg", "TSDB started")
	c.db = db
	return parts{close: func() error {
		if err := db.Close(); err != nil {
			return fmt.Errorf("close TSDB: %w", err)
		}
		level.Info(logger).Log("msg", "TSDB closed")
		return nil
	}}, nil
}

// reportReplay keeps the readiness reason current during the WAL replay.
func (d *Daemon) reportReplay(db *tsdb.TSDB, done <-chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			d.readiness.NotReady(TSDB, db.ReplayProgress())
		}
	}
}
