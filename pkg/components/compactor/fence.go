package compactor

import (
	"context"
	"fmt"
	"io"

	"github.com/thanos-io/objstore"
)

// fencedBucket refuses writes unless the lease is held: every destructive
// step of Thanos' compactor (upload of a compacted or downsampled block,
// deletion and no-compact marks, retention, deletion of blocks and of
// aborted uploads) is a write through this bucket, so a daemon that lost its
// lease stops before the next one, wherever it is in a pass.
type fencedBucket struct {
	objstore.InstrumentedBucket
	check func() error
}

func fence(b objstore.InstrumentedBucket, check func() error) *fencedBucket {
	return &fencedBucket{InstrumentedBucket: b, check: check}
}

func (b *fencedBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	return b.plain().Upload(ctx, name, r, opts...)
}

func (b *fencedBucket) Delete(ctx context.Context, name string) error {
	return b.plain().Delete(ctx, name)
}

func (b *fencedBucket) plain() *fencedPlain {
	return &fencedPlain{Bucket: b.InstrumentedBucket, check: b.check}
}

// WithExpectedErrs keeps the fence on the bucket Thanos writes marks through.
func (b *fencedBucket) WithExpectedErrs(fn objstore.IsOpFailureExpectedFunc) objstore.Bucket {
	return &fencedPlain{Bucket: b.InstrumentedBucket.WithExpectedErrs(fn), check: b.check}
}

type fencedPlain struct {
	objstore.Bucket
	check func() error
}

func (b *fencedPlain) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	if err := b.check(); err != nil {
		return fmt.Errorf("upload %s refused: %w", name, err)
	}
	return b.Bucket.Upload(ctx, name, r, opts...)
}

func (b *fencedPlain) Delete(ctx context.Context, name string) error {
	if err := b.check(); err != nil {
		return fmt.Errorf("delete %s refused: %w", name, err)
	}
	return b.Bucket.Delete(ctx, name)
}
