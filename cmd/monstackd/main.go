// Command monstackd runs a highly-available Prometheus + Thanos stack in one
// process. This package holds flags and subcommands only; the components live
// in pkg/components and their order in pkg/supervisor.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"

	"github.com/monstackd/monstackd/pkg/components/grpcserver"
	"github.com/monstackd/monstackd/pkg/config"
	"github.com/monstackd/monstackd/pkg/logging"
	"github.com/monstackd/monstackd/pkg/supervisor"
)

const appName = "monstackd"

type flags struct {
	configFile  string
	role        string
	dataDir     string
	httpAddress string
	grpcAddress string
	logLevel    string
	logFormat   string
	pprof       bool
	memlimit    bool
	memRatio    float64

	webConfigFile   string
	enableLifecycle bool
	enableAdminAPI  bool
	grpcTLS         grpcserver.TLS
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var f flags
	app := kingpin.New(filepath.Base(os.Args[0]), "monstackd: a highly-available Prometheus + Thanos stack in one process.").
		UsageWriter(stdout).ErrorWriter(stderr)
	app.HelpFlag.Short('h')
	app.Flag("config.file", "monstack.yml; empty runs the embedded default (self-scrape, FILESYSTEM bucket under --data.dir).").
		Default("").StringVar(&f.configFile)
	app.Flag("role", "standalone, or replica-<name> for one replica of an HA pair (sets the external label replica=\"<name>\").").
		Default(config.RoleStandalone).StringVar(&f.role)
	app.Flag("data.dir", "Directory for the TSDB and local state.").Default("./data").StringVar(&f.dataDir)
	app.Flag("http.address", "Listen address for the HTTP API, UI, health and metrics.").Default(":9090").StringVar(&f.httpAddress)
	app.Flag("grpc.address", "Listen address for the Thanos StoreAPI + Info gRPC server.").Default(":10901").StringVar(&f.grpcAddress)
	app.Flag("log.level", "Log level: debug, info, warn, error.").Default("info").EnumVar(&f.logLevel, "debug", "info", "warn", "error")
	app.Flag("log.format", "Log format: logfmt or json.").Default("logfmt").EnumVar(&f.logFormat, "logfmt", "json")
	app.Flag("web.enable-pprof", "Serve /debug/pprof on the HTTP port.").Default("true").BoolVar(&f.pprof)
	app.Flag("web.config.file", "Exporter-toolkit web config file (TLS, client certificates, basic auth) for the HTTP port, as Prometheus'; empty serves plain HTTP.").
		Default("").StringVar(&f.webConfigFile)
	app.Flag("web.enable-lifecycle", "Serve POST/PUT /-/reload and /-/quit (shutdown); off, they answer 403. SIGHUP reloads either way.").
		Default("false").BoolVar(&f.enableLifecycle)
	app.Flag("web.enable-admin-api", "Serve Prometheus' admin TSDB endpoints (delete series, clean tombstones, snapshot) under /prometheus/api/v1/admin.").
		Default("false").BoolVar(&f.enableAdminAPI)
	app.Flag("grpc-server-tls-cert", "TLS certificate for the gRPC server; empty serves plaintext.").Default("").StringVar(&f.grpcTLS.Cert)
	app.Flag("grpc-server-tls-key", "TLS key for the gRPC server; set with --grpc-server-tls-cert.").Default("").StringVar(&f.grpcTLS.Key)
	app.Flag("grpc-server-tls-client-ca", "CA the gRPC server verifies client certificates against; set, a client certificate is required.").
		Default("").StringVar(&f.grpcTLS.ClientCA)
	app.Flag("auto-gomemlimit", "Set GOMEMLIMIT from the container's (cgroup) or else the system's memory, as Prometheus does.").
		Default("true").BoolVar(&f.memlimit)
	app.Flag("auto-gomemlimit.ratio", "Share of that memory GOMEMLIMIT is set to, in (0, 1].").Default("0.9").FloatVar(&f.memRatio)

	runCmd := app.Command("run", "Run the daemon (default).").Default()
	checkCmd := app.Command("check", "Check resources.")
	checkConfigCmd := checkCmd.Command("config", "Validate monstack.yml and every file it points to.")
	versionCmd := app.Command("version", "Print the version.")
	componentsCmd := app.Command("components", "List the in-process components and which the role and config enable.")
	var tf toolsFlags
	toolsCmds := registerTools(app, &tf)

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", appName, err)
		return 2
	}
	switch cmd {
	case versionCmd.FullCommand():
		fmt.Fprintln(stdout, version.Print(appName))
		return 0
	case checkConfigCmd.FullCommand():
		return checkConfig(f, stdout, stderr)
	case componentsCmd.FullCommand():
		role, cfg, err := load(f)
		if err != nil {
			fmt.Fprintf(stderr, "%s\n", err)
			return 1
		}
		if err := supervisor.PrintComponents(stdout, role, cfg); err != nil {
			return 1
		}
		supervisor.PrintLease(context.Background(), stdout, runtime(f, role), cfg)
		return 0
	case toolsCmds.ls.FullCommand(), toolsCmds.inspect.FullCommand(), toolsCmds.verify.FullCommand():
		return runTools(cmd, toolsCmds, f, tf, stdout, stderr)
	case runCmd.FullCommand():
	}

	logger, err := logging.New(os.Stderr, f.logLevel, f.logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", appName, err)
		return 2
	}
	// Lines from main and the supervisor name a component too; the
	// components' loggers set their own over it.
	logger = log.With(logger, "component", appName)
	role, err := config.ParseRole(f.role)
	if err != nil {
		level.Error(logger).Log("msg", "invalid --role", "err", err)
		return 1
	}
	if f.memRatio <= 0 || f.memRatio > 1 {
		level.Error(logger).Log("msg", "invalid --auto-gomemlimit.ratio", "err", fmt.Sprintf("%g is not in (0, 1]", f.memRatio))
		return 1
	}
	if f.memlimit {
		setMemLimit(log.With(logger, "component", "automemlimit"), f.memRatio)
	}
	d := supervisor.New(logger, options(f, role, flagMap(app)))
	level.Info(logger).Log("msg", "starting monstackd", "version", version.Info(), "role", role.Name, "config", configName(f.configFile))
	if err := d.Run(context.Background()); err != nil {
		level.Error(logger).Log("msg", "monstackd stopped with an error", "err", err)
		return 1
	}
	level.Info(logger).Log("msg", "monstackd stopped")
	return 0
}

