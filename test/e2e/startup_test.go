package e2e

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// A gRPC port in use fails start-up at once, naming the flag, before the
// TSDB is opened; the HTTP port likewise.
func TestPortConflictFailsStartup(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct{ flag, http, grpc string }{
		{"--grpc.address", freeAddr(t), busy.Addr().String()},
		{"--http.address", busy.Addr().String(), freeAddr(t)},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			dataDir := t.TempDir()
			start := time.Now()
			p := startProcess(t, "monstackd", binPath(t, "MONSTACKD_BIN"), nil,
				"--http.address="+tc.http, "--grpc.address="+tc.grpc, "--data.dir="+dataDir)
			if code := p.wait(t, 20*time.Second); code == 0 {
				t.Fatalf("exit 0 with %s in use", tc.flag)
			}
			out := p.out.String()
			if !strings.Contains(out, tc.flag) || !strings.Contains(out, "address already in use") {
				t.Errorf("output does not name %s and the conflict:\n%s", tc.flag, out)
			}
			if strings.Contains(out, "opening TSDB") {
				t.Errorf("the TSDB was opened before the port conflict was found:\n%s", out)
			}
			t.Logf("failed after %s", time.Since(start))
		})
	}
}

// READY=1 is sent only once gRPC answers: a health check right after it
// succeeds.
func TestReadyOnlyWhenGRPCServes(t *testing.T) {
	sock, msgs := notifySocket(t)
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	p := startProcess(t, "monstackd", binPath(t, "MONSTACKD_BIN"), []string{"NOTIFY_SOCKET=" + sock},
		"--http.address="+httpAddr, "--grpc.address="+grpcAddr, "--data.dir="+t.TempDir())
	expectNotify(t, msgs, "READY=1")
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health right after READY=1: %v %v", resp.GetStatus(), err)
	}
	p.signal(t, 15)
	expectNotify(t, msgs, "STOPPING=1")
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}
