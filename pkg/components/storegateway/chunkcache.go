package storegateway

import (
	"fmt"
	"regexp"
	"time"

	"github.com/thanos-io/objstore"
	"github.com/thanos-io/thanos/pkg/cache"
	"github.com/thanos-io/thanos/pkg/model"
	storecache "github.com/thanos-io/thanos/pkg/store/cache"
)

// Stock --store.caching-bucket.config defaults for the chunk files.
const (
	// chunkSubrangeSize is the unit cached: a chunk is at most this long,
	// so most chunks cost one entry.
	chunkSubrangeSize = 16000
	// chunkMaxGetRangeRequests caps the bucket reads that fill the gaps
	// of one read: missing subranges are merged beyond it.
	chunkMaxGetRangeRequests = 3
	// A block's files never change under its ULID: the TTLs only bound
	// how long a deleted block's ranges can linger before the LRU evicts
	// them.
	chunkAttrsTTL    = 24 * time.Hour
	chunkSubrangeTTL = 24 * time.Hour
)

var chunkFile = regexp.MustCompile(`^.*/chunks/\d+$`)

// chunkCachingBucket returns the bucket the BucketStore reads: o.Bucket
// with the chunk files' ranges (and sizes) cached in memory, LRU within
// o.ChunkCacheSize. The index cache holds postings and series but every
// query reads its chunks from the bucket again; dashboards repeat the same
// queries over the same recent blocks, which then cost no round trip to
// object storage and no work for its server. Only chunk files are cached:
// metas and listings must stay fresh for the sync to see new blocks.
func chunkCachingBucket(o Options) (objstore.InstrumentedBucket, error) {
	if o.ChunkCacheSize <= 0 {
		return o.Bucket, nil
	}
	c, err := cache.NewInMemoryCacheWithConfig("chunks", o.Logger, o.Registerer, cache.InMemoryCacheConfig{
		MaxSize:     model.Bytes(o.ChunkCacheSize),
		MaxItemSize: model.Bytes(min(o.ChunkCacheSize, chunkSubrangeSize)),
	})
	if err != nil {
		return nil, fmt.Errorf("store gateway chunk cache: %w", err)
	}
	cfg := cache.NewCachingBucketConfig()
	cfg.CacheAttributes("chunks", c, chunkFile.MatchString, chunkAttrsTTL)
	cfg.CacheGetRange("chunks", c, chunkFile.MatchString, chunkSubrangeSize, chunkAttrsTTL, chunkSubrangeTTL, chunkMaxGetRangeRequests)
	cb, err := storecache.NewCachingBucket(o.Bucket, cfg, o.Logger, o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("store gateway chunk caching bucket: %w", err)
	}
	return cb, nil
}
