package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Duration is a Prometheus-style duration ("30s", "15d") whose decoding
// errors carry their line, so that they can name the field.
type Duration model.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 30s or 15d", n.Line)
	}
	v, err := model.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q: %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func (d Duration) String() string { return model.Duration(d).String() }

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Bytes is a size such as 16KiB or 1MiB (or a plain number of bytes) whose
// decoding errors carry their line.
type Bytes int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size such as 16KiB or 1MiB", n.Line)
	}
	if v, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		*b = Bytes(v)
		return nil
	}
	v, err := units.ParseBase2Bytes(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: invalid size %q: %w", n.Line, n.Value, err)
	}
	*b = Bytes(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b Bytes) MarshalYAML() (any, error) { return b.String(), nil }

func (b Bytes) String() string { return units.Base2Bytes(b).String() }

var lineRE = regexp.MustCompile(`line (\d+): `)

// withFields rewrites "line N: ..." in decoding errors to also name the
// field at that line, e.g. "line 3: field tsdb.retention: ...".
func withFields(err error, root *yaml.Node) error {
	msg := lineRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
		line, _ := strconv.Atoi(lineRE.FindStringSubmatch(m)[1])
		if path := fieldAt(root, line, nil); path != "" {
			return fmt.Sprintf("line %d: field %s: ", line, path)
		}
		return m
	})
	return fmt.Errorf("%s", msg)
}

// fieldAt returns the dotted path of the mapping key or value at line.
func fieldAt(n *yaml.Node, line int, path []string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := fieldAt(c, line, path); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := append(append([]string{}, path...), k.Value)
			if k.Line == line {
				return strings.Join(p, ".")
			}
			if q := fieldAt(v, line, p); q != "" {
				return q
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := append(append([]string{}, path...), fmt.Sprintf("[%d]", i))
			if c.Line == line && c.Kind == yaml.ScalarNode {
				return strings.Join(p, ".")
			}
			if q := fieldAt(c, line, p); q != "" {
				return q
			}
		}
	}
	return ""
}
