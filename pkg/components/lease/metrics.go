package lease

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	held, epoch, expiry prometheus.Gauge
	holder              *prometheus.GaugeVec
	transitions         *prometheus.CounterVec
	errors              prometheus.Counter

	holderName string // the holder label currently set
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "monstackd_compactor_lease_"
	m := &metrics{
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "held",
			Help: "1 while this daemon holds the compactor lease and is within its safe end."}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "epoch",
			Help: "Epoch of the compactor lease as last read or written."}),
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "expiry_timestamp_seconds",
			Help: "Expiry written in the compactor lease as last read or written (the writer's clock)."}),
		holder: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "holder",
			Help: "1 for the holder of the compactor lease as last read or written."}, []string{"holder"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "transitions_total",
			Help: "Transitions of this daemon to holding the compactor lease or standing by."}, []string{"to"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "errors_total",
			Help: "Failed reads and writes of the compactor lease object."}),
	}
	m.transitions.WithLabelValues("held")
	m.transitions.WithLabelValues("standby")
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.held, m.epoch, m.expiry, m.holder, m.transitions, m.errors}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, r := range cs[:i] {
				reg.Unregister(r)
			}
			return nil, err
		}
	}
	return m, nil
}

// setHolder moves the holder info series to name; "" removes it.
func (m *metrics) setHolder(name string) {
	if name == m.holderName {
		return
	}
	if m.holderName != "" {
		m.holder.DeleteLabelValues(m.holderName)
	}
	if name != "" {
		m.holder.WithLabelValues(name).Set(1)
	}
	m.holderName = name
}
