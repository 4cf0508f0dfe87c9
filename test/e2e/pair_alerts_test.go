package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pairRules fire the same alert at two severities, as configs/rules/node.yml
// does for HighCpuUsage: the critical one inhibits the warning one through
// the inhibit rule of configs/alertmanager.yml.
const pairRules = `groups:
  - name: pair
    interval: 1s
    rules:
      - alert: PairAlert
        expr: up{job="node"} == 1
        labels: {severity: warning}
      - alert: PairAlert
        expr: up{job="node"} == 1
        labels: {severity: critical}
`

// webhook records the Alertmanager's notifications.
type webhook struct {
	url  string
	mtx  sync.Mutex
	msgs []amNotification
}

type amNotification struct {
	Status string `json:"status"`
	Alerts []struct {
		Status   string            `json:"status"`
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
	} `json:"alerts"`
}

func startWebhook(t *testing.T) *webhook {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &webhook{url: "http://" + l.Addr().String() + "/alerts"}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n amNotification
		if err := json.Unmarshal(b, &n); err == nil {
			w.mtx.Lock()
			w.msgs = append(w.msgs, n)
			w.mtx.Unlock()
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return w
}

func (w *webhook) notifications() []amNotification {
	w.mtx.Lock()
	defer w.mtx.Unlock()
	return append([]amNotification(nil), w.msgs...)
}

// amAlert is an alert as the Alertmanager's API v2 lists it.
type amAlert struct {
	Labels   map[string]string `json:"labels"`
	StartsAt time.Time         `json:"startsAt"`
	Status   struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

func amAlerts(am string) ([]amAlert, error) {
	code, body, err := httpGet("http://" + am + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	var alerts []amAlert
	if err := json.Unmarshal(body, &alerts); err != nil {
		return nil, fmt.Errorf("%d %s: %w", code, body, err)
	}
	return alerts, nil
}

// oneLogicalAlert checks the Alertmanager holds PairAlert once per
// severity, without a replica label: the critical one active, the warning
// one inhibited by it. It returns the critical one.
func oneLogicalAlert(am string) (amAlert, error) {
	alerts, err := amAlerts(am)
	if err != nil {
		return amAlert{}, err
	}
	bySeverity := map[string][]amAlert{}
	for _, a := range alerts {
		if a.Labels["alertname"] != "PairAlert" {
			continue
		}
		if _, ok := a.Labels["replica"]; ok {
			return amAlert{}, fmt.Errorf("alert with a replica label: %v", a.Labels)
		}
		bySeverity[a.Labels["severity"]] = append(bySeverity[a.Labels["severity"]], a)
	}
	crit, warn := bySeverity["critical"], bySeverity["warning"]
	if len(crit) != 1 || len(warn) != 1 {
		return amAlert{}, fmt.Errorf("%d critical and %d warning alerts, want one each: %+v", len(crit), len(warn), alerts)
	}
	if crit[0].Status.State != "active" {
		return amAlert{}, fmt.Errorf("critical alert %s", crit[0].Status.State)
	}
	if warn[0].Status.State != "suppressed" || len(warn[0].Status.InhibitedBy) == 0 {
		return amAlert{}, fmt.Errorf("warning alert %s, inhibited by %v: the inhibit rule does not hold", warn[0].Status.State, warn[0].Status.InhibitedBy)
	}
	return crit[0], nil
}

// Both replicas evaluate the same rules and send to the same Alertmanager
// (configs/alertmanager.yml, with test timings and receiver). It holds one
// logical alert, and keeps it active, not resolved and fired again, through
// the SIGKILL of either replica; the inhibit rule holds throughout.
func TestPairAlertContinuity(t *testing.T) {
	hook := startWebhook(t)
	amYAML, err := os.ReadFile("../../configs/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		"http://localhost:5001/alerts", hook.url,
		"group_wait: 30s", "group_wait: 1s",
		"group_interval: 5m", "group_interval: 1s",
	).Replace(string(amYAML))
	if !strings.Contains(cfg, hook.url) || !strings.Contains(cfg, "inhibit_rules") {
		t.Fatalf("configs/alertmanager.yml changed shape:\n%s", cfg)
	}
	p := newPair(t, pairOptions{rules: pairRules, alertmanager: cfg, monstack: "rules: {resend_delay: 1s}\n"})
	p.peered(t)

	var first amAlert
	eventually(t, 30*time.Second, "one logical alert in the Alertmanager", func() (err error) {
		first, err = oneLogicalAlert(p.am)
		return err
	})
	eventually(t, 30*time.Second, "the firing notification", func() error {
		for _, n := range hook.notifications() {
			if n.Status == "firing" {
				return nil
			}
		}
		return fmt.Errorf("notifications %+v", hook.notifications())
	})

	for i := range p.d {
		p.d[i].signal(t, syscall.SIGKILL)
		p.d[i].wait(t, 10*time.Second)
		// Longer than an alert's validity after its last send (4 × the
		// 1s resend delay): the survivor alone keeps it active.
		until := time.Now().Add(15 * time.Second)
		for time.Now().Before(until) {
			a, err := oneLogicalAlert(p.am)
			if err != nil {
				t.Fatalf("replica %d down: %v", i, err)
			}
			if !a.StartsAt.Equal(first.StartsAt) {
				t.Fatalf("replica %d down: the alert restarted at %s (first %s)", i, a.StartsAt, first.StartsAt)
			}
			time.Sleep(250 * time.Millisecond)
		}
		// Back, and sending again, before the other one goes.
		p.start(t, i)
		eventually(t, 30*time.Second, "the restarted replica sending alerts", func() error {
			if v, err := p.d[i].metric(`prometheus_notifications_sent_total{alertmanager="http://` + p.am + `/api/v2/alerts"}`); err != nil || v < 1 {
				return fmt.Errorf("prometheus_notifications_sent_total %v %v", v, err)
			}
			return nil
		})
	}
	for _, n := range hook.notifications() {
		for _, a := range n.Alerts {
			if a.Status == "resolved" || !a.StartsAt.Equal(first.StartsAt) || a.Labels["severity"] != "critical" {
				t.Errorf("notification of %s alert %v starting %s: want only the critical alert firing since %s", a.Status, a.Labels, a.StartsAt, first.StartsAt)
			}
		}
	}

	// The target goes away: both replicas resolve the alert, and the
	// Alertmanager notifies the resolution once.
	before := len(hook.notifications())
	p.nodeProc.signal(t, syscall.SIGTERM)
	eventually(t, 60*time.Second, "the alert resolved in the Alertmanager", func() error {
		alerts, err := amAlerts(p.am)
		if err != nil {
			return err
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == "PairAlert" {
				return fmt.Errorf("still %s: %v", a.Status.State, a.Labels)
			}
		}
		return nil
	})
	resolved := func() int {
		n := 0
		for _, m := range hook.notifications()[before:] {
			for _, a := range m.Alerts {
				if a.Status == "resolved" && a.Labels["severity"] == "critical" {
					n++
				}
			}
		}
		return n
	}
	eventually(t, 30*time.Second, "the resolved notification", func() error {
		if n := resolved(); n == 0 {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	// Several group intervals later, still one.
	time.Sleep(5 * time.Second)
	if n := resolved(); n != 1 {
		t.Errorf("%d resolved notifications, want 1", n)
	}
}

// promAlert is an alert as Prometheus' /api/v1/alerts lists it.
type promAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
}

func pendingAlert(d *daemon, name string) (promAlert, error) {
	_, body, err := httpGet(d.url("/prometheus/api/v1/alerts"))
	if err != nil {
		return promAlert{}, err
	}
	var r struct {
		Data struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return promAlert{}, err
	}
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == name {
			return a, nil
		}
	}
	return promAlert{}, fmt.Errorf("no alert %s on %s: %s", name, d.http, body)
}

// A replica SIGKILLed while an alert is pending restores the pending state
// from the pair's record when it comes back: the same activation as its
// peer, so it fires when the pair would have, not its downtime later.
func TestPairRestoresPendingAlert(t *testing.T) {
	const hold = 40 * time.Second
	p := newPair(t, pairOptions{rules: `groups:
  - name: pending
    interval: 1s
    rules:
      - alert: PairPending
        expr: up{job="node"} == 1
        for: 40s
`})
	p.peered(t)
	a, b := p.d[0], p.d[1]
	var before promAlert
	eventually(t, 30*time.Second, "the alert pending on A", func() (err error) {
		before, err = pendingAlert(a, "PairPending")
		return err
	})
	// A goes down for a third of the hold time, mid-way.
	time.Sleep(time.Until(before.ActiveAt.Add(hold / 4)))
	a.signal(t, syscall.SIGKILL)
	a.wait(t, 10*time.Second)
	time.Sleep(hold / 3)
	p.start(t, 0)
	a = p.d[0]

	peer, err := pendingAlert(b, "PairPending")
	if err != nil {
		t.Fatal(err)
	}
	// The rules manager restores after its second evaluation. Activations
	// are stored in whole seconds, and the replicas evaluate at their own
	// offsets.
	var restored promAlert
	eventually(t, 20*time.Second, "the alert restored on A with the pair's activation", func() (err error) {
		if restored, err = pendingAlert(a, "PairPending"); err != nil {
			return err
		}
		if d := restored.ActiveAt.Sub(peer.ActiveAt); d < -2*time.Second || d > 2*time.Second {
			return fmt.Errorf("restored activation %s, the peer's %s (before the kill %s)", restored.ActiveAt, peer.ActiveAt, before.ActiveAt)
		}
		return nil
	})
	if restored.State != "pending" {
		t.Fatalf("restored state %q, want pending (it fired early)", restored.State)
	}
	eventually(t, hold, "the alert firing on A", func() error {
		al, err := pendingAlert(a, "PairPending")
		if err != nil {
			return err
		}
		if al.State != "firing" {
			return fmt.Errorf("state %s", al.State)
		}
		return nil
	})
	if fired, due := time.Now(), peer.ActiveAt.Add(hold); fired.Sub(due) > 3*time.Second {
		t.Errorf("A fired at %s, %s after the pair's due time %s", fired, fired.Sub(due), due)
	}
}
