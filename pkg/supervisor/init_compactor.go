package supervisor

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/go-kit/log/level"
	"github.com/thanos-io/thanos/pkg/compact"

	"github.com/monstackd/monstackd/pkg/components/compactor"
	"github.com/monstackd/monstackd/pkg/components/lease"
	"github.com/monstackd/monstackd/pkg/config"
)

// initCompactor builds the compactor over the shared bucket. In a pair both
// daemons carry it and the lease in the bucket picks the one that runs it;
// the other takes over when the holder's lease expires. Its scratch
// directory is beside the TSDB, not in it (DESIGN.md §3.16).
func (c *components) initCompactor() (parts, error) {
	cc := c.cfg.Compactor
	logger, reg := c.logger(Compactor), c.registry()
	var l *lease.Lease
	if cc.Lease.Enabled {
		st, err := leaseStore(c.rt, c.cfg)
		if err != nil {
			return parts{}, err
		}
		if l, err = lease.New(lease.Options{Logger: logger, Registerer: reg, Store: st, Holder: c.rt.Role.Name, TTL: time.Duration(cc.Lease.TTL)}); err != nil {
			return parts{}, fmt.Errorf("compactor.lease: %w", err)
		}
		c.d.readiness.SetInfo(leaseDetail, func() string { return l.State().String() })
		c.lease = l
	}
	var replicaLabels []string
	if cc.Deduplication {
		replicaLabels = []string{c.cfg.Query.ReplicaLabel}
	}
	o := compactor.Options{
		Logger:                logger,
		Registerer:            reg,
		Bucket:                c.bucket,
		Dir:                   c.cfg.CompactorDir(c.rt),
		Interval:              time.Duration(cc.Interval),
		Concurrency:           cc.Concurrency,
		DownsampleConcurrency: cc.DownsampleConcurrency,
		DeleteDelay:           time.Duration(cc.DeleteDelay),
		ConsistencyDelay:      time.Duration(cc.ConsistencyDelay),
		ReplicaLabels:         replicaLabels,
		Downsampling:          cc.Downsampling,
		Retention: map[compact.ResolutionLevel]time.Duration{
			compact.ResolutionLevelRaw: time.Duration(cc.Retention.Raw),
			compact.ResolutionLevel5m:  time.Duration(cc.Retention.FiveMin),
			compact.ResolutionLevel1h:  time.Duration(cc.Retention.OneHour),
		},
		Report: func(err error) { c.d.readiness.SetDegraded(Compactor, err) },
	}
	if l != nil {
		o.Lease = l
	}
	comp, err := compactor.New(o)
	if err != nil {
		return parts{}, err
	}
	serve := comp.Run
	if l != nil {
		// The lease outlives the compactor's last write: it is released
		// (the standby may take over at once) only after Run returned.
		serve = func(ctx context.Context) error {
			lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			done := make(chan struct{})
			go func() {
				defer close(done)
				if err := l.Run(lctx); err != nil {
					level.Error(logger).Log("msg", "compactor lease", "err", err)
				}
			}()
			err := comp.Run(ctx)
			cancel()
			<-done
			return err
		}
	}
	return parts{serve: serve}, nil
}

// leaseDetail names the compactor lease's state on /-/ready.
const leaseDetail = "compactor lease"

// PrintLease writes the compactor lease as the bucket holds it, for
// `monstackd components`; a bucket that cannot be read is reported, not an
// error.
func PrintLease(ctx context.Context, w io.Writer, rt config.Runtime, cfg *config.Config) {
	switch {
	case !cfg.Compactor.Enabled:
		fmt.Fprintln(w, "\ncompactor lease: not used (compactor.enabled: false)")
		return
	case !cfg.Compactor.Lease.Enabled:
		fmt.Fprintln(w, "\ncompactor lease: not used (compactor.lease.enabled: false: this daemon compacts unconditionally)")
		return
	}
	desc, err := func() (string, error) {
		st, err := leaseStore(rt, cfg)
		if err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return lease.Describe(ctx, st)
	}()
	if err != nil {
		desc = "unknown: " + err.Error()
	}
	fmt.Fprintf(w, "\ncompactor lease: %s\nthis daemon's role: %s\n", desc, rt.Role.Name)
}

// CheckLease reports, for `check config`, a bucket the compactor lease
// cannot use, as the start would.
func CheckLease(rt config.Runtime, cfg *config.Config) error {
	if !cfg.Compactor.Enabled || !cfg.Compactor.Lease.Enabled {
		return nil
	}
	if _, _, err := cfg.BucketYAML(rt); err != nil {
		return nil // the bucket's own check reports it
	}
	_, err := leaseStore(rt, cfg)
	return err
}

// leaseStore opens the lease object in the configured bucket; the start,
// `check config` and `components` open it alike.
func leaseStore(rt config.Runtime, cfg *config.Config) (lease.Store, error) {
	content, where, err := cfg.BucketYAML(rt)
	if err != nil {
		return nil, fmt.Errorf("%s%w", where, err)
	}
	st, err := lease.NewStore(content, where)
	if err != nil {
		return nil, fmt.Errorf("compactor.lease: %w", err)
	}
	return st, nil
}
