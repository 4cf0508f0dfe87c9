package supervisor

import (
	"os"
	"runtime/debug"
	"strconv"

	"github.com/go-kit/log/level"
	promconfig "github.com/prometheus/prometheus/config"
)

// initRuntime applies prometheus.yml's runtime section as Prometheus does:
// GOGC from the file, else from the environment, else config.DefaultGoGC.
func (c *components) initRuntime() (parts, error) {
	logger := c.logger(Runtime)
	return parts{reloaders: []reloader{{name: "runtime", reload: func(cfg *promconfig.Config) error {
		gogc := cfg.Runtime.GoGC
		if old := debug.SetGCPercent(gogc); old != gogc {
			level.Info(logger).Log("msg", "updated GOGC", "old", old, "new", gogc)
		}
		// The environment is what /api/v1/status/runtimeinfo reports.
		if gogc >= 0 {
			return os.Setenv("GOGC", strconv.Itoa(gogc))
		}
		return os.Setenv("GOGC", "off")
	}}}}, nil
}
