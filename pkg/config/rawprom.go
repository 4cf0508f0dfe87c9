package config

import (
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// rawPrometheus is what LoadPrometheus needs to know about prometheus.yml
// that the loaded config cannot tell: whether a field was set at all (after
// loading, unset and an explicit default or 0 look the same).
type rawPrometheus struct {
	Runtime struct {
		GoGC *int `yaml:"gogc"`
	} `yaml:"runtime"`
	Global        map[string]any   `yaml:"global"`
	ScrapeConfigs []map[string]any `yaml:"scrape_configs"`
}

func readRawPrometheus(file string) (*rawPrometheus, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var raw rawPrometheus
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &raw, nil
}
