package buckettools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/testutil/e2eutil"
)

// fsTools is a Tools over a FILESYSTEM bucket in a temp dir, and that bucket.
func fsTools(t *testing.T) (*Tools, objstore.Bucket) {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("type: FILESYSTEM\nconfig:\n  directory: %s\n", filepath.Join(dir, "bucket"))
	tools, err := New(Options{Config: []byte(cfg), Where: "bucket.yml: field "})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tools.Close() })
	return tools, tools.bkt
}

func uploadBlock(t *testing.T, bkt objstore.Bucket, mint, maxt time.Time, ext map[string]string) ulid.ULID {
	t.Helper()
	dir := t.TempDir()
	series := []labels.Labels{labels.FromStrings("__name__", "m", "i", "1"), labels.FromStrings("__name__", "m", "i", "2")}
	id, err := e2eutil.CreateBlock(context.Background(), dir, series, 10, mint.UnixMilli(), maxt.UnixMilli(), labels.FromMap(ext), 0, metadata.NoneFunc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := block.Upload(context.Background(), log.NewNopLogger(), bkt, filepath.Join(dir, id.String()), metadata.NoneFunc); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestBlocksLsInspect(t *testing.T) {
	tools, bkt := fsTools(t)
	t0 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	late := uploadBlock(t, bkt, t0.Add(2*time.Hour), t0.Add(4*time.Hour), map[string]string{"replica": "a"})
	early := uploadBlock(t, bkt, t0, t0.Add(2*time.Hour), map[string]string{"replica": "b", "cluster": "x"})

	metas, err := tools.Blocks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 2 || metas[0].ULID != early || metas[1].ULID != late {
		t.Fatalf("Blocks not in min-time order: %v", metas)
	}

	var out bytes.Buffer
	if err := Ls(&out, metas, FormatText); err != nil {
		t.Fatal(err)
	}
	want := early.String() + `  2026-01-02T10:00:00Z  2026-01-02T12:00:00Z  resolution=0s  level=1  source=test  {cluster="x", replica="b"}` + "\n" +
		late.String() + `  2026-01-02T12:00:00Z  2026-01-02T14:00:00Z  resolution=0s  level=1  source=test  {replica="a"}` + "\n"
	if out.String() != want {
		t.Errorf("Ls:\n%s\nwant:\n%s", out.String(), want)
	}
	if err := Ls(&out, metas, "yaml"); err == nil {
		t.Error("Ls accepted an unknown format")
	}

	out.Reset()
	if err := Inspect(&out, metas, map[string]string{"replica": "a"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], late.String()) || !strings.Contains(lines[2], "| 20 ") {
		t.Errorf("Inspect --selector replica=a:\n%s", out.String())
	}
}

func TestVerify(t *testing.T) {
	tools, bkt := fsTools(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	a := map[string]string{"replica": "a"}
	uploadBlock(t, bkt, t0, t0.Add(2*time.Hour), a)
	uploadBlock(t, bkt, t0.Add(2*time.Hour), t0.Add(4*time.Hour), a)
	uploadBlock(t, bkt, t0, t0.Add(2*time.Hour), map[string]string{"replica": "b"})
	if problems, err := tools.Verify(ctx, VerifyOptions{}); err != nil || len(problems) != 0 {
		t.Fatalf("sound bucket: %v, %v", problems, err)
	}

	// A block without meta.json: reported once older than the age.
	partial := ulid.Make()
	if err := bkt.Upload(ctx, path.Join(partial.String(), block.IndexFilename), strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// A deletion in progress (meta.json gone, the mark still there) is not.
	deleting := ulid.Make()
	if err := bkt.Upload(ctx, path.Join(deleting.String(), metadata.DeletionMarkFilename), strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if problems, err := tools.Verify(ctx, VerifyOptions{}); err != nil || len(problems) != 0 {
		t.Fatalf("fresh partial upload reported: %v, %v", problems, err)
	}
	later := func() time.Time { return time.Now().Add(DefaultPartialUploadAge + time.Hour) }
	problems, err := tools.Verify(ctx, VerifyOptions{Now: later})
	if err != nil || len(problems) != 1 || problems[0].Issue != IssuePartialUpload || problems[0].Block != partial.String() {
		t.Fatalf("aborted partial upload: %v, %v", problems, err)
	}

	// A corrupted meta.json is reported at any age.
	corrupt := ulid.Make()
	if err := bkt.Upload(ctx, path.Join(corrupt.String(), block.MetaFilename), strings.NewReader("{")); err != nil {
		t.Fatal(err)
	}
	overlap := uploadBlock(t, bkt, t0.Add(time.Hour), t0.Add(3*time.Hour), a)
	problems, err = tools.Verify(ctx, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var issues []string
	for _, p := range problems {
		issues = append(issues, p.Issue)
		if strings.Contains(p.String(), "\n") {
			t.Errorf("problem spans lines: %q", p)
		}
		if p.Issue == IssueOverlappedBlocks && !strings.Contains(p.Detail, overlap.String()) {
			t.Errorf("overlap does not name %s: %s", overlap, p)
		}
	}
	if strings.Join(issues, ",") != IssueOverlappedBlocks+","+IssueCorruptedMeta {
		t.Errorf("issues %v, want overlap and corrupted meta: %v", issues, problems)
	}
}

func TestRecorder(t *testing.T) {
	r := &recorder{next: log.NewNopLogger()}
	l := log.With(r, "verifiers", "a,b", "verifier", "index_known_issues")
	level.Info(l).Log("msg", "started verifying issue")
	level.Debug(l).Log("msg", "no issue", "id", "X")
	level.Warn(l).Log("msg", "detected issue", "id", "01ABC", "err", errors.New("out of order chunks"))
	level.Warn(log.With(r, "verifier", "duplicated_compaction")).Log("msg", "Found duplicated blocks that are ok to be removed", "ULIDs", "[]", "num", 0)
	level.Error(log.With(r, "verifier", "x")).Log("msg", "boom", "detail", "line1\nline2\n")
	got := r.problems()
	want := []Problem{
		{Issue: "index_known_issues", Block: "01ABC", Detail: "detected issue: err=out of order chunks"},
		{Issue: "x", Detail: "boom: detail=line1; line2"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("problems %v, want %v", got, want)
	}
}

func TestErrorsNameSourceNotSecrets(t *testing.T) {
	const secret = "PLANTED-secret-4711"
	for _, tc := range []struct {
		name, cfg, where, want string
	}{
		{"parse", "type: [", "b.yml: field ", "b.yml: parse: invalid YAML"},
		{"no type", "config: {secret_key: " + secret + "}", "m.yml: field bucket.", "m.yml: field bucket.type: missing"},
		{"provider field", "type: S3\nconfig:\n  bucket: b\n  endpoint: 127.0.0.1:1\n  secret_key: " + secret + "\n  insecure: nope\n", "m.yml: field bucket.", "m.yml: field bucket.config: "},
	} {
		_, err := New(Options{Config: []byte(tc.cfg), Where: tc.where})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: %v, want prefix %q and no secret", tc.name, err, tc.want)
		}
	}

	tools := &Tools{where: "/etc/monstack.yml: field bucket.", secrets: secretValues(map[string]any{
		"secret_key": secret, "endpoint": "minio:9000",
		"http_config": map[string]any{"tls_config": map[string]any{"key_file": "/k.pem"}},
		"sse_config":  map[string]any{"kms_encryption_context": map[string]any{"token": "tok-1234"}},
	})}
	err := tools.opErr("list", fmt.Errorf("signature of %s at minio:9000 with tok-1234: %w", secret, os.ErrPermission))
	if got, want := err.Error(), "bucket of /etc/monstack.yml field bucket: list: signature of <secret> at minio:9000 with <secret>: permission denied"; got != want {
		t.Errorf("opErr: %q, want %q", got, want)
	}
	if !errors.Is(err, os.ErrPermission) {
		t.Error("redaction lost the error chain")
	}
}

func TestParseSelector(t *testing.T) {
	sel, err := ParseSelector([]string{`replica=a`, `cluster="e2e, west"`, `empty=`})
	if err != nil || len(sel) != 3 || sel["replica"] != "a" || sel["cluster"] != "e2e, west" || sel["empty"] != "" {
		t.Errorf("ParseSelector: %v, %v", sel, err)
	}
	for _, bad := range []string{"replica", "=a", `a="unterminated`} {
		if _, err := ParseSelector([]string{bad}); err == nil {
			t.Errorf("ParseSelector(%q) accepted", bad)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", 100000: "100,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// A block whose index cannot be read is index_known_issues' finding, and a
// second copy of a block (same range, sources and stats) duplicated_compaction's.
func TestVerifyIndexAndDuplicates(t *testing.T) {
	tools, bkt := fsTools(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	broken := uploadBlock(t, bkt, t0, t0.Add(2*time.Hour), map[string]string{"replica": "a"})
	if err := bkt.Upload(ctx, path.Join(broken.String(), block.IndexFilename), strings.NewReader("not an index")); err != nil {
		t.Fatal(err)
	}
	problems, err := tools.Verify(ctx, VerifyOptions{})
	if err != nil || len(problems) != 1 || problems[0].Issue != IssueIndexKnownIssues || problems[0].Block != broken.String() {
		t.Fatalf("broken index: %v, %v", problems, err)
	}

	// Copy a sound block under a new ULID, keeping its meta (sources, stats).
	tools, bkt = fsTools(t)
	orig := uploadBlock(t, bkt, t0, t0.Add(2*time.Hour), map[string]string{"replica": "a"})
	dup := ulid.Make()
	if err := bkt.Iter(ctx, orig.String(), func(name string) error {
		r, err := bkt.Get(ctx, name)
		if err != nil {
			return err
		}
		defer r.Close()
		b := new(bytes.Buffer)
		if _, err := b.ReadFrom(r); err != nil {
			return err
		}
		data := b.Bytes()
		if path.Base(name) == block.MetaFilename {
			m, err := metadata.Read(io.NopCloser(bytes.NewReader(data)))
			if err != nil {
				return err
			}
			m.ULID = dup // the sources stay: a compaction's second output
			var out bytes.Buffer
			if err := m.Write(&out); err != nil {
				return err
			}
			data = out.Bytes()
		}
		return bkt.Upload(ctx, strings.Replace(name, orig.String(), dup.String(), 1), bytes.NewReader(data))
	}, objstore.WithRecursiveIter()); err != nil {
		t.Fatal(err)
	}
	problems, err = tools.Verify(ctx, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var issues []string
	for _, p := range problems {
		issues = append(issues, p.Issue)
	}
	// Which of the two equal blocks Thanos marks to kill depends on their
	// ULIDs' order, random within a millisecond: either is right.
	if strings.Join(issues, ",") != IssueOverlappedBlocks+","+IssueDuplicatedCompaction ||
		!(strings.Contains(problems[1].Detail, dup.String()) || strings.Contains(problems[1].Detail, orig.String())) ||
		!strings.Contains(problems[0].Detail, `{replica="a"}`) {
		t.Errorf("duplicate block: issues %v: %v", issues, problems)
	}
}
