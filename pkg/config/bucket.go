package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-kit/log"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/client"
	"gopkg.in/yaml.v3"
)

// bucketTypes are the types objstore's client.NewBucket builds.
var bucketTypes = []objstore.ObjProvider{objstore.FILESYSTEM, objstore.S3, objstore.GCS, objstore.AZURE,
	objstore.SWIFT, objstore.COS, objstore.ALIYUNOSS, objstore.BOS, objstore.OCI, objstore.OBS}

// BucketYAML returns the objstore configuration: bucket.yml's content, the
// inline fields, or a FILESYSTEM bucket under the data dir. where names it
// in errors: "<file>: field " or "<monstack.yml>: field bucket.".
func (c *Config) BucketYAML(rt Runtime) (content []byte, where string, err error) {
	switch {
	case c.Bucket.ConfigFile != "":
		file := c.Path(c.Bucket.ConfigFile)
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, file + ": ", fmt.Errorf("read bucket config: %w", err)
		}
		return b, file + ": field ", nil
	case c.Bucket.Type != "":
		b, err := yaml.Marshal(client.BucketConfig{Type: objstore.ObjProvider(c.Bucket.Type), Config: c.Bucket.Config, Prefix: c.Bucket.Prefix})
		return b, c.name() + ": field bucket.", err
	default:
		b, err := yaml.Marshal(client.BucketConfig{
			Type:   objstore.FILESYSTEM,
			Config: map[string]string{"directory": filepath.Join(rt.DataDir, "bucket")},
		})
		return b, "<embedded bucket config>: field ", err
	}
}

func (c *Config) name() string {
	if c.file == "" {
		return "<embedded monstack.yml>"
	}
	return c.file
}

// checkBucket validates the bucket config without I/O: the type, and the
// provider's own fields by building the client. Errors never quote values:
// they may hold credentials.
func (c *Config) checkBucket(rt Runtime) error {
	content, where, err := c.BucketYAML(rt)
	if err != nil {
		return fmt.Errorf("%s%w", where, err)
	}
	var bc client.BucketConfig
	if err := yaml.Unmarshal(content, &bc); err != nil {
		return fmt.Errorf("%sparse: %w", trimField(where), err)
	}
	if bc.Type == "" {
		return fmt.Errorf("%stype: missing", where)
	}
	if !slices.Contains(bucketTypes, bc.Type) {
		return fmt.Errorf("%stype: %q is not supported; one of %v", where, bc.Type, bucketTypes)
	}
	bkt, err := client.NewBucket(log.NewNopLogger(), content, "check", nil)
	if err != nil {
		return fmt.Errorf("%sconfig: %w", where, err)
	}
	return errors.Join(bkt.Close())
}

// trimField turns "<file>: field " into "<file>: " for errors of the whole file.
func trimField(where string) string {
	if n := len(where) - len("field "); n > 0 && where[n:] == "field " {
		return where[:n]
	}
	return where
}
