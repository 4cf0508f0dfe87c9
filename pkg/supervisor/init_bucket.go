package supervisor

import "github.com/monstackd/monstackd/pkg/components/bucket"

// initBucket opens the object storage shared by the shipper and the store
// gateway: bucket.yml, the inline bucket, or FILESYSTEM under the data dir.
func (c *components) initBucket() (parts, error) {
	content, where, err := c.cfg.BucketYAML(c.rt)
	if err != nil {
		return parts{}, err
	}
	bkt, err := bucket.Open(c.logger(Bucket), c.registry(), content, where)
	if err != nil {
		return parts{}, err
	}
	c.bucket = bkt
	return parts{close: bkt.Close}, nil
}
