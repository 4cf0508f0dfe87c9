package grpcserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-kit/log"
)

// Partly set TLS flags and unusable files are errors naming the flags;
// nothing set is plaintext.
func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err := (TLS{}).Config(log.NewNopLogger()); cfg != nil || err != nil {
		t.Fatalf("no TLS files: %v, %v; want plaintext", cfg, err)
	}
	for _, tc := range []struct {
		tls  TLS
		want string
	}{
		{TLS{Cert: "c.pem"}, "--grpc-server-tls-cert is set without --grpc-server-tls-key"},
		{TLS{Key: "k.pem"}, "--grpc-server-tls-key is set without --grpc-server-tls-cert"},
		{TLS{ClientCA: "ca.pem"}, "--grpc-server-tls-client-ca needs --grpc-server-tls-cert and --grpc-server-tls-key"},
		{TLS{Cert: "c.pem", Key: "k.pem", ClientCA: notPEM}, "--grpc-server-tls-client-ca " + notPEM},
		{TLS{Cert: filepath.Join(dir, "missing.pem"), Key: "k.pem"}, "--grpc-server-tls-cert " + filepath.Join(dir, "missing.pem")},
	} {
		_, err := tc.tls.Config(log.NewNopLogger())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error containing %q", tc.tls, err, tc.want)
		}
	}
}
