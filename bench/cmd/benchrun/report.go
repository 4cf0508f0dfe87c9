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
	fmt.Fprintf(&b, "\nQuery results compared between the stock set and monstackd: %d, mismatches: %d.\n", r.Compared, len(r.Mismatches))
	for _, m := range r.Mismatches {
		fmt.Fprintf(&b, "- MISMATCH %s\n", m)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "- not compared: %s\n", s)
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintf(&b, "\nProfiles of monstackd during the query phase and (`-bucket-`) the bucket phase: %s.\n", strings.Join(r.Profiles, ", "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	return b.String()
}
