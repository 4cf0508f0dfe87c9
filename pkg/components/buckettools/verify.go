package buckettools

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/thanos/pkg/block"
	"github.com/thanos-io/thanos/pkg/block/metadata"
	"github.com/thanos-io/thanos/pkg/verifier"
)

// DefaultPartialUploadAge is how long a block without meta.json may go
// without a write before it counts as an aborted upload: the compactor's
// threshold for deleting it (pkg/compact.PartialUploadThresholdAge).
const DefaultPartialUploadAge = 48 * time.Hour

// Issue IDs of the problems Verify reports. The first three are Thanos'
// verifiers (`thanos tools bucket verify --issues`).
const (
	IssueOverlappedBlocks     = "overlapped_blocks"
	IssueIndexKnownIssues     = "index_known_issues"
	IssueDuplicatedCompaction = "duplicated_compaction"
	IssuePartialUpload        = "partial_upload"
	IssueCorruptedMeta        = "corrupted_meta"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// PartialUploadAge: a block without meta.json whose newest object is
	// older than this is reported; younger ones may be uploads in progress.
	// Zero means DefaultPartialUploadAge.
	PartialUploadAge time.Duration
	// Now is the clock for PartialUploadAge; nil means time.Now.
	Now func() time.Time
}

// Problem is one finding of Verify.
type Problem struct {
	Issue string
	// Block is the block concerned, empty for a group of blocks.
	Block string
	// Detail says what is wrong, in the verifier's words.
	Detail string
}

func (p Problem) String() string {
	s := p.Issue + ": "
	if p.Block != "" {
		s += "block " + p.Block + ": "
	}
	return s + p.Detail
}

// Verify runs Thanos' verifiers (overlapped blocks, index known issues,
// duplicated compaction) without repair, and looks for aborted partial
// uploads and corrupted meta.json files. Blocks marked for deletion are
// skipped, as in `thanos tools bucket verify`. It returns the problems
// found, and an error only when the bucket cannot be read.
func (t *Tools) Verify(ctx context.Context, opts VerifyOptions) ([]Problem, error) {
	if opts.PartialUploadAge <= 0 {
		opts.PartialUploadAge = DefaultPartialUploadAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}

	// The verifiers report what they find as warnings on their logger and
	// return nil (the stock command exits 0 over an overlap): collect them.
	rec := &recorder{next: t.logger}
	deletionMarks := block.NewIgnoreDeletionMarkFilter(t.logger, t.bkt, 0, block.FetcherConcurrency)
	fetcher, err := block.NewMetaFetcher(t.logger, block.FetcherConcurrency, t.bkt, block.NewConcurrentLister(t.logger, t.bkt),
		"", prometheus.NewRegistry(), []block.MetadataFilter{deletionMarks})
	if err != nil {
		return nil, t.opErr("verify", err)
	}
	registry := verifier.Registry{
		Verifiers: []verifier.Verifier{verifier.OverlappedBlocksIssue{}},
		VerifierRepairers: []verifier.VerifierRepairer{
			verifier.IndexKnownIssues{},
			verifier.DuplicatedCompactionBlocks{},
		},
	}
	// No backup bucket: nothing can be repaired.
	m := verifier.NewManager(prometheus.NewRegistry(), rec, t.bkt, nil, fetcher, 0, registry)
	if err := m.Verify(ctx, nil); err != nil {
		return nil, t.opErr("verify", err)
	}
	problems := rec.problems()

	// Partial uploads: Thanos lists them but has no verifier for them.
	metas, partial, err := fetcher.Fetch(ctx)
	if err != nil {
		return nil, t.opErr("verify", err)
	}
	// The verifiers name a group by its key, "<resolution>@<hash of the
	// labels>": add the labels.
	groups := map[string]string{}
	for _, m := range metas {
		groups["group="+m.Thanos.GroupKey()] = "group=" + m.Thanos.GroupKey() + " " + formatLabels(m.Thanos.Labels)
	}
	for i, p := range problems {
		for k, v := range groups {
			p.Detail = strings.Replace(p.Detail, k+" ", v+" ", 1)
		}
		problems[i] = p
	}
	ids := make([]ulid.ULID, 0, len(partial))
	for id := range partial {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Compare(ids[j]) < 0 })
	for _, id := range ids {
		perr := partial[id]
		if errors.Is(perr, block.ErrorSyncMetaCorrupted) {
			problems = append(problems, Problem{Issue: IssueCorruptedMeta, Block: id.String(), Detail: perr.Error()})
			continue
		}
		// A deletion in progress removes meta.json first and the mark last.
		marked, err := t.bkt.Exists(ctx, path.Join(id.String(), metadata.DeletionMarkFilename))
		if err != nil {
			return nil, t.opErr("verify", err)
		}
		if marked {
			continue
		}
		last, err := t.lastModified(ctx, id)
		if err != nil {
			return nil, t.opErr("verify", err)
		}
		if age := opts.Now().Sub(last); age > opts.PartialUploadAge {
			problems = append(problems, Problem{Issue: IssuePartialUpload, Block: id.String(),
				Detail: fmt.Sprintf("no meta.json, last written %s ago (%s), longer than %s: an aborted upload the compactor will delete",
					age.Round(time.Second), last.UTC().Format(time.RFC3339), opts.PartialUploadAge)})
		}
	}
	for i := range problems {
		problems[i].Detail = t.redact(errors.New(problems[i].Detail)).Error()
	}
	return problems, nil
}

