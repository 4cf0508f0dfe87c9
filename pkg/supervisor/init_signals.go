package supervisor

import (
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-kit/log/level"
)

// initSignals is the first actor interrupted and the last initialised: it
// tells systemd READY=1 once every module is up (ports bound, WAL replayed,
// first config applied), reloads on SIGHUP, and ends the group on
// SIGTERM/SIGINT, a /-/quit request or the end of the daemon's context.
func (c *components) initSignals() (parts, error) {
	d := c.d
	logger := c.logger(Signals)
	cancel := make(chan struct{})
	return parts{
		run: func() error {
			d.notifySystemd(daemon.SdNotifyReady)
			for {
				select {
				case s := <-d.term:
					level.Info(logger).Log("msg", "received signal, shutting down", "signal", s)
					return nil
				case <-d.quit:
					level.Info(logger).Log("msg", "termination requested via /-/quit, shutting down")
					return nil
				case <-d.hup:
					_ = d.reload()
				case <-c.ctx.Done():
					return nil
				case <-cancel:
					return nil
				}
			}
		},
		interrupt: func(error) {
			d.notifySystemd(daemon.SdNotifyStopping)
			close(cancel)
		},
	}, nil
}
