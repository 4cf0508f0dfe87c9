package supervisor

import "github.com/monstackd/monstackd/pkg/components/grpcserver"

// initGRPCServer binds --grpc.address before the WAL replay: a port conflict
// fails start-up at once, and READY=1 is never sent before gRPC accepts.
// Modules register their services before the group starts serving.
func (c *components) initGRPCServer() (parts, error) {
	srv, err := grpcserver.Listen(c.logger(GRPCServer), c.registry(), c.d.opts.GRPCAddress, c.d.opts.GRPCTLS)
	if err != nil {
		return parts{}, err
	}
	c.grpc = srv
	return parts{
		run:       srv.Serve,
		interrupt: func(error) { srv.Shutdown() },
		close:     func() error { srv.Shutdown(); return nil },
	}, nil
}