// lastModified is the newest modification time of the block's objects, or
// the ULID's time where the bucket does not tell (the compactor's rule).
func (t *Tools) lastModified(ctx context.Context, id ulid.ULID) (time.Time, error) {
	fallback := ulid.Time(id.Time())
	if !slices.Contains(t.bkt.SupportedIterOptions(), objstore.UpdatedAt) {
		return fallback, nil
	}
	var last time.Time
	err := t.bkt.IterWithAttributes(ctx, id.String(), func(attrs objstore.IterObjectAttributes) error {
		if lm, ok := attrs.LastModified(); ok && lm.After(last) {
			last = lm
		}
		return nil
	}, objstore.WithUpdatedAt(), objstore.WithRecursiveIter())
	if err != nil {
		return time.Time{}, err
	}
	if last.IsZero() {
		return fallback, nil
	}
	return last, nil
}

// recorder is the verifiers' logger: warnings and errors become problems,
// every line goes on to next.
type recorder struct {
	next log.Logger
	mtx  sync.Mutex
	list []Problem
}

// informational are the verifiers' warnings that are not findings of their
// own: duplicated_compaction's summary (repeats its own findings, or says
// "num 0") and its note on an overlap of distinct blocks, which
// overlapped_blocks reports.
var informational = []string{
	"Found duplicated blocks that are ok to be removed",
	"found overlapped blocks, but all of the blocks are unique",
}

func (r *recorder) Log(keyvals ...any) error {
	_ = r.next.Log(keyvals...)
	var lvl, issue, msg, id string
	var rest []string
	for i := 0; i+1 < len(keyvals); i += 2 {
		k, v := fmt.Sprint(keyvals[i]), keyvals[i+1]
		switch k {
		case "level":
			lvl = fmt.Sprint(v)
		case "verifier":
			issue = fmt.Sprint(v)
		case "verifiers", "caller", "ts":
		case "msg":
			msg = fmt.Sprint(v)
		case "id":
			id = fmt.Sprint(v)
		default:
			// One problem, one line: tsdb.Overlaps prints a line per range.
			rest = append(rest, k+"="+strings.ReplaceAll(strings.TrimSpace(fmt.Sprint(v)), "\n", "; "))
		}
	}
	if lvl != "warn" && lvl != "error" {
		return nil
	}
	for _, s := range informational {
		if strings.HasPrefix(msg, s) {
			return nil
		}
	}
	if issue == "" {
		issue = "verify"
	}
	detail := msg
	if len(rest) > 0 {
		detail += ": " + strings.Join(rest, " ")
	}
	r.mtx.Lock()
	r.list = append(r.list, Problem{Issue: issue, Block: id, Detail: detail})
	r.mtx.Unlock()
	return nil
}

func (r *recorder) problems() []Problem {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	return append([]Problem(nil), r.list...)
}
