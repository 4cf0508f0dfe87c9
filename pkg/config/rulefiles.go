package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"gopkg.in/yaml.v3"
)

// CheckRuleFile parses a rule file as the rule manager does and returns one
// error per problem, each starting with "<file>: <line>:<column>:" or naming
// the line. rulefmt leaves the group-level errors (empty or repeated group
// name, bad group labels) without a position ("0:0:" or none); those get the
// line of the group or label here. A syntax error that both of rulefmt's
// decoders report is listed once.
func CheckRuleFile(file string, scheme model.ValidationScheme) []error {
	_, errs := rulefmt.ParseFile(file, false, scheme)
	if len(errs) == 0 {
		return nil
	}
	var groups []ruleGroupPos
	if b, err := os.ReadFile(file); err == nil {
		groups = ruleGroupPositions(b)
	}
	repeats := map[string]int{}
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		e = locate(file, e, groups, repeats)
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}

// ruleGroupPos is where a group, its name and its labels are in the file.
type ruleGroupPos struct {
	name              string
	line, col         int
	labelKeys, values map[string]int // label name or value -> line
}

func ruleGroupPositions(b []byte) []ruleGroupPos {
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil || len(root.Content) == 0 {
		return nil
	}
	seq := mapValue(root.Content[0], "groups")
	if seq == nil {
		return nil
	}
	var out []ruleGroupPos
	for _, g := range seq.Content {
		p := ruleGroupPos{line: g.Line, col: g.Column, labelKeys: map[string]int{}, values: map[string]int{}}
		if n := mapValue(g, "name"); n != nil {
			p.name = n.Value
		}
		if l := mapValue(g, "labels"); l != nil && l.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(l.Content); i += 2 {
				p.labelKeys[l.Content[i].Value] = l.Content[i].Line
				p.values[l.Content[i+1].Value] = l.Content[i+1].Line
			}
		}
		out = append(out, p)
	}
	return out
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// locate gives a positionless group-level error of rulefmt the line it is about.
func locate(file string, e error, groups []ruleGroupPos, repeats map[string]int) error {
	inner := errors.Unwrap(e) // ParseFile wraps each error as "<file>: <err>"
	if inner == nil {
		return e
	}
	var rerr *rulefmt.Error
	if errors.As(inner, &rerr) {
		return e
	}
	msg := strings.TrimPrefix(inner.Error(), "0:0: ")
	at := func(line, col int) error {
		return fmt.Errorf("%s: %d:%d: %s", file, line, col, msg)
	}
	switch {
	case strings.HasPrefix(msg, "Groupname must not be empty"):
		for _, g := range groups {
			if g.name == "" {
				return at(g.line, g.col)
			}
		}
	case strings.HasPrefix(msg, "groupname: "):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, `groupname: "`), `" is repeated in the same file`)
		repeats[name]++
		n := 0
		for _, g := range groups {
			if g.name == name {
				if n == repeats[name] {
					return at(g.line, g.col)
				}
				n++
			}
		}
	case strings.HasPrefix(msg, "invalid label name: "):
		for _, g := range groups {
			if line, ok := g.labelKeys[strings.TrimPrefix(msg, "invalid label name: ")]; ok {
				return fmt.Errorf("%s: line %d: group %q: %s", file, line, g.name, msg)
			}
		}
	case strings.HasPrefix(msg, "invalid label value: "):
		for _, g := range groups {
			if line, ok := g.values[strings.TrimPrefix(msg, "invalid label value: ")]; ok {
				return fmt.Errorf("%s: line %d: group %q: %s", file, line, g.name, msg)
			}
		}
	}
	return e
}
