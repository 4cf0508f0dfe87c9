package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

type machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemTotal string `json:"mem_total"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
}

func readMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m.CPUModel = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				m.MemTotal = strings.TrimSpace(strings.TrimPrefix(l, "MemTotal:"))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

type report struct {
	Date       string   `json:"date"`
	Scale      scale    `json:"scale"`
	Machine    machine  `json:"machine"`
	Versions   []string `json:"versions"`
	Figures    []figure `json:"figures"`
	Compared   int      `json:"queries_compared"`
	Skipped    []string `json:"queries_not_compared,omitempty"`
	Mismatches []string `json:"mismatches"`
	Profiles   []string `json:"profiles,omitempty"`
	Notes      []string `json:"notes,omitempty"`
	// Availability counts the queries answered while a replica of each
	// pair was killed and restarted (pair phase).
	Availability []availability `json:"pair_availability,omitempty"`
	// Failures are monstackd failing what it must not (the pair's queries
	// while a replica is down); any fails the run, as a mismatch does.
	Failures []string `json:"failures,omitempty"`
}

func (r *report) write(dir, base string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, base+".json"), append(j, '\n'), 0o644); err != nil {
		return "", err
	}
	md := filepath.Join(dir, base+".md")
	return md, os.WriteFile(md, []byte(r.markdown()), 0o644)
}

func fmtStat(s stat, unit string) string {
	return fmt.Sprintf("%s (%s–%s)", fmtVal(s.Median, unit), fmtVal(s.Min, unit), fmtVal(s.Max, unit))
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "MiB", "ms":
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# monstackd vs stock Prometheus + Thanos — %s, scale %s\n\n", r.Date, r.Scale.Name)
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %s RAM, Linux %s, %s.  \n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Kernel, r.Machine.Go)
	fmt.Fprintf(&b, "Workload: %d active series on %d targets, scraped every %s; warm-up %s, measured %s in %d windows; %d repetitions per query.  \n",
		r.Scale.Series, r.Scale.Targets, r.Scale.ScrapeInterval, r.Scale.Warmup, r.Scale.Measure, r.Scale.MeasureWindows, r.Scale.QueryRepetitions)
	fmt.Fprintf(&b, "Versions: %s.  \n", strings.Join(r.Versions, ", "))
	fmt.Fprintf(&b, "Stock set: Prometheus + Thanos sidecar + Thanos query (`--query.replica-label=replica`) + query-frontend. Values: median (min–max); ratio = monstackd / baseline median. Resident memory is VmRSS summed over a setup's processes; every binary first starts with its page cache dropped, as after a deploy (restarts after SIGKILL find it cached, as after a crash).  \n")
	fmt.Fprintf(&b, "Bucket phase (figures \"bucket …\"), after the others are stopped: %s of the same workload (%d series on %d instances, every %s) written as 2h TSDB blocks into a MinIO bucket with external labels cluster=\"bench\", replica=\"a\"; the stock store path is thanos store + thanos query (`--query.replica-label=replica`), against one monstackd with that bucket and nothing to scrape, so that every answer comes from its store gateway. Queries are evaluated %s before the history's end, both sides interleaved. The store gateway part of monstackd's memory is its resident memory less that of an idle monstackd without a bucket started at the same time (the idle one runs no queries, so the part includes the query engine's share).\n\n",
		r.Scale.History, r.Scale.HistorySeries, r.Scale.Targets, r.Scale.ScrapeInterval, bucketEvalBeforeEnd)
	fmt.Fprintf(&b, "Pair phase (figures \"pair …\"), last, the others stopped: two monstackd (`--role=replica-a|b`, peering over gRPC on loopback, peer response timeout 5s) against the stock HA pair — Prometheus A and B (external labels replica=\"a\"/\"b\") + a Thanos sidecar each + Thanos query over both sidecars (`--query.replica-label=replica`) + query-frontend — all scraping one target. Pair query latencies pool both daemons; Prometheus A direct is the floor. Results are compared %d scrape intervals in the past, where the two deduplications agree (at a range's last step monstackd may end with the other replica's newer sample). Then replica A of each pair (monstackd A; Prometheus A) is SIGKILLed and restarted while a client queries through the other side (monstackd B; the frontend), one query per %s at most, until the pair is whole again and for %s at least, and replica A (monstackd A; sidecar A) is stopped with SIGSTOP, a silent partitioned peer, while one query after another runs through the other side.\n\n", pairCompareLag, killQueryPace, killQueryWindow(r.Scale))
	b.WriteString("| figure | baseline | unit | baseline value | monstackd | ratio | target | met |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		target, met := "", ""
		if f.Target > 0 {
			target = fmt.Sprintf("≤ %.2f", f.Target)
			met = "no"
			if *f.Met {
				met = "yes"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.2f | %s | %s |\n", f.Name, f.Baseline, f.Unit, fmtStat(f.Stock, f.Unit), fmtStat(f.Monstackd, f.Unit), f.Ratio, target, met)
	}
	if len(r.Availability) > 0 {
		b.WriteString("\nQueries through the surviving side while replica A is SIGKILLed and restarted (target for monstackd: 0 failed; partial = answered with a warning):\n\n")
		b.WriteString("| pair | killed | queried through | kills | seconds | queries | partial | failed |\n|---|---|---|---|---|---|---|---|\n")
		for _, a := range r.Availability {
			b.WriteString(fmtAvailability(a) + "\n")
		}
		for _, a := range r.Availability {
			for _, e := range a.Errors {
				fmt.Fprintf(&b, "- %s, failed: %s\n", a.Setup, e)
			}
		}
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "\nFAILURE %s\n", f)
	}
	fmt.Fprintf(&b, "\nQuery results compared between the stock set and monstackd: %d, mismatches: %d.\n", r.Compared, len(r.Mismatches))
	for _, m := range r.Mismatches {
		fmt.Fprintf(&b, "- MISMATCH %s\n", m)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "- not compared: %s\n", s)
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintf(&b, "\nProfiles of monstackd during the query phase, (`-bucket-`) the bucket phase and (`-pair-`, monstackd B) the pair phase: %s.\n", strings.Join(r.Profiles, ", "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	return b.String()
}
