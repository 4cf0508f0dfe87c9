// Copyright (c) The Thanos Authors.
// Licensed under the Apache License 2.0.

//go:build !slicelabels

package extgrpc

import "google.golang.org/grpc/mem"

// Changed by monstackd (third_party/_thanos/README.md): upstream takes the
// buffer from gRPC's pool and returns it once Unmarshal is done, but
// storepb.Chunk's Unmarshal keeps Data as a slice of that buffer and
// labelpb.ZLabel's keeps its strings in it: once the pool hands the buffer
// out again, the series read from a remote store get other messages' chunks
// and labels (queries fail with "EOF" in a chunk, or return wrong series).
// As the slicelabels build does, the buffer is left to the garbage collector.
var nopPool = mem.NopBufferPool{}

func materializeForUnmarshal(data mem.BufferSlice) ([]byte, func()) {
	buf := data.MaterializeToBuffer(nopPool)
	return buf.ReadOnlyData(), nil
}