// setMemLimit makes the GC work harder as the heap nears the memory the
// process may use, instead of letting a query burst run into the OOM killer.
func setMemLimit(logger log.Logger, ratio float64) {
	_, err := memlimit.SetGoMemLimitWithOpts(
		memlimit.WithRatio(ratio),
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)),
		memlimit.WithLogger(logging.Slog(logger)),
	)
	if err != nil {
		level.Warn(logger).Log("msg", "failed to set GOMEMLIMIT automatically", "err", err)
	}
}

func options(f flags, role config.Role, flagMap map[string]string) supervisor.Options {
	return supervisor.Options{
		ConfigFile:      f.configFile,
		Runtime:         runtime(f, role),
		GRPCAddress:     f.grpcAddress,
		GRPCTLS:         f.grpcTLS,
		WebConfigFile:   f.webConfigFile,
		EnablePprof:     f.pprof,
		EnableLifecycle: f.enableLifecycle,
		EnableAdminAPI:  f.enableAdminAPI,
		Flags:           flagMap,
	}
}

func runtime(f flags, role config.Role) config.Runtime {
	return config.Runtime{Role: role, DataDir: f.dataDir, HTTPAddress: f.httpAddress}
}

func load(f flags) (config.Role, *config.Config, error) {
	role, err := config.ParseRole(f.role)
	if err != nil {
		return role, nil, fmt.Errorf("flag --role: %w", err)
	}
	cfg, err := config.Load(f.configFile)
	return role, cfg, err
}

// checkConfig prints one line per problem and exits 1 if there is any.
// The files the flags name (--web.config.file, --grpc-server-tls-*) are
// checked too.
func checkConfig(f flags, stdout, stderr io.Writer) int {
	role, cfg, err := load(f)
	var errs []error
	if err != nil {
		errs = config.Errors(err)
	} else {
		errs = cfg.Check(runtime(f, role), logging.Slog(log.NewNopLogger()))
		if err := supervisor.CheckLease(runtime(f, role), cfg); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, supervisor.CheckFrontend(cfg)...)
	}
	errs = append(errs, options(f, role, nil).Check()...)
	for _, e := range errs {
		fmt.Fprintf(stderr, "FAILED: %s\n", e)
	}
	if len(errs) > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "SUCCESS: %s and the files it points to are valid\n", configName(f.configFile))
	return 0
}

func configName(file string) string {
	if file == "" {
		return "<embedded default config>"
	}
	return file
}

func flagMap(app *kingpin.Application) map[string]string {
	m := map[string]string{}
	for _, fl := range app.Model().Flags {
		if fl.Name == "help" {
			continue
		}
		m[fl.Name] = fl.Value.String()
	}
	return m
}
