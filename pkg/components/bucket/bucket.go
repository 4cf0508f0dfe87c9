// Package bucket opens the object storage the shipper, the store gateway and
// the compactor share: one client, instrumented once (thanos_objstore_bucket_*).
package bucket

import (
	"fmt"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/client"
	"github.com/thanos-io/thanos/pkg/extprom"
)

// Open builds the bucket from its objstore YAML. where names the config in
// errors ("bucket.yml: field "). Building does no I/O for the providers
// monstackd tests, so an unreachable bucket does not stop the start: the
// components that use it retry and report.
func Open(logger log.Logger, reg prometheus.Registerer, content []byte, where string) (objstore.InstrumentedBucket, error) {
	bkt, err := client.NewBucket(logger, content, "monstackd", nil)
	if err != nil {
		// objstore's errors name fields, never values: credentials stay out.
		return nil, fmt.Errorf("%sconfig: %w", where, err)
	}
	return objstore.WrapWithMetrics(bkt, extprom.WrapRegistererWithPrefix("thanos_", reg), bkt.Name()), nil
}
