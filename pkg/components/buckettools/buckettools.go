// Package buckettools reads a Thanos bucket for `monstackd tools bucket`:
// it lists the blocks (ls), tabulates their metadata (inspect) and runs
// Thanos' read-only block verifiers (verify), as `thanos tools bucket` does,
// without a second binary. It never writes to the bucket.
package buckettools

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/go-kit/log"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/client"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/component"
	"gopkg.in/yaml.v3"
)

// Options says which bucket to read.
type Options struct {
	// Config is the objstore YAML (type, config, prefix), as
	// pkg/config's BucketYAML returns it or a bucket.yml holds it.
	Config []byte
	// Where names the config in errors, in BucketYAML's form: "<file>: field "
	// for a bucket.yml, "<monstack.yml>: field bucket." for the inline fields.
	Where string
	// Logger receives the debug lines of the Thanos code; nil discards them.
	Logger log.Logger
}

// Tools reads one bucket. Close it when done.
type Tools struct {
	bkt    objstore.InstrumentedBucket
	logger log.Logger
	where  string
	// secrets are the config values errors must not carry.
	secrets []string
}

// New builds the bucket client from opts.Config. Its errors name the config
// source and field, and never quote the config's secrets.
func New(opts Options) (*Tools, error) {
	logger := opts.Logger
	if logger == nil {
		logger = log.NewNopLogger()
	}
	t := &Tools{logger: logger, where: opts.Where}
	var bc client.BucketConfig
	if err := yaml.Unmarshal(opts.Config, &bc); err != nil {
		// yaml's errors may quote the offending value.
		return nil, fmt.Errorf("%sparse: invalid YAML", trimField(opts.Where))
	}
	t.secrets = secretValues(bc.Config)
	if bc.Type == "" {
		return nil, fmt.Errorf("%stype: missing", opts.Where)
	}
	bkt, err := client.NewBucket(logger, opts.Config, component.Bucket.String(), nil)
	if err != nil {
		return nil, t.redact(fmt.Errorf("%sconfig: %w", opts.Where, err))
	}
	// No registry: a one-shot command has no /metrics.
	t.bkt = objstore.WrapWithMetrics(bkt, nil, bkt.Name())
	return t, nil
}

// Close releases the bucket client.
func (t *Tools) Close() error { return t.bkt.Close() }

// Blocks returns the metadata of every complete block (one with a
// meta.json), ordered by min time, then ULID; blocks marked for deletion
// are included, as `thanos tools bucket ls` does.
func (t *Tools) Blocks(ctx context.Context) ([]*metadata.Meta, error) {
	metas, _, err := t.fetch(ctx)
	if err != nil {
		return nil, err
	}
	return sortedMetas(metas), nil
}

func (t *Tools) fetch(ctx context.Context, filters ...block.MetadataFilter) (map[ulid.ULID]*metadata.Meta, map[ulid.ULID]error, error) {
	fetcher, err := block.NewMetaFetcher(t.logger, block.FetcherConcurrency, t.bkt, block.NewConcurrentLister(t.logger, t.bkt),
		"", prometheus.NewRegistry(), filters)
	if err != nil {
		return nil, nil, t.opErr("read block metadata", err)
	}
	metas, partial, err := fetcher.Fetch(ctx)
	if err != nil {
		return nil, nil, t.opErr("read block metadata", err)
	}
	return metas, partial, nil
}

func sortedMetas(metas map[ulid.ULID]*metadata.Meta) []*metadata.Meta {
	out := make([]*metadata.Meta, 0, len(metas))
	for _, m := range metas {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].MinTime != out[j].MinTime {
			return out[i].MinTime < out[j].MinTime
		}
		return out[i].ULID.Compare(out[j].ULID) < 0
	})
	return out
}

// opErr names the bucket config in an error of a bucket operation:
// "bucket of <file>[ field bucket]: <op>: <err>", secrets removed.
func (t *Tools) opErr(op string, err error) error {
	return t.redact(fmt.Errorf("bucket of %s: %s: %w", sourceName(t.where), op, err))
}

// sourceName turns BucketYAML's "<file>: field [bucket.]" into
// "<file>" or "<file> field bucket".
func sourceName(where string) string {
	file, field, _ := strings.Cut(where, ": field ")
	if field = strings.TrimSuffix(field, "."); field != "" {
		return file + " field " + field
	}
	return file
}

// trimField turns "<file>: field " into "<file>: " for errors of the whole file.
func trimField(where string) string {
	if s, ok := strings.CutSuffix(where, "field "); ok {
		return s
	}
	return where
}

// secretKeys are the objstore config fields (of any provider) that hold
// credentials, matched as substrings of the lower-cased key.
var secretKeys = []string{"secret", "password", "token", "key", "credential", "service_account", "sas"}

// secretValues collects the string values under credential-like keys,
// nested ones included (http_config, sse_config, …).
func secretValues(cfg any) []string {
	var out []string
	var walk func(k string, v any)
	walk = func(k string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for kk, vv := range v {
				walk(kk, vv)
			}
		case []any:
			for _, vv := range v {
				walk(k, vv)
			}
		case string:
			lk := strings.ToLower(k)
			for _, s := range secretKeys {
				if strings.Contains(lk, s) && len(v) >= 4 {
					out = append(out, v)
					break
				}
			}
		}
	}
	walk("", cfg)
	// Longest first, so that a secret containing another is removed whole.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// redactedError keeps the chain (errors.Is) with the secrets removed from the text.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func (t *Tools) redact(err error) error {
	if err == nil || len(t.secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, s := range t.secrets {
		msg = strings.ReplaceAll(msg, s, "<secret>")
	}
	return &redactedError{msg: msg, err: err}
}

// formatLabels renders external labels as {a="1", b="2"}, sorted.
func formatLabels(m map[string]string) string {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}
