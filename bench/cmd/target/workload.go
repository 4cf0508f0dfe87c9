package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// The workload is a pure function of (listener, tick): every value is derived
// from a per-series hash and the tick number, never from state that advances
// with scrapes, so any number of scrapers hitting the target within one tick
// read byte-identical bodies.

const (
	numServices = 20
	numShards   = 100
	histLines   = 14 // 12 buckets (incl. +Inf) + _sum + _count

	gaugeName   = "bench_memory_usage_bytes"
	counterName = "bench_http_requests_total"
	histName    = "bench_http_request_duration_seconds"

	gaugeShare = 0.40
	histShare  = 0.25 // the counters take the rest (0.35)

	// Pod-name suffixes are 5 base-27 digits (the Kubernetes alphabet). A pod's
	// suffix is a bijection of its index, so names are unique within a
	// listener as long as it has fewer than 27^5 pods.
	suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"
	suffixSpace    = 27 * 27 * 27 * 27 * 27
	suffixMul      = 7654321 // not a multiple of 3, so invertible mod 27^5

	golden = 0x9e3779b97f4a7c15

	// Salts that separate the independent hash streams of one series.
	saltWalk   = 0x5157a1c3e2b4d607
	saltJitter = 0x2bd1f7e5a9c38604
	saltHistB  = 0x6c8e9cf570932bd5
	saltChurn  = 0x3f84d5b5b5470917
	saltPodRS  = 0x1b873593cc9e2d51
	saltSuffix = 0x85ebca6bc2b2ae35
)

