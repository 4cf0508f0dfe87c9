package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// pki is a test CA with a server certificate (127.0.0.1, localhost) and a
// client certificate, written as PEM files.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	pool                                             *x509.CertPool
	client                                           tls.Certificate
}

func newPKI(t *testing.T, dir string) *pki {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "monstackd e2e CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: filepath.Join(dir, "ca.crt"), pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	writeFile(t, p.ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))

	leaf := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP, dns []string) (certFile, keyFile string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
			DNSNames:     dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
		writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
		return certFile, keyFile
	}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth, nil, nil)
	if p.client, err = tls.LoadX509KeyPair(p.clientCert, p.clientKey); err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	authUser     = "e2e"
	authPassword = "correct horse battery staple"
)

// httpsGet GETs u over TLS trusting the test CA, with the client
// certificate if withCert and basic auth if withAuth.
func (p *pki) httpsGet(u string, withCert, withAuth bool) (int, string, error) {
	cfg := &tls.Config{RootCAs: p.pool}
	if withCert {
		cfg.Certificates = []tls.Certificate{p.client}
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	if withAuth {
		req.SetBasicAuth(authUser, authPassword)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// STOCK_PROMTOOL_BIN is promtool at the Prometheus version monstackd links
// (scripts/stock-bins.sh): Debian's 2.42 has no --http.config.file.

// With --web.config.file (TLS, required client certificates, basic auth)
// and the gRPC TLS flags, only clients with a certificate of the CA (and,
// over HTTP, the password) get in: promtool and a stock thanos query with
// client certificates read the data, plain HTTP, a missing password and a
// thanos query without a client certificate do not. monstackd scrapes
// itself over the same TLS and basic auth.
func TestWebAndGRPCTLSAuth(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte(authPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	writeFile(t, webConfig, fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: %s
basic_auth_users:
  %s: %s
`, p.serverCert, p.serverKey, p.ca, authUser, hash))
	// The HTTP client config of promtool and of the self-scrape.
	clientAuth := fmt.Sprintf(`tls_config:
  ca_file: %s
  cert_file: %s
  key_file: %s
basic_auth:
  username: %s
  password: %q
`, p.ca, p.clientCert, p.clientKey, authUser, authPassword)
	httpConfig := filepath.Join(dir, "http-client.yml")
	writeFile(t, httpConfig, clientAuth)

	d := &daemon{http: freeAddr(t), grpc: freeAddr(t), dataDir: filepath.Join(dir, "data")}
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  external_labels:
    cluster: e2e
scrape_configs:
  - job_name: self
    scheme: https
%s    static_configs:
      - targets: [%q]
`, indent(clientAuth, "    "), d.http))
	writeFile(t, filepath.Join(dir, "monstack.yml"), "prometheus:\n  config_file: prometheus.yml\n")
	d.process = startProcess(t, "monstackd", binPath(t, "MONSTACKD_BIN"), nil,
		"--http.address="+d.http, "--grpc.address="+d.grpc, "--data.dir="+d.dataDir,
		"--config.file="+filepath.Join(dir, "monstack.yml"), "--role=replica-a",
		"--web.config.file="+webConfig,
		"--grpc-server-tls-cert="+p.serverCert, "--grpc-server-tls-key="+p.serverKey, "--grpc-server-tls-client-ca="+p.ca)
	base := "https://" + d.http
	eventually(t, 60*time.Second, "monstackd ready over HTTPS", func() error {
		if !d.alive() {
			t.Fatalf("monstackd exited: %v", d.err)
		}
		code, body, err := p.httpsGet(base+"/-/ready", true, true)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})

	t.Run("plain HTTP is refused", func(t *testing.T) {
		code, body, err := httpGet("http://" + d.http + "/api/v1/query?query=up")
		if err == nil && (code != http.StatusBadRequest || strings.Contains(string(body), "success")) {
			t.Fatalf("plain HTTP: %d %q, want no answer or 400", code, body)
		}
	})
	t.Run("HTTPS without a client certificate fails the handshake", func(t *testing.T) {
		if code, body, err := p.httpsGet(base+"/-/healthy", false, true); err == nil {
			t.Fatalf("HTTPS without a client certificate: %d %q, want a TLS error", code, body)
		}
	})
	t.Run("HTTPS without the password gets 401", func(t *testing.T) {
		for _, path := range []string{"/-/healthy", "/api/v1/query?query=up", "/metrics"} {
			if code, body, err := p.httpsGet(base+path, true, false); err != nil || code != http.StatusUnauthorized {
				t.Errorf("%s without basic auth: %d %q %v, want 401", path, code, body, err)
			}
		}
	})

	t.Run("promtool with tls_config and basic_auth", func(t *testing.T) {
		eventually(t, 30*time.Second, "up{job=\"self\"} == 1 through promtool", func() error {
			out, err := exec.Command(binPath(t, "STOCK_PROMTOOL_BIN"), "query", "instant", "--http.config.file="+httpConfig, base, "up").CombinedOutput()
			if err != nil {
				return fmt.Errorf("promtool query instant: %v\n%s", err, out)
			}
			// The self-scrape goes through the same TLS and basic auth.
			if !strings.Contains(string(out), `job="self"`) || !strings.Contains(string(out), "=> 1 @") {
				return fmt.Errorf("promtool output %q: want up{job=\"self\"} == 1", out)
			}
			return nil
		})
	})

	// Two stock queriers on the gRPC port: one with a client certificate,
	// one with TLS but without.
	startQuery := func(name string, tlsArgs ...string) *daemon {
		qHTTP, qGRPC := freeAddr(t), freeAddr(t)
		args := append([]string{"query", "--http-address=" + qHTTP, "--grpc-address=" + qGRPC,
			"--endpoint-strict=" + d.grpc, "--query.replica-label=replica",
			"--grpc-client-tls-secure", "--grpc-client-tls-ca=" + p.ca, "--grpc-client-server-name=localhost"}, tlsArgs...)
		startProcess(t, name, binPath(t, "THANOS_BIN"), nil, args...)
		q := &daemon{http: qHTTP}
		waitHTTP200(t, q.url("/-/ready"), 60*time.Second)
		return q
	}
	good := startQuery("thanos query (client cert)", "--grpc-client-tls-cert="+p.clientCert, "--grpc-client-tls-key="+p.clientKey)
	bad := startQuery("thanos query (no client cert)")

	upSeries := func(q *daemon) ([]sample, []string, error) {
		code, body, err := httpGet(q.url("/api/v1/query") + "?" + url.Values{"query": {`up{job="self"}`}}.Encode())
		if err != nil {
			return nil, nil, err
		}
		var r apiResponse
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, nil, fmt.Errorf("status %d, body %q: %w", code, body, err)
		}
		if r.Status != "success" {
			return nil, nil, fmt.Errorf("status %d: %s", code, r.Error)
		}
		var v struct {
			Result []sample `json:"result"`
		}
		if err := json.Unmarshal(r.Data, &v); err != nil {
			return nil, nil, err
		}
		return v.Result, r.Warnings, nil
	}

	t.Run("thanos query with a client certificate", func(t *testing.T) {
		eventually(t, 60*time.Second, `up{job="self"} via thanos query`, func() error {
			res, _, err := upSeries(good)
			if err != nil {
				return err
			}
			if len(res) != 1 || res[0].Value[1] != "1" || res[0].Metric["cluster"] != "e2e" {
				return fmt.Errorf("result %v", res)
			}
			return nil
		})
	})

	t.Run("thanos query without a client certificate gets nothing", func(t *testing.T) {
		// The querier with a certificate has read the endpoint; this one,
		// started at the same time, has had as long to try.
		for _, partial := range []string{"true", "false"} {
			code, body, err := httpGet(bad.url("/api/v1/query") + "?" + url.Values{"query": {`up{job="self"}`}, "partial_response": {partial}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				apiResponse
				Data struct {
					Result []sample `json:"result"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("status %d, body %q: %v", code, body, err)
			}
			// No series: with partial responses a warning names the
			// store, without them the query fails.
			if len(r.Data.Result) != 0 ||
				(partial == "true" && (r.Status != "success" || len(r.Warnings) == 0)) ||
				(partial == "false" && r.Status != "error") {
				t.Fatalf("partial_response=%s: the querier without a client certificate answered %d %s", partial, code, body)
			}
		}
		data, err := bad.api("/api/v1/stores", nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), `"replica":"a"`) {
			t.Fatalf("the querier without a client certificate read the endpoint's labels: %s", data)
		}
	})
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// A web config file or gRPC TLS flags that cannot be used fail start-up at
// once, and check config, naming the file or the flags.
func TestAuthFlagsFailStartup(t *testing.T) {
	dir := t.TempDir()
	bin := binPath(t, "MONSTACKD_BIN")
	badWeb := filepath.Join(dir, "web.yml")
	writeFile(t, badWeb, "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n")
	for _, tc := range []struct {
		flag, want string
	}{
		{"--web.config.file=" + badWeb, badWeb},
		{"--grpc-server-tls-cert=" + filepath.Join(dir, "server.crt"), "--grpc-server-tls-cert is set without --grpc-server-tls-key"},
	} {
		code, out, errOut := runBin(t, bin, "check", "config", tc.flag)
		if code != 1 || !strings.Contains(errOut, "FAILED: ") || !strings.Contains(errOut, tc.want) {
			t.Errorf("check config %s: exit %d\n%s%s\nwant FAILED naming %s", tc.flag, code, out, errOut, tc.want)
		}
		start := time.Now()
		code, out, errOut = runBin(t, bin, "--http.address="+freeAddr(t), "--grpc.address="+freeAddr(t),
			"--data.dir="+filepath.Join(dir, "data"), tc.flag)
		if code != 1 || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("run %s: exit %d\n%s%s\nwant exit 1 naming %s", tc.flag, code, out, errOut, tc.want)
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("run %s took %s to fail", tc.flag, time.Since(start))
		}
	}
}
