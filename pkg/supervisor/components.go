package supervisor

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/monstackd/monstackd/pkg/config"
)

// Component names, as `monstackd components` prints them.
const (
	TSDB    = "tsdb"
	Scrape  = "scrape"
	Rules   = "rules"
	Sidecar = "sidecar"
	Querier = "querier"
	Web     = "web"
)

// Component is one in-process component of the graph.
type Component struct {
	Name string
	// Critical components end the process when they fail; the others are
	// restarted with backoff while ingestion goes on.
	Critical bool
	Deps     []string
	Help     string
	// Enabled says whether the role and config run it.
	Enabled func(config.Role, *config.Config) bool
}

// Kind is "critical" or "non-critical".
func (c Component) Kind() string {
	if c.Critical {
		return "critical"
	}
	return "non-critical"
}

// DependsOn lists the dependencies comma-separated, "-" for none.
func (c Component) DependsOn() string {
	if len(c.Deps) == 0 {
		return "-"
	}
	return strings.Join(c.Deps, ",")
}

func always(config.Role, *config.Config) bool { return true }

// Components is the component graph, in start order (dependencies first).
func Components() []Component {
	return []Component{
		{Name: TSDB, Critical: true, Enabled: always,
			Help: "local Prometheus TSDB: WAL, head, 2h blocks"},
		{Name: Scrape, Critical: true, Deps: []string{TSDB}, Enabled: always,
			Help: "service discovery and scraping of prometheus.yml's jobs"},
		{Name: Rules, Deps: []string{TSDB}, Enabled: always,
			Help: "recording and alerting rules, notifier to Alertmanager (replica label dropped)"},
		{Name: Sidecar, Critical: true, Deps: []string{TSDB}, Enabled: always,
			Help: "local TSDB as Thanos StoreAPI + Info, in-process and on --grpc.address"},
		{Name: Querier, Deps: []string{Sidecar}, Enabled: always,
			Help: "Thanos querier over a ProxyStore, penalty dedup on the replica label"},
		{Name: Web, Critical: true, Deps: []string{Querier, Scrape, Rules}, Enabled: always,
			Help: "HTTP: query API and UI, Prometheus API, health, readiness, reload, metrics"},
	}
}

// PrintComponents writes the graph with what the role and config enable.
func PrintComponents(w io.Writer, role config.Role, cfg *config.Config) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "COMPONENT\tENABLED\tKIND\tDEPENDS ON\tDESCRIPTION\n")
	for _, c := range Components() {
		fmt.Fprintf(tw, "%s\t%t\t%s\t%s\t%s\n", c.Name, c.Enabled(role, cfg), c.Kind(), c.DependsOn(), c.Help)
	}
	return tw.Flush()
}
