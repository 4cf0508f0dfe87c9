package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const plantedSecret = "PLANTED-SECRET-8f3a"

func TestBucketInlineAndFile(t *testing.T) {
	dir := t.TempDir()
	rt := Runtime{DataDir: dir}
	s3 := "type: S3\nconfig:\n  bucket: b\n  endpoint: 127.0.0.1:9000\n  access_key: ak\n  secret_key: " + plantedSecret + "\n  insecure: true\n"
	if err := os.WriteFile(filepath.Join(dir, "bucket.yml"), []byte(s3), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, monstack string
		want           []string // empty: valid
	}{
		{"embedded default", "", nil},
		{"bucket.yml", "bucket:\n  config_file: bucket.yml\n", nil},
		{"inline", "bucket:\n" + indent(s3), nil},
		{"inline bad type", "bucket:\n  type: NOPE\n", []string{"monstack.yml: field bucket.type", `"NOPE" is not supported`}},
		{"inline bad provider field", "bucket:\n  type: S3\n  config:\n    bucket: b\n    secret_key: " + plantedSecret + "\n    sse_config: {type: NOPE}\n", []string{"monstack.yml: field bucket.config"}},
		{"both", "bucket:\n  config_file: bucket.yml\n  type: S3\n", []string{"field bucket.config_file", "not both"}},
		{"config without type", "bucket:\n  config: {bucket: b}\n", []string{"field bucket.type", "missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "monstack.yml")
			if err := os.WriteFile(file, []byte(tc.monstack), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(file)
			var msgs []string
			if err != nil {
				msgs = append(msgs, err.Error())
			} else if err := cfg.checkBucket(rt); err != nil {
				msgs = append(msgs, err.Error())
			}
			all := strings.Join(msgs, "\n")
			if strings.Contains(all, plantedSecret) {
				t.Fatalf("error shows the secret: %s", all)
			}
			if len(tc.want) == 0 {
				if all != "" {
					t.Fatalf("unexpected error: %s", all)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("error %q lacks %q", all, w)
				}
			}
		})
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}
