package supervisor

import "github.com/monstackd/monstackd/pkg/components/web"

// initHTTPServer binds --http.address and serves health, readiness and
// metrics at once, so that /-/ready reports the WAL replay; the APIs answer
// 503 until the web module installs them and the daemon is ready.
func (c *components) initHTTPServer() (parts, error) {
	d := c.d
	srv, err := web.Listen(c.logger(HTTPServer), web.Options{
		Address:         c.rt.HTTPAddress,
		WebConfigFile:   d.opts.WebConfigFile,
		EnablePprof:     d.opts.EnablePprof,
		EnableLifecycle: d.opts.EnableLifecycle,
		Gatherer:        d.Gatherer(),
		Ready:           d.readiness,
		IsReady:         d.readiness.Started,
		Reload:          d.reload,
		Quit:            d.requestQuit,
		Slogger:         c.slogger(HTTPServer),
		Limits: web.Limits{
			MaxRequestBody: int64(c.cfg.Query.MaxRequestBody),
			MaxQueryLength: int64(c.cfg.Query.MaxQueryLength),
		},
	})
	if err != nil {
		return parts{}, err
	}
	c.http = srv
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	return parts{
		run:       func() error { return <-serveErr },
		interrupt: func(error) { srv.Shutdown() },
		close:     func() error { srv.Shutdown(); return nil },
	}, nil
}
