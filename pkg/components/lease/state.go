package lease

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// State is a Lease as this daemon last knew it.
type State struct {
	Held     bool
	Holder   string // holder name in the lease object; empty when none or unreadable
	Instance string // the holder's instance id
	Epoch    int64
	// Expires is, while held, the end of the lease on this daemon's clock
	// (its last write + TTL); for a standby, when it may take over by its
	// own clock (zero when released or absent).
	Expires time.Time
	// Renewed is, while held, when the last successful renewal was sent;
	// for a standby, when it first saw the current version.
	Renewed time.Time
	Err     error // last error talking to the store, nil if fine

	// SafeEnd is when Check stops passing unless a renewal succeeds.
	SafeEnd time.Time
	// Known is whether the store answered at least once; Present whether
	// it had a lease object then.
	Known, Present bool
	Released       bool
	// Own is whether this process wrote the lease object.
	Own bool

	self string // this daemon's holder name
}

// State returns the current state.
func (l *Lease) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := State{
		Held:     l.held && time.Now().Before(l.safeEnd),
		Err:      l.err,
		Known:    l.known,
		Present:  l.present,
		self:     l.holder,
		Holder:   l.cur.Holder,
		Instance: l.cur.Instance,
		Epoch:    l.cur.Epoch,
		Released: l.present && l.cur.Released,
		Own:      l.present && l.cur.Instance == l.instance,
	}
	if !l.present {
		s.Holder, s.Instance, s.Epoch = "", "", 0
	}
	switch {
	case s.Held:
		s.Expires, s.Renewed, s.SafeEnd = l.written.Add(l.ttl), l.written, l.safeEnd
	case l.present:
		s.Renewed = l.seenAt
		if !s.Released {
			s.Expires = l.seenAt.Add(max(l.ttl, l.cur.ttl()))
		}
	}
	return s
}

// String is one line for logs and the /-/ready detail, such as
// "holder replica-a (this daemon), epoch 3, expires in 24s" or
// "standby: held by replica-b, epoch 4, expires in 20s".
func (s State) String() string {
	var b strings.Builder
	switch {
	case s.Held:
		fmt.Fprintf(&b, "holder %s (this daemon), epoch %d, expires in %s", s.Holder, s.Epoch, until(s.Expires))
	case !s.Known && s.Err != nil:
		return "unknown: bucket unreachable: " + s.Err.Error()
	case !s.Known:
		return "unknown: the bucket was not read yet"
	case !s.Present:
		b.WriteString("standby: no lease in the bucket")
	case s.Released:
		fmt.Fprintf(&b, "standby: released by %s, epoch %d", s.who(), s.Epoch)
	default:
		fmt.Fprintf(&b, "standby: held by %s, epoch %d, expires in %s", s.who(), s.Epoch, until(s.Expires))
	}
	if s.Err != nil {
		b.WriteString("; bucket unreachable: " + s.Err.Error())
	}
	return b.String()
}

func (s State) who() string {
	switch {
	case s.Own && s.Released:
		return s.Holder + " (this daemon)"
	case s.Own:
		return s.Holder + " (this daemon, not renewed)"
	case s.Holder == "":
		return "an unknown holder (unreadable lease object)"
	case s.Holder == s.self:
		return s.Holder + " (another instance " + s.Instance + ")"
	}
	return s.Holder
}

// until renders the time left until t, coarser the further away.
func until(t time.Time) string {
	d := time.Until(t)
	switch {
	case d <= 0:
		return "0s"
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// Describe reads the lease object and says who holds it, for
// `monstackd components`: by the writer's clock, so "expires" is a hint,
// not what a standby decides by.
func Describe(ctx context.Context, st Store) (string, error) {
	body, _, err := st.Read(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		return "no lease object yet: no compactor has held this bucket", nil
	case err != nil:
		return "", err
	}
	rec, err := parseRecord(body)
	if err != nil {
		return "", err
	}
	if rec.Released {
		return fmt.Sprintf("released by %s (epoch %d) at %s", rec.Holder, rec.Epoch, rec.Renewed), nil
	}
	left := "in " + until(rec.expires())
	if !time.Now().Before(rec.expires()) {
		left = "expired"
	}
	return fmt.Sprintf("held by %s (instance %s), epoch %d, renewed %s, expires %s (%s by the holder's clock)",
		rec.Holder, rec.Instance, rec.Epoch, rec.Renewed, rec.Expires, left), nil
}
