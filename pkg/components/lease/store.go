// Package lease elects which daemon of an HA pair runs the compactor: both
// compete for one lease object in the bucket they share, written only with
// conditional (compare-and-swap) writes, and a standby takes over by itself
// once the holder has stopped renewing for a TTL.
package lease

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/client"
	"gopkg.in/yaml.v2"
)

var (
	// ErrNotFound means there is no lease object.
	ErrNotFound = errors.New("no lease object")
	// ErrConflict means a conditional write lost: the object exists, or it
	// changed since the version the write was based on.
	ErrConflict = errors.New("conditional write lost: the lease object exists or changed")
	// ErrUnsupported means the bucket's provider has no Store.
	ErrUnsupported = errors.New("the compactor lease is not implemented for this bucket type")
)

// Store is a compare-and-swap register holding the lease object.
type Store interface {
	// Read returns the lease object's body and its version (ETag for S3);
	// ErrNotFound when absent.
	Read(ctx context.Context) (body []byte, version string, err error)
	// Create writes body only if no lease object exists; ErrConflict otherwise.
	Create(ctx context.Context, body []byte) (version string, err error)
	// Replace writes body only if the object's version is still version;
	// ErrConflict otherwise. ErrConflict means the body is not the current
	// version: the FILESYSTEM store also reports it for a write that was
	// replaced before it could confirm its own.
	Replace(ctx context.Context, version string, body []byte) (string, error)
	// String names the store for logs, never with credentials.
	String() string
}

// objectName is the lease object below the bucket's prefix. It is not a
// block ULID directory, so Thanos' compactor and store gateway ignore it.
const objectName = "monstackd/compactor-lease.json"

// NewStore builds the Store for a Thanos objstore bucket config (type,
// config, prefix). where prefixes errors to name the file and field, such
// as "bucket.yml: field ". It does no I/O.
func NewStore(bucketYAML []byte, where string) (Store, error) {
	var bc client.BucketConfig
	if err := yaml.UnmarshalStrict(bucketYAML, &bc); err != nil {
		return nil, fmt.Errorf("%sparse bucket config: %w", strings.TrimSuffix(where, "field "), err)
	}
	conf, err := yaml.Marshal(bc.Config)
	if err != nil {
		return nil, fmt.Errorf("%sconfig: %w", where, err)
	}
	name := objectName
	if p := strings.Trim(bc.Prefix, "/"); p != "" {
		name = path.Join(p, objectName)
	}
	switch typ := objstore.ObjProvider(strings.ToUpper(string(bc.Type))); typ {
	case objstore.S3:
		s, err := newS3Store(conf, name)
		if err != nil {
			return nil, fmt.Errorf("%sconfig: %w", where, err)
		}
		return s, nil
	case objstore.FILESYSTEM:
		s, err := newFSStore(conf, name)
		if err != nil {
			return nil, fmt.Errorf("%sconfig: %w", where, err)
		}
		return s, nil
	case "":
		return nil, fmt.Errorf("%stype: missing", where)
	default:
		return nil, fmt.Errorf("%stype: %s: %w (S3 and FILESYSTEM have one); "+
			"set compactor.lease.enabled: false to run the compactor without a lease, "+
			"on exactly one daemon per bucket (compactor.enabled: false on the others)", where, typ, ErrUnsupported)
	}
}
