package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// hostNet simulates separate hosts on this machine: a bridge in the root
// network namespace, with the shared peers (MinIO, node_exporter,
// Alertmanager) on its address, and one network namespace per host, joined
// to it by a veth pair. It needs root, as the HA tests do.
type hostNet struct {
	t      *testing.T
	id     int    // the /24 is 10.77.<id>.0
	bridge string // bridge interface in the root namespace
	ip     string // the bridge's (the root namespace's) address
	hosts  []*netHost
}

// netHost is one simulated host: a network namespace with one address.
type netHost struct {
	n    *hostNet
	ns   string
	veth string // the root namespace's end
	ip   string
}

// hostNetIDs hands out subnets to the tests of this process; an id a stale
// bridge still holds (a killed earlier run) is skipped.
var (
	hostNetMu   sync.Mutex
	hostNetNext = 100
)

func newHostNet(t *testing.T) *hostNet {
	t.Helper()
	hostNetMu.Lock()
	defer hostNetMu.Unlock()
	for ; hostNetNext < 250; hostNetNext++ {
		n := &hostNet{t: t, id: hostNetNext, bridge: fmt.Sprintf("msbr%d", hostNetNext), ip: fmt.Sprintf("10.77.%d.1", hostNetNext)}
		if err := exec.Command("ip", "link", "add", n.bridge, "type", "bridge").Run(); err != nil {
			continue // taken
		}
		hostNetNext++
		t.Cleanup(n.remove)
		n.run("ip", "addr", "add", n.ip+"/24", "dev", n.bridge)
		n.run("ip", "link", "set", n.bridge, "up")
		return n
	}
	t.Fatal("no free 10.77.x.0/24 subnet for a bridge (ip link add failed: not root?)")
	return nil
}

func (n *hostNet) run(args ...string) {
	n.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		n.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// addHost creates a namespace with the next address, its loopback up.
func (n *hostNet) addHost(name string) *netHost {
	n.t.Helper()
	i := len(n.hosts)
	h := &netHost{n: n, ns: fmt.Sprintf("ms%d%s", n.id, name), veth: fmt.Sprintf("ms%dv%d", n.id, i), ip: fmt.Sprintf("10.77.%d.%d", n.id, i+2)}
	n.hosts = append(n.hosts, h)
	n.run("ip", "netns", "add", h.ns)
	n.run("ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
	n.run("ip", "link", "set", h.veth, "master", n.bridge, "up")
	n.run("ip", "-n", h.ns, "addr", "add", h.ip+"/24", "dev", "eth0")
	n.run("ip", "-n", h.ns, "link", "set", "eth0", "up")
	n.run("ip", "-n", h.ns, "link", "set", "lo", "up")
	return h
}

// remove deletes the namespaces (their veth ends go with them) and the bridge.
func (n *hostNet) remove() {
	for _, h := range n.hosts {
		_ = exec.Command("ip", "netns", "del", h.ns).Run()
	}
	_ = exec.Command("ip", "link", "del", n.bridge).Run()
}

// addr is host:port on this host.
func (h *netHost) addr(port int) string { return net.JoinHostPort(h.ip, fmt.Sprint(port)) }

// command runs bin inside the host's namespace (ip netns exec execs it, so
// the process is bin itself, for signals).
func (h *netHost) command(bin string, args ...string) (string, []string) {
	return "ip", append([]string{"netns", "exec", h.ns, bin}, args...)
}

// partition silently drops the traffic between h and o in both directions,
// as a cut link does: each host sends the other's packets to a MAC address
// nobody has, so they vanish on the bridge, while both still reach the
// root namespace (MinIO). No firewall is needed.
func (h *netHost) partition(o *netHost) {
	h.n.t.Helper()
	h.n.run("ip", "-n", h.ns, "neigh", "replace", o.ip, "lladdr", "02:00:00:00:00:01", "dev", "eth0", "nud", "permanent")
	h.n.run("ip", "-n", o.ns, "neigh", "replace", h.ip, "lladdr", "02:00:00:00:00:01", "dev", "eth0", "nud", "permanent")
}

// heal ends a partition: neighbour discovery finds the real addresses again.
func (h *netHost) heal(o *netHost) {
	h.n.t.Helper()
	h.n.run("ip", "-n", h.ns, "neigh", "del", o.ip, "dev", "eth0")
	h.n.run("ip", "-n", o.ns, "neigh", "del", h.ip, "dev", "eth0")
}
