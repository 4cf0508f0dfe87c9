package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Role is what a daemon is in a deployment: a standalone host or one replica
// of an HA pair.
type Role struct {
	Name string
	// Replica is the value of the replica external label, "" for standalone.
	Replica string
}

const (
	RoleStandalone    = "standalone"
	replicaRolePrefix = "replica-"
)

var replicaNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ParseRole parses --role: "standalone" or "replica-<name>", where <name>
// becomes the replica external label value (replica-a → replica="a").
func ParseRole(s string) (Role, error) {
	switch {
	case s == RoleStandalone:
		return Role{Name: s}, nil
	case strings.HasPrefix(s, replicaRolePrefix):
		name := strings.TrimPrefix(s, replicaRolePrefix)
		if name == "" {
			return Role{}, fmt.Errorf("role %q has no replica name (want e.g. replica-a)", s)
		}
		if !replicaNameRE.MatchString(name) {
			return Role{}, fmt.Errorf("role %q: replica name %q must match %s", s, name, replicaNameRE)
		}
		return Role{Name: s, Replica: name}, nil
	case s == "replica":
		return Role{}, fmt.Errorf("role %q has no replica name (want e.g. replica-a)", s)
	default:
		return Role{}, fmt.Errorf("unknown role %q (want %q or replica-<name>)", s, RoleStandalone)
	}
}

// IsReplica reports whether the role is one replica of an HA pair.
func (r Role) IsReplica() bool { return r.Replica != "" }
