package lease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/thanos-io/objstore/exthttp"
	"github.com/thanos-io/objstore/providers/s3"
	"gopkg.in/yaml.v2"
)

// s3Store keeps the lease in an S3 (or MinIO) object and writes it with
// If-None-Match: * (Create) and If-Match: <ETag> (Replace). objstore's
// Bucket has neither, and its minio client is unexported, so the store
// builds its own client from the same config the same way.
type s3Store struct {
	client         *minio.Client
	bucket, object string
	sse            encrypt.ServerSide
	sendContentMD5 bool
	secrets        []string // redacted from every error
}

func newS3Store(conf []byte, object string) (*s3Store, error) {
	config := s3.DefaultConfig
	if err := yaml.UnmarshalStrict(conf, &config); err != nil {
		return nil, err
	}
	if config.Endpoint == "" {
		return nil, errors.New("no s3 endpoint")
	}
	if config.Bucket == "" {
		return nil, errors.New("no s3 bucket")
	}

	wrap := func(p credentials.Provider) credentials.Provider { return p }
	if config.SignatureV2 {
		wrap = func(p credentials.Provider) credentials.Provider { return &signerV2{p} }
	}
	var chain []credentials.Provider
	switch {
	case config.AWSSDKAuth:
		chain = []credentials.Provider{wrap(&s3.AWSSDKAuth{Region: config.Region})}
	case config.AccessKey != "":
		chain = []credentials.Provider{wrap(&credentials.Static{Value: credentials.Value{
			AccessKeyID:     config.AccessKey,
			SecretAccessKey: config.SecretKey,
			SessionToken:    config.SessionToken,
			SignerType:      credentials.SignatureV4,
		}})}
	default:
		chain = []credentials.Provider{
			wrap(&credentials.EnvAWS{}),
			wrap(&credentials.FileAWSCredentials{}),
			wrap(&credentials.IAM{Client: &http.Client{Transport: http.DefaultTransport}, Endpoint: config.STSEndpoint}),
		}
	}
	tpt, err := exthttp.DefaultTransport(config.HTTPConfig)
	if err != nil {
		return nil, fmt.Errorf("http_config: %w", err)
	}
	c, err := minio.New(config.Endpoint, &minio.Options{
		Creds:        credentials.NewChainCredentials(chain),
		Secure:       !config.Insecure,
		Region:       config.Region,
		Transport:    tpt,
		BucketLookup: config.BucketLookupType.MinioType(),
		MaxRetries:   config.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	c.SetAppInfo("monstackd", "lease")
	if config.DisableDualstack {
		c.SetS3EnableDualstack(false)
	}
	sse, err := sseOf(config.SSEConfig)
	if err != nil {
		return nil, err
	}
	s := &s3Store{client: c, bucket: config.Bucket, object: object, sse: sse, sendContentMD5: config.SendContentMd5}
	for _, v := range []string{config.SecretKey, config.SessionToken} {
		if v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
	return s, nil
}

// sseOf is objstore's server-side encryption, so that a bucket whose policy
// requires it accepts the lease too.
func sseOf(c s3.SSEConfig) (encrypt.ServerSide, error) {
	switch c.Type {
	case "":
		return nil, nil
	case s3.SSES3:
		return encrypt.NewSSE(), nil
	case s3.SSEKMS:
		ctx := c.KMSEncryptionContext
		if ctx == nil {
			ctx = map[string]string{} // a nil map would be sent as "nil", which AWS rejects
		}
		sse, err := encrypt.NewSSEKMS(c.KMSKeyID, ctx)
		if err != nil {
			return nil, fmt.Errorf("sse_config: %w", err)
		}
		return sse, nil
	case s3.SSEC:
		key, err := os.ReadFile(c.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("sse_config.encryption_key: %w", err)
		}
		sse, err := encrypt.NewSSEC(key)
		if err != nil {
			return nil, fmt.Errorf("sse_config.encryption_key: %w", err)
		}
		return sse, nil
	default:
		return nil, fmt.Errorf("sse_config.type: %q is not one of %s, %s, %s", c.Type, s3.SSES3, s3.SSEKMS, s3.SSEC)
	}
}

// signerV2 forces signature version 2 (signature_version2: true), as
// objstore does, except for anonymous access.
type signerV2 struct{ credentials.Provider }

func (s *signerV2) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	v, err := s.Provider.RetrieveWithCredContext(cc)
	if err == nil && !v.SignerType.IsAnonymous() {
		v.SignerType = credentials.SignatureV2
	}
	return v, err
}

func (s *signerV2) Retrieve() (credentials.Value, error) { return s.RetrieveWithCredContext(nil) }

func (s *s3Store) String() string {
	return fmt.Sprintf("s3 bucket %q object %q", s.bucket, s.object)
}

func (s *s3Store) Read(ctx context.Context) ([]byte, string, error) {
	opts := minio.GetObjectOptions{}
	if s.sse != nil && s.sse.Type() == encrypt.SSEC {
		opts.ServerSideEncryption = s.sse // SSE-C objects are read with their key
	}
	// One GET, whose response carries both the body and its ETag. (The
	// Client's lazy Object would send a HEAD for the ETag and then a GET
	// pinned to it, which fails with 412 when a write lands in between.)
	rc, info, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.object, opts)
	if err != nil {
		return nil, "", s.err("read", err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", s.err("read", err)
	}
	if info.ETag == "" {
		return nil, "", s.err("read", errors.New("response without ETag"))
	}
	return body, info.ETag, nil
}

func (s *s3Store) Create(ctx context.Context, body []byte) (string, error) {
	opts := s.putOptions()
	opts.SetMatchETagExcept("*")
	return s.put(ctx, "create", body, opts)
}

func (s *s3Store) Replace(ctx context.Context, version string, body []byte) (string, error) {
	if version == "" || version == "*" {
		return "", fmt.Errorf("%s: replace: invalid version %q", s, version)
	}
	opts := s.putOptions()
	opts.SetMatchETag(version)
	return s.put(ctx, "replace", body, opts)
}

func (s *s3Store) putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType:          "application/json",
		ServerSideEncryption: s.sse,
		SendContentMd5:       s.sendContentMD5,
		DisableMultipart:     true,
	}
}

