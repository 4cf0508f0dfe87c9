package supervisor

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/monstackd/monstackd/pkg/config"
)

func roles(t *testing.T) []config.Role {
	t.Helper()
	var out []config.Role
	for _, name := range []string{"standalone", "replica-a"} {
		r, err := config.ParseRole(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// dependsTransitively reports whether a depends on b through g's declarations.
func dependsTransitively(g graph, a, b string) bool {
	byName := map[string]module{}
	for _, m := range g {
		byName[m.name] = m
	}
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if seen[n] {
			return false
		}
		seen[n] = true
		m := byName[n]
		if m.last {
			return n != b
		}
		for _, d := range m.deps {
			if d == b || walk(d) {
				return true
			}
		}
		return false
	}
	return walk(a)
}

// The graph's init, actor, reload and close orders all follow the declared
// dependencies, for every role.
func TestGraphOrders(t *testing.T) {
	for _, role := range roles(t) {
		t.Run(role.Name, func(t *testing.T) {
			g, err := buildGraph(modules(), role, config.Default())
			if err != nil {
				t.Fatal(err)
			}
			pos := map[string]int{}
			for i, m := range g {
				pos[m.name] = i
			}
			for _, m := range g {
				for _, d := range m.deps {
					if pos[d] >= pos[m.name] {
						t.Errorf("init: %s (at %d) before its dependency %s (at %d)", m.name, pos[m.name], d, pos[d])
					}
				}
			}
			// The TSDB closes after everything that uses it, the ports are
			// bound before the WAL replay.
			closeOrder := names(g.closeOrder())
			for i, n := range closeOrder {
				if dependsTransitively(g, n, TSDB) && slices.Index(closeOrder, TSDB) < i {
					t.Errorf("close: tsdb before %s, which uses it: %v", n, closeOrder)
				}
			}
			for _, port := range []string{HTTPServer, GRPCServer} {
				if pos[port] > pos[TSDB] {
					t.Errorf("init: %s after the TSDB's WAL replay", port)
				}
			}
			// Actors: dependents first, so interrupts stop consumers first;
			// signals first of all; every actor a declared module.
			actors := g.actorOrder()
			if actors[0].name != Signals || g[len(g)-1].name != Signals {
				t.Errorf("signals must be initialised last and interrupted first: actors %v", names(actors))
			}
			apos := map[string]int{}
			for i, m := range actors {
				apos[m.name] = i
				if m.kind == setup {
					t.Errorf("setup module %s has an actor", m.name)
				}
			}
			for _, m := range actors {
				for _, o := range actors {
					if dependsTransitively(g, m.name, o.name) && apos[m.name] > apos[o.name] {
						t.Errorf("actors: %s interrupted after %s, which it uses", m.name, o.name)
					}
				}
			}
			for _, want := range []string{Signals, ScrapeDiscovery, Scrape, NotifyDiscovery, Notifier, Rules, Querier, GRPCServer, HTTPServer} {
				if _, ok := apos[want]; !ok {
					t.Errorf("actor %s missing from the graph: %v", want, names(actors))
				}
			}
			if !dependsTransitively(g, Signals, TSDB) {
				t.Error("signals does not depend on every module")
			}
		})
	}
}

func TestBuildGraphErrors(t *testing.T) {
	noop := func(*components) (parts, error) { return parts{}, nil }
	off := func(config.Role, *config.Config) bool { return false }
	for name, tc := range map[string]struct {
		mods []module
		want string
	}{
		"cycle": {[]module{{name: "a", deps: []string{"b"}, init: noop}, {name: "b", deps: []string{"a"}, init: noop}},
			"dependency cycle among modules a, b"},
		"undeclared": {[]module{{name: "a", deps: []string{"x"}, init: noop}}, "module a depends on x, which is not declared"},
		"disabled":   {[]module{{name: "a", deps: []string{"b"}, init: noop}, {name: "b", enabled: off, init: noop}}, "module a depends on b, which the role and config disable"},
		"twice":      {[]module{{name: "a", init: noop}, {name: "a", init: noop}}, "module a declared twice"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := buildGraph(tc.mods, config.Role{Name: "standalone"}, config.Default())
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Ties keep the declared order; a disabled module is left out.
	g, err := buildGraph([]module{{name: "c", deps: []string{"a"}}, {name: "b", enabled: off}, {name: "a"}, {name: "z", last: true}, {name: "d"}},
		config.Role{Name: "standalone"}, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if got := names(g); !reflect.DeepEqual(got, []string{"a", "c", "d", "z"}) {
		t.Errorf("order %v, want [a c d z]", got)
	}
	// before: a hook declared from the other side orders like a dependency.
	g, err = buildGraph([]module{{name: "tsdb"}, {name: "shipper", before: []string{"tsdb"}}},
		config.Role{Name: "standalone"}, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if got := names(g); !reflect.DeepEqual(got, []string{"shipper", "tsdb"}) {
		t.Errorf("order %v, want [shipper tsdb]", got)
	}
}

// `monstackd components` prints the whole table in init order with the
// same names, kinds and dependencies, and what the role and config enable:
// drift only with peers.
func TestPrintComponents(t *testing.T) {
	paired := config.Default()
	paired.Peers.Endpoints = []string{"hostb:10901"}
	all, err := order(modules())
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range roles(t) {
		for _, cfg := range []*config.Config{config.Default(), paired} {
			t.Run(fmt.Sprintf("%s/peers=%d", role.Name, len(cfg.Peers.Endpoints)), func(t *testing.T) {
				var buf bytes.Buffer
				if err := PrintComponents(&buf, role, cfg); err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
				if len(lines) != len(all)+1 {
					t.Fatalf("got %d lines, want a header and %d components:\n%s", len(lines), len(all), buf.String())
				}
				if got := strings.Fields(lines[0]); !reflect.DeepEqual(got, []string{"COMPONENT", "ENABLED", "KIND", "DEPENDS", "ON", "DESCRIPTION"}) {
					t.Errorf("header = %q", lines[0])
				}
				for i, m := range all {
					on := m.enabled == nil || m.enabled(role, cfg)
					if m.name == Drift && on != (len(cfg.Peers.Endpoints) > 0) {
						t.Errorf("drift enabled %t with peers %v", on, cfg.Peers.Endpoints)
					}
					fields := strings.Fields(lines[i+1])
					want := []string{m.name, fmt.Sprint(on), m.kind.String(), dependsOn(m)}
					if len(fields) < 5 || !reflect.DeepEqual(fields[:4], want) {
						t.Errorf("line %q: columns %q, want %q", lines[i+1], fields, want)
					}
					if !strings.HasSuffix(lines[i+1], m.help) {
						t.Errorf("line %q does not end with the help %q", lines[i+1], m.help)
					}
				}
			})
		}
	}
}