var (
	containers = [...]string{"app", "istio-proxy", "fluent-bit", "config-reloader"}
	// Sidecars use far less memory than the app container.
	containerScale = [...]float64{1, 0.25, 0.08, 0.02}
	methods        = [...]string{"GET", "POST", "PUT", "DELETE"}
	statuses       = [...]string{"200", "201", "404", "500"}
	// Upper bound of a counter's mean increment per tick, by status; errors
	// are rarer than successes. Must stay <= 50 so increments stay < 100.
	statusMaxRate = [...]uint64{50, 20, 8, 3}

	// le values exactly as Prometheus 3 normalizes them on ingestion ("1.0",
	// not "1"), so the stored label is the same whatever the scraper's
	// version or protocol.
	bucketLE     = [...]string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"}
	bucketBounds = [...]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

const numProfiles = 16

// Latency profiles: each histogram mixes a fast log-normal component (A) and
// a slow one (B) whose per-tick shares vary, so quantiles move over time.
// cdf values are precomputed once; rendering only multiplies.
var profA, profB = latencyProfiles()

type latencyProfile struct {
	cdf  [len(bucketBounds)]float64
	mean float64
}

func latencyProfiles() (a, b [numProfiles]latencyProfile) {
	mk := func(median, sigma float64) latencyProfile {
		var p latencyProfile
		prev := 0.0
		for i, le := range bucketBounds {
			f := 0.5 * math.Erfc(-(math.Log(le)-math.Log(median))/(sigma*math.Sqrt2))
			f = math.Min(math.Max(f, prev), 1) // keep cumulative counts monotone in le
			p.cdf[i], prev = f, f
		}
		p.mean = median * math.Exp(sigma*sigma/2)
		return p
	}
	for i := range numProfiles {
		median := 0.01 * math.Exp2(float64(i)/4) // 10ms .. ~134ms
		a[i] = mk(median, 0.5)
		b[i] = mk(8*median, 0.8)
	}
	return a, b
}

type config struct {
	series            int
	listeners         int
	churnFraction     float64
	churnTicks        int64
	counterResetTicks int64
}

func (c config) validate() error {
	switch {
	case c.series < 0:
		return errors.New("--series must be >= 0")
	case c.listeners < 1:
		return errors.New("need at least one --listen address")
	case c.churnFraction < 0 || c.churnFraction > 1:
		return errors.New("--churn-fraction must be within [0, 1]")
	case c.churnTicks < 0:
		return errors.New("--churn-ticks must be >= 0 (0 disables churn)")
	case c.counterResetTicks < 0:
		return errors.New("--counter-reset-ticks must be >= 0 (0 disables resets)")
	}
	return nil
}

// tmpl is the text of a sample line before its value. A static line is all
// in head (tail empty); a churning pod's line is head + pod name + tail, the
// name being computed per render from the tick's generation.
type tmpl struct{ head, tail string }

type series struct {
	t   tmpl
	h   uint64 // identity hash; all values derive from it and the tick
	pod int32
}

type histSeries struct {
	t   [histLines]tmpl
	h   uint64
	pod int32
}

type podInfo struct {
	svc   int8
	churn bool
}

// part is one listener's disjoint share of the series.
type part struct {
	pods     []podInfo
	gauges   []series // gauge j: pod j/4, container j%4
	counters []series // counter j: pod j/16, method (j/4)%4, status j%4
	hists    []histSeries
	rsHash   [numServices]uint32 // per-service seed of the pod-template-hash
	sufOff   uint64
}

type workload struct {
	cfg   config
	parts []*part
}

// listenerShare splits total series over listeners: the first total%n
// listeners get one more, so the shares sum exactly to total.
func listenerShare(total, n, i int) int {
	s := total / n
	if i < total%n {
		s++
	}
	return s
}

// kindSplit splits a listener's n series into gauge, counter and histogram
// series counts (histograms in whole groups of histLines); g + c + h*histLines
// == n exactly, the rounding of the histogram count landing on counters.
func kindSplit(n int) (g, c, h int) {
	h = int(math.Round(float64(n) * histShare / histLines))
	g = int(math.Round(float64(n) * gaugeShare))
	c = n - g - h*histLines
	for c < 0 && h > 0 {
		h--
		c += histLines
	}
	if c < 0 {
		g, c = g+c, 0
	}
	return g, c, h
}

func newWorkload(cfg config) (*workload, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &workload{cfg: cfg}
	for l := range cfg.listeners {
		p, err := newPart(cfg, l, listenerShare(cfg.series, cfg.listeners, l))
		if err != nil {
			return nil, err
		}
		w.parts = append(w.parts, p)
	}
	return w, nil
}

// podService maps pod p to (service, shard) so that any 100 consecutive pods
// cover all shards and every 2000 cover each (service, shard) pair once:
// small shares still give sum by (shard) its 100 groups.
func podService(p int) (svc, shard int) {
	shard = p % numShards
	return (shard + p/numShards) % numServices, shard
}

func newPart(cfg config, l, n int) (*part, error) {
	g, c, h := kindSplit(n)
	npods := max((g+3)/4, (c+15)/16, h)
	if npods > suffixSpace {
		return nil, fmt.Errorf("listener %d: %d pods exceed the unique pod-name space (%d); use more listeners", l, npods, suffixSpace)
	}
	pt := &part{
		pods:     make([]podInfo, npods),
		gauges:   make([]series, g),
		counters: make([]series, c),
		hists:    make([]histSeries, h),
		sufOff:   splitmix64(uint64(l)^saltSuffix) % suffixSpace,
	}
	for s := range pt.rsHash {
		pt.rsHash[s] = uint32(splitmix64(uint64(l)<<8 ^ uint64(s) ^ saltPodRS))
	}
	churnOn := cfg.churnTicks > 0 && cfg.churnFraction > 0
	for p := range pt.pods {
		svc, _ := podService(p)
		pt.pods[p] = podInfo{
			svc:   int8(svc),
			churn: churnOn && unit(splitmix64(uint64(l)<<32^uint64(p)^saltChurn)) < cfg.churnFraction,
		}
	}

	// labelsUpToPod returns `name{service="svc-S",shard="D",pod="` and the
	// static pod name (generation 0).
	labelsUpToPod := func(name string, p int) (string, string) {
		svc, shard := podService(p)
		head := name + `{service="svc-` + strconv.Itoa(svc) + `",shard="` + strconv.Itoa(shard) + `",pod="`
		return head, string(pt.appendPod(nil, p, 0))
	}
	mk := func(name string, p int, rest string) tmpl {
		head, pod := labelsUpToPod(name, p)
		tail := `"` + rest + `} `
		if pt.pods[p].churn {
			return tmpl{head, tail}
		}
		return tmpl{head + pod + tail, ""}
	}
	seriesHash := func(kind, j int) uint64 {
		return splitmix64(uint64(l)<<48 ^ uint64(kind)<<40 ^ uint64(j))
	}

	for j := range pt.gauges {
		p := j / 4
		pt.gauges[j] = series{mk(gaugeName, p, `,container="`+containers[j%4]+`"`), seriesHash(1, j), int32(p)}
	}
	for j := range pt.counters {
		p := j / 16
		rest := `,method="` + methods[(j/4)%4] + `",status="` + statuses[j%4] + `"`
		pt.counters[j] = series{mk(counterName, p, rest), seriesHash(2, j), int32(p)}
	}
	for j := range pt.hists {
		hs := &pt.hists[j]
		hs.h, hs.pod = seriesHash(3, j), int32(j)
		for i, le := range bucketLE {
			hs.t[i] = mk(histName+"_bucket", j, `,le="`+le+`"`)
		}
		hs.t[12] = mk(histName+"_sum", j, "")
		hs.t[13] = mk(histName+"_count", j, "")
	}
	return pt, nil
}

// appendPod appends pod p's name in generation gen:
// svc-S-<pod-template-hash>-<suffix>. A rotation changes the 6-hex
// pod-template-hash, like a Deployment rollout; mix24 is a bijection, so
// consecutive generations never repeat a name. The suffix is a bijection of
// p, so names are unique within the listener whatever the generations.
func (pt *part) appendPod(b []byte, p int, gen int64) []byte {
	const hex = "0123456789abcdef"
	svc := int(pt.pods[p].svc)
	b = append(b, "svc-"...)
	b = strconv.AppendInt(b, int64(svc), 10)
	b = append(b, '-')
	x := mix24(pt.rsHash[svc] + uint32(gen))
	for sh := 20; sh >= 0; sh -= 4 {
		b = append(b, hex[(x>>sh)&0xf])
	}
	b = append(b, '-')
	y := (uint64(p)*suffixMul + pt.sufOff) % suffixSpace
	var s [5]byte
	for i := 4; i >= 0; i-- {
		s[i] = suffixAlphabet[y%27]
		y /= 27
	}
	return append(b, s[:]...)
}

func (w *workload) generation(k int64) int64 {
	if w.cfg.churnTicks <= 0 {
		return 0
	}
	return k / w.cfg.churnTicks
}

func (pt *part) appendPrefix(b []byte, t *tmpl, pod int32, gen int64) []byte {
	b = append(b, t.head...)
	if t.tail == "" {
		return b
	}
	b = pt.appendPod(b, int(pod), gen)
	return append(b, t.tail...)
}

// render appends listener l's exposition (text format 0.0.4) at tick k.
// Ticks are assumed non-negative (they come from the Unix clock). A ts > 0 is
// written as every sample's timestamp (ms).
func (w *workload) render(b []byte, l int, k, ts int64) []byte {
	pt := w.parts[l]
	gen := w.generation(k)
	// Counters of a churning pod start from 0 with each new pod, as a
	// restarted process's would.
	genStart := gen * w.cfg.churnTicks

	if len(pt.gauges) > 0 {
		b = append(b, "# HELP "+gaugeName+" Synthetic container memory usage (benchmark workload).\n# TYPE "+gaugeName+" gauge\n"...)
		for j := range pt.gauges {
			s := &pt.gauges[j]
			b = pt.appendPrefix(b, &s.t, s.pod, gen)
			b = strconv.AppendInt(b, gaugeValue(s.h, k, containerScale[j%4]), 10)
			b = endLine(b, ts)
		}
	}

	if len(pt.counters) > 0 {
		b = append(b, "# HELP "+counterName+" Synthetic HTTP requests by method and status (benchmark workload).\n# TYPE "+counterName+" counter\n"...)
		for j := range pt.counters {
			s := &pt.counters[j]
			base := int64(-1) // count from tick 0
			if pt.pods[s.pod].churn {
				base = genStart
			}
			if kr, ok := w.lastReset(s.h, k); ok && kr > base {
				base = kr
			}
			a := 1 + s.h%statusMaxRate[j%4]
			b = pt.appendPrefix(b, &s.t, s.pod, gen)
			b = strconv.AppendUint(b, counterSince(s.h, a, k, base), 10)
			b = endLine(b, ts)
		}
	}

	if len(pt.hists) > 0 {
		b = append(b, "# HELP "+histName+" Synthetic HTTP request latency (benchmark workload).\n# TYPE "+histName+" histogram\n"...)
		for j := range pt.hists {
			hs := &pt.hists[j]
			base := int64(-1)
			if pt.pods[hs.pod].churn {
				base = genStart
			}
			hb := splitmix64(hs.h ^ saltHistB)
			na := counterSince(hs.h, 1+hs.h%50, k, base)
			nb := counterSince(hb, 1+hb%10, k, base)
			pa, pb := &profA[(hs.h>>16)%numProfiles], &profB[(hs.h>>16)%numProfiles]
			fa, fb := float64(na), float64(nb)
			for i := range bucketBounds {
				// Truncation is floor for these non-negative values, and the
				// products are monotone in both the count and the cdf.
				b = pt.appendPrefix(b, &hs.t[i], hs.pod, gen)
				b = strconv.AppendUint(b, uint64(fa*pa.cdf[i])+uint64(fb*pb.cdf[i]), 10)
				b = endLine(b, ts)
			}
			b = pt.appendPrefix(b, &hs.t[11], hs.pod, gen)
			b = strconv.AppendUint(b, na+nb, 10)
			b = endLine(b, ts)
			b = pt.appendPrefix(b, &hs.t[12], hs.pod, gen)
			b = strconv.AppendFloat(b, fa*pa.mean+fb*pb.mean, 'g', -1, 64)
			b = endLine(b, ts)
			b = pt.appendPrefix(b, &hs.t[13], hs.pod, gen)
			b = strconv.AppendUint(b, na+nb, 10)
			b = endLine(b, ts)
		}
	}
	return b
}

// resetSubset reports whether the counter with hash h belongs to the ~5% that
// reset every counterResetTicks ticks, each at its own phase.
func (w *workload) resetSubset(h uint64) bool {
	return w.cfg.counterResetTicks > 0 && (h>>20)%20 == 0
}

// lastReset returns the latest tick <= k at which (tick + phase) % R == 0.
func (w *workload) lastReset(h uint64, k int64) (int64, bool) {
	if !w.resetSubset(h) {
		return 0, false
	}
	r := w.cfg.counterResetTicks
	phase := int64((h >> 32) % uint64(r))
	return k - (k+phase)%r, true
}

// counterRaw is a counter whose increment per tick, a + u_k - u_{k-1} with
// u_k = tickHash % a in [0, a), lies in [1, 2a-1]: strictly increasing, mean
// rate a per tick, per-tick jitter, and O(1) to evaluate at any tick.
func counterRaw(h, a uint64, k int64) uint64 {
	return a*uint64(k) + tickHash(h, k)%a
}

// counterSince is counterRaw counted from tick base (0 at base), or from
// tick 0 when base < 0.
func counterSince(h, a uint64, k, base int64) uint64 {
	v := counterRaw(h, a, k)
	if base >= 0 {
		v -= counterRaw(h, a, base)
	}
	return v
}

// gaugeValue is a series-specific level (50..200 MB for the app container)
// times a slow walk (value noise: hash knots every 16 ticks, linearly
// interpolated) plus a small per-tick jitter, so it changes every tick.
// Rounded to whole bytes, as memory readings are.
func gaugeValue(h uint64, k int64, scale float64) int64 {
	level := 1e8 * scale * (0.5 + 1.5*unit(h))
	q, r := k/16, k%16
	n0 := unit(tickHash(h^saltWalk, q))
	n1 := unit(tickHash(h^saltWalk, q+1))
	walk := n0 + (n1-n0)*float64(r)/16
	jitter := unit(tickHash(h^saltJitter, k))
	return int64(level * (0.8 + 0.4*walk + 0.02*jitter))
}

func splitmix64(x uint64) uint64 {
	x += golden
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// tickHash is the k-th output of a SplitMix64 stream seeded by h.
func tickHash(h uint64, k int64) uint64 {
	return splitmix64(h + uint64(k)*golden)
}

// unit maps a hash to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) * 0x1p-53 }

// mix24 is a bijection on 24 bits (xorshifts and odd multiplications).
func mix24(x uint32) uint32 {
	const m = 1<<24 - 1
	x &= m
	x ^= x >> 12
	x = (x * 0x9e3779) & m
	x ^= x >> 11
	x = (x * 0x85ebcb) & m
	x ^= x >> 13
	return x
}

// endLine ends a sample line, with the explicit timestamp ts when ts > 0.
func endLine(b []byte, ts int64) []byte {
	if ts > 0 {
		b = append(b, ' ')
		b = strconv.AppendInt(b, ts, 10)
	}
	return append(b, '\n')
}