func (s *s3Store) put(ctx context.Context, op string, body []byte, opts minio.PutObjectOptions) (string, error) {
	info, err := s.client.PutObject(ctx, s.bucket, s.object, bytes.NewReader(body), int64(len(body)), opts)
	if err == nil {
		return info.ETag, nil
	}
	if !isConflict(err) && (op != "replace" || minio.ToErrorResponse(err).Code != minio.NoSuchKey) {
		return "", s.err(op, err)
	}
	// minio-go retries a request whose response was lost; if the first
	// attempt landed, the retry fails its own precondition. Bodies are
	// unique per write (they name the instance and count renewals), so
	// finding ours means this write won.
	if got, version, rerr := s.Read(ctx); rerr == nil && bytes.Equal(got, body) {
		return version, nil
	}
	return "", fmt.Errorf("%s: %s: %w", s, op, ErrConflict)
}

// isConflict tells a lost precondition: 412 PreconditionFailed from AWS and
// MinIO, and AWS' 409 ConditionalRequestConflict for a concurrent
// conditional write (retrying could only lose again or find the winner).
// An If-Match on a missing object is 404 NoSuchKey on both; put counts
// that as a conflict too, as the object is not the version replaced.
func isConflict(err error) bool {
	r := minio.ToErrorResponse(err)
	switch {
	case r.StatusCode == http.StatusPreconditionFailed,
		r.Code == minio.PreconditionFailed,
		r.Code == "ConditionalRequestConflict":
		return true
	}
	return false
}

func (s *s3Store) err(op string, err error) error {
	r := minio.ToErrorResponse(err)
	if r.Code == minio.NoSuchKey {
		return fmt.Errorf("%s: %s: %w", s, op, ErrNotFound)
	}
	msg := err.Error()
	if r.Code != "" {
		msg = fmt.Sprintf("%s (HTTP %d %s)", msg, r.StatusCode, r.Code)
	}
	for _, v := range s.secrets {
		msg = strings.ReplaceAll(msg, v, "<redacted>")
	}
	return fmt.Errorf("%s: %s: %w", s, op, redacted{msg: msg, err: err})
}

// redacted is an error with its message scrubbed of secrets; only
// context errors stay matchable beneath it, as the wrapped error's own
// message still has them.
type redacted struct {
	msg string
	err error
}

func (r redacted) Error() string { return r.msg }

func (r redacted) Unwrap() error {
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(r.err, ctxErr) {
			return ctxErr
		}
	}
	return nil
}
