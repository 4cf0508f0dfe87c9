package config

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	// Registers every service discovery mechanism so that prometheus.yml files
	// using *_sd_configs load unchanged.
	_ "github.com/prometheus/prometheus/plugins"
)

// Runtime is what the daemon needs besides monstack.yml to resolve its files.
type Runtime struct {
	Role Role
	// DataDir holds the TSDB and, by default, the FILESYSTEM bucket.
	DataDir string
	// HTTPAddress is where the embedded default prometheus.yml scrapes itself.
	HTTPAddress string
}

// defaultPrometheusYAML scrapes monstackd itself; %s is its HTTP address.
const defaultPrometheusYAML = `global:
  scrape_interval: 15s
  evaluation_interval: 15s
scrape_configs:
  - job_name: monstackd
    static_configs:
      - targets: [%q]
`

// DefaultGoGC is monstackd's GOGC when neither prometheus.yml's runtime.gogc
// nor the GOGC environment variable sets one; Prometheus' is 75. At steady
// state monstackd's heap is Prometheus' size, but its queries hold more: each
// selected series gets its own copy of its labels with the external labels
// added, where Prometheus shares the head's. At 75 the heap goal set during
// queries left resident memory after them ~1.4× Prometheus' (make bench,
// memory scale); 50 keeps it near 1.2× for a few percent more GC CPU.
const DefaultGoGC = 50

// LoadPrometheus loads prometheus.yml with Prometheus' own loader, then applies
// monstackd's defaults where the file sets none (GOGC, scrape limits) and what
// the role adds: the replica external label and an alert relabelling that
// drops it, so Alertmanager deduplicates the alerts of the two replicas.
// check config, start-up and reload all load through here, so they agree.
func (c *Config) LoadPrometheus(rt Runtime, logger *slog.Logger) (*promconfig.Config, error) {
	var (
		pcfg *promconfig.Config
		err  error
		raw  = &rawPrometheus{}
		file = c.Path(c.Prometheus.ConfigFile)
	)
	if file == "" {
		file = "<embedded prometheus.yml>"
		pcfg, err = promconfig.Load(fmt.Sprintf(defaultPrometheusYAML, selfTarget(rt.HTTPAddress)), logger)
	} else {
		pcfg, err = promconfig.LoadFile(file, false, logger)
		if err == nil {
			raw, err = readRawPrometheus(file)
		}
	}
	if err != nil {
		return nil, err
	}
	if _, env := os.LookupEnv("GOGC"); raw.Runtime.GoGC == nil && !env {
		pcfg.Runtime.GoGC = DefaultGoGC
	}
	applyScrapeLimits(pcfg, raw)
	if err := c.applyRole(pcfg, rt.Role, file); err != nil {
		return nil, err
	}
	return pcfg, nil
}

func (c *Config) applyRole(pcfg *promconfig.Config, role Role, file string) error {
	name := c.Query.ReplicaLabel
	if role.IsReplica() {
		ext := pcfg.GlobalConfig.ExternalLabels
		if v := ext.Get(name); v != "" && v != role.Replica {
			return fmt.Errorf("%s: field global.external_labels.%s: %q conflicts with --role=%s (which sets %s=%q); remove it from the file", file, name, v, role.Name, name, role.Replica)
		}
		b := labels.NewBuilder(ext)
		b.Set(name, role.Replica)
		pcfg.GlobalConfig.ExternalLabels = b.Labels()
	}
	// Applied after the notifier stamps external labels on alerts.
	pcfg.AlertingConfig.AlertRelabelConfigs = append(pcfg.AlertingConfig.AlertRelabelConfigs, &relabel.Config{
		Action:               relabel.LabelDrop,
		Regex:                relabel.MustNewRegexp(regexp.QuoteMeta(name)),
		Separator:            ";",
		Replacement:          "$1",
		NameValidationScheme: model.UTF8Validation,
	})
	return nil
}

// selfTarget turns a listen address such as ":9090" into a scrapeable host:port.
func selfTarget(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// RuleFiles expands the rule_files globs of prometheus.yml. A glob that
// matches nothing is fine, as in Prometheus, but a literal path (no glob
// metacharacter) that does not exist is an error: Prometheus drops it
// silently, and its alerts are never evaluated. The files found are returned
// with the error, which joins one error per pattern.
func RuleFiles(pcfg *promconfig.Config) ([]string, error) {
	var (
		files []string
		errs  []error
	)
	for _, pat := range pcfg.RuleFiles {
		fs, err := filepath.Glob(pat)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule_files: bad pattern %q: %w", pat, err))
			continue
		}
		if len(fs) == 0 && !hasGlobMeta(pat) {
			_, err := os.Stat(pat)
			var pe *iofs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			errs = append(errs, fmt.Errorf("rule_files: %s: %w", pat, err))
			continue
		}
		files = append(files, fs...)
	}
	return files, errors.Join(errs...)
}

// hasGlobMeta reports whether filepath.Glob treats pat as a pattern.
func hasGlobMeta(pat string) bool { return strings.ContainsAny(pat, `*?[\`) }

// Check validates monstack.yml and every file it points to, returning one
// error per problem, each naming its file.
func (c *Config) Check(rt Runtime, logger *slog.Logger) []error {
	var errs []error
	pcfg, err := c.LoadPrometheus(rt, logger)
	if err != nil {
		errs = append(errs, err)
	} else {
		files, err := RuleFiles(pcfg)
		for _, e := range Errors(err) {
			errs = append(errs, fmt.Errorf("%s: %w", c.Path(c.Prometheus.ConfigFile), e))
		}
		for _, f := range files {
			errs = append(errs, CheckRuleFile(f, pcfg.GlobalConfig.MetricNameValidationScheme)...)
		}
	}
	if err := c.checkBucket(rt); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, Errors(c.checkPeers())...)
	return errs
}
