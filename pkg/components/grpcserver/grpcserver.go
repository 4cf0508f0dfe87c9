// Package grpcserver is monstackd's gRPC server: bound at start-up, before
// the WAL replay, so that a port conflict fails at once; components register
// their services on it before it serves. It has the interceptors of Thanos'
// server (panic recovery, metrics, unlimited message sizes, keepalive policy)
// and the standard health and reflection services.
package grpcserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	grpc_prometheus "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	grpc_recovery "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	thanostls "github.com/thanos-io/thanos/pkg/tls"

	// Thanos' non-pooling proto codec, as the thanos binary registers it.
	_ "github.com/thanos-io/thanos/pkg/extgrpc"
)

// gracePeriod bounds how long Shutdown waits for running streams.
const gracePeriod = 2 * time.Second

// Server is a bound gRPC server.
type Server struct {
	logger log.Logger
	lis    net.Listener
	srv    *grpc.Server
	health *health.Server
	met    *grpc_prometheus.ServerMetrics
	stop   sync.Once
}

// TLS names the server's TLS files, as Thanos' --grpc-server-tls-* flags.
// All empty serves plaintext; Cert and Key enable TLS; ClientCA (which
// needs them) requires and verifies client certificates.
type TLS struct {
	Cert, Key, ClientCA string
}

// minTLSVersion is Thanos' default --grpc-server-tls-min-version.
const minTLSVersion = "1.3"

// Config checks the files and returns the server's TLS config, nil for
// plaintext. The certificate and key are re-read when they change, as in
// Thanos.
func (t TLS) Config(logger log.Logger) (*tls.Config, error) {
	if t == (TLS{}) {
		return nil, nil
	}
	switch {
	case t.Cert == "" && t.Key == "":
		return nil, errors.New("--grpc-server-tls-client-ca needs --grpc-server-tls-cert and --grpc-server-tls-key")
	case t.Key == "":
		return nil, errors.New("--grpc-server-tls-cert is set without --grpc-server-tls-key")
	case t.Cert == "":
		return nil, errors.New("--grpc-server-tls-key is set without --grpc-server-tls-cert")
	}
	if t.ClientCA != "" {
		// Thanos' helper returns no error (and no TLS) for a file without
		// a certificate: check it first.
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("--grpc-server-tls-client-ca: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--grpc-server-tls-client-ca %s: no PEM certificate found", t.ClientCA)
		}
	}
	cfg, err := thanostls.NewServerConfig(logger, t.Cert, t.Key, t.ClientCA, minTLSVersion, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("--grpc-server-tls-cert %s, --grpc-server-tls-key %s: %w", t.Cert, t.Key, err)
	}
	if cfg == nil {
		return nil, errors.New("gRPC server TLS: no configuration built")
	}
	return cfg, nil
}

// Listen binds address and builds the server; reg receives its metrics.
func Listen(logger log.Logger, reg prometheus.Registerer, address string, tlsFiles TLS) (*Server, error) {
	tlsCfg, err := tlsFiles.Config(logger)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listen on --grpc.address %s: %w", address, err)
	}
	met := grpc_prometheus.NewServerMetrics(grpc_prometheus.WithServerHandlingTimeHistogram(
		grpc_prometheus.WithHistogramOpts(&prometheus.HistogramOpts{
			Buckets:                        []float64{0.001, 0.01, 0.1, 0.3, 0.6, 1, 3, 6, 9, 20, 30, 60, 90, 120},
			NativeHistogramMaxBucketNumber: 256,
			NativeHistogramBucketFactor:    1.1,
		}),
	))
	panics := promauto.With(reg).NewCounter(prometheus.CounterOpts{
		Name: "grpc_req_panics_recovered_total",
		Help: "Total number of gRPC requests recovered from internal panic.",
	})
	recovery := grpc_recovery.WithRecoveryHandler(func(p any) error {
		panics.Inc()
		level.Error(logger).Log("msg", "recovered from panic", "panic", p, "stack", debug.Stack())
		return status.Errorf(codes.Internal, "%s", p)
	})
	opts := []grpc.ServerOption{
		// StoreAPI responses routinely exceed gRPC's 4 MB default (as in Thanos).
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxRecvMsgSize(math.MaxInt32),
		grpc.ChainUnaryInterceptor(grpc_recovery.UnaryServerInterceptor(recovery), met.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(grpc_recovery.StreamServerInterceptor(recovery), met.StreamServerInterceptor()),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second}),
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(handshakeLogger{TransportCredentials: credentials.NewTLS(tlsCfg), logger: logger}))
	}
	srv := grpc.NewServer(opts...)
	reg.MustRegister(met)
	s := &Server{logger: logger, lis: lis, srv: srv, health: health.NewServer(), met: met}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, s.health)
	reflection.Register(srv)
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Register adds a service; only before Serve.
func (s *Server) Register(f func(*grpc.Server)) { f(s.srv) }

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	s.met.InitializeMetrics(s.srv)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	level.Info(s.logger).Log("msg", "serving gRPC", "address", s.lis.Addr())
	if err := s.srv.Serve(s.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve gRPC: %w", err)
	}
	return nil
}

// Shutdown stops accepting calls and waits briefly for running ones. It also
// releases the listener when Serve never ran (a start-up that failed later).
// Calls after the first do nothing.
func (s *Server) Shutdown() { s.stop.Do(s.shutdown) }

func (s *Server) shutdown() {
	s.health.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), gracePeriod)
	defer cancel()
	stopped := make(chan struct{})
	go func() { s.srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		level.Info(s.logger).Log("msg", "gRPC grace period exceeded; closing running streams")
		s.srv.Stop()
	}
	_ = s.lis.Close()
}

// handshakeLogger logs failed TLS handshakes, which gRPC drops silently: a
// peer or client with a wrong certificate is otherwise only visible on its
// own side.
type handshakeLogger struct {
	credentials.TransportCredentials
	logger log.Logger
}

func (h handshakeLogger) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := h.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		level.Warn(h.logger).Log("msg", "TLS handshake failed", "remote", conn.RemoteAddr(), "err", err)
	}
	return c, info, err
}

func (h handshakeLogger) Clone() credentials.TransportCredentials {
	return handshakeLogger{TransportCredentials: h.TransportCredentials.Clone(), logger: h.logger}
}
