package supervisor

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/go-kit/log/level"

	"github.com/monstackd/monstackd/pkg/components/tsdb"
)

// initTSDB replays the WAL and opens the TSDB, keeping the readiness reason
// current meanwhile. The TSDB closes after every actor has stopped:
// scraping, rules and queries must not touch a closed storage.
func (c *components) initTSDB() (parts, error) {
	logger := c.logger(TSDB)
	db := tsdb.New(filepath.Join(c.rt.DataDir, "tsdb"), c.cfg.TSDB, c.slogger(TSDB), c.d.promReg)
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
