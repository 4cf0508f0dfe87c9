package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// PeersConfig lists the other replicas of the pair: their gRPC StoreAPI
// (--grpc.address), which this daemon's querier reads and deduplicates with
// its own data. Only their local TSDB is served there, never their querier
// or bucket store.
type PeersConfig struct {
	// Endpoints are host:port addresses. A peer that cannot be reached is
	// retried and reported, never a start-up error.
	Endpoints []string `yaml:"endpoints,omitempty"`
	// ResponseTimeout bounds how long a query waits for a peer that sends
	// nothing: then it answers without the peer, with a partial-response
	// warning (or fails with partial responses off). Stock thanos query's
	// --store.response-timeout, whose default 0 lets a partitioned peer
	// hold every query.
	ResponseTimeout Duration `yaml:"response_timeout"`
	// TLS secures the connections to the peers.
	TLS ClientTLSConfig `yaml:"tls_config"`
}

// ClientTLSConfig is a gRPC client's TLS, with the field names of Thanos'
// endpoint config and Prometheus' tls_config. Setting any file, a server
// name or insecure_skip_verify turns TLS on, as does enabled.
type ClientTLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the peer's certificate; empty uses the system pool.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are this daemon's client certificate, for a
	// peer that requires one (--grpc-server-tls-client-ca).
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// On reports whether TLS is configured.
func (t ClientTLSConfig) On() bool { return t != ClientTLSConfig{} }

// DefaultPeerResponseTimeout is a few seconds: a live peer's first frame
// comes in milliseconds, and a dashboard can wait this long for the rest.
const DefaultPeerResponseTimeout = Duration(5 * time.Second)

func (p PeersConfig) validate(field func(name, format string, a ...any)) {
	for i, e := range p.Endpoints {
		if host, port, err := net.SplitHostPort(e); err != nil || host == "" || port == "" {
			field(fmt.Sprintf("peers.endpoints[%d]", i), "%q is not a host:port address", e)
		}
	}
	if p.ResponseTimeout <= 0 {
		field("peers.response_timeout", "must be positive")
	}
	t := p.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		field("peers.tls_config.key_file", "missing: cert_file needs key_file")
	case t.KeyFile != "" && t.CertFile == "":
		field("peers.tls_config.cert_file", "missing: key_file needs cert_file")
	}
}

// checkPeers checks that the peers' TLS files can be read.
func (c *Config) checkPeers() error {
	var errs []error
	for _, f := range []struct{ name, path string }{
		{"ca_file", c.Peers.TLS.CAFile},
		{"cert_file", c.Peers.TLS.CertFile},
		{"key_file", c.Peers.TLS.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(c.Path(f.path)); err != nil {
			errs = append(errs, fmt.Errorf("%s: field peers.tls_config.%s: %w", c.name(), f.name, err))
		}
	}
	return errors.Join(errs...)
}

// PeerTLS returns the peers' TLS config with its paths resolved against
// monstack.yml's directory.
func (c *Config) PeerTLS() ClientTLSConfig {
	t := c.Peers.TLS
	t.CAFile, t.CertFile, t.KeyFile = c.Path(t.CAFile), c.Path(t.CertFile), c.Path(t.KeyFile)
	return t
}
